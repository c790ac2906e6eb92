// The gateway runtime and its configuration.
export { Gateway } from './gateway.js';
export type { GatewayEvents, GatewayOptions, GatewayStatus, Phase1Status, ChildStatus, GatewayErrorEvent, Phase1UpEvent, Phase1DownEvent, ChildUpEvent, ChildDownEvent, EspPacketEvent } from './gateway.js';
export { ConfigError, defineConfig, GatewayConfigSchema, loadConfig, parseConfig, retransmitPolicy, DEFAULT_IKE_PROPOSALS, DEFAULT_ESP_PROPOSALS, DEFAULT_ESP_LIFETIME_SECONDS } from './config.js';
export type { GatewayConfig, GatewayConfigInput, ConnectionConfigInput, ConnectionConfig, DataPlaneConfig, ListenConfig, PskAuth, ConfigResult, ParseOptions as ConfigParseOptions, SelectorAddress } from './config.js';
export * from './keylog.js';
export { ControlServer, ControlError, controlRequest, controlDirectory, defaultControlPath, findControlSocket, CONTROL_SOCKET_NAME } from './control.js';
export type { ControlOptions, InitiatedChild } from './control.js';
export type { ConnectionInfo, ReloadReport } from './reload.js';
export type { MetricsConfig } from './config.js';
export type { ControlErrorKind, ControlRequest, ControlResponse } from './control.js';
export { UdpSocket, type UdpSocketOptions, type UdpSocketStats } from './udp.js';
export { GatewayMetrics, MetricsServer } from './metrics.js';
