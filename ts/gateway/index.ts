// The gateway runtime and its configuration.
export { Gateway } from './gateway.js';
export type { GatewayEvents, GatewayOptions, GatewayStatus, Phase1Status, ChildStatus, GatewayErrorEvent, Phase1UpEvent, Phase1DownEvent, ChildUpEvent, ChildDownEvent, EspPacketEvent } from './gateway.js';
export { ConfigError, loadConfig, parseConfig, retransmitPolicy, DEFAULT_IKE_PROPOSALS, DEFAULT_ESP_PROPOSALS, DEFAULT_ESP_LIFETIME_SECONDS } from './config.js';
export type { GatewayConfig, ConnectionConfig, DataPlaneConfig, ListenConfig, PskAuth, ConfigResult, ParseOptions as ConfigParseOptions, SelectorAddress } from './config.js';
export * from './keylog.js';
export { KeylogAppender, KeylogFileError, keylogDirectory, writeKeylogFiles } from './keylog-files.js';
export { ControlServer, ControlError, controlRequest, defaultControlPath, CONTROL_SOCKET_NAME } from './control.js';
export type { ControlErrorKind, ControlRequest, ControlResponse } from './control.js';
export { UdpSocket, type UdpSocketOptions, type UdpSocketStats } from './udp.js';
