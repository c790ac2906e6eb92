// Public entry point of ikev1-engine: what an embedder needs, not the internals. Each layer has its own
// entry point with everything it offers (ikev1-engine/isakmp, /crypto, /esp, /ike, /gateway, /load).
import type { ControlErrorKind } from './gateway/control.js';
import type { IkeErrorKind } from './ike/errors.js';
import type { NotifyType } from './isakmp/constants.js';

// The gateway, its events, status and options.
export { Gateway } from './gateway/gateway.js';
export type {
  ChildDownEvent,
  ChildStatus,
  ChildUpEvent,
  ConnectionInfo,
  EspPacketEvent,
  GatewayErrorEvent,
  GatewayEvents,
  GatewayOptions,
  GatewayStatus,
  Phase1DownEvent,
  Phase1Status,
  Phase1UpEvent,
  ReloadReport,
} from './gateway/gateway.js';

// The configuration file: parse / load, and the typed result.
export { ConfigError, DEFAULT_ESP_LIFETIME_SECONDS, DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS, defineConfig, GatewayConfigSchema, loadConfig, parseConfig } from './gateway/config.js';
export type {
  ConfigResult,
  ConnectionConfig,
  ConnectionConfigInput,
  DataPlaneConfig,
  EspProposal,
  GatewayConfig,
  GatewayConfigInput,
  IkeProposal,
  MetricsConfig,
  ListenConfig,
  ParseOptions as ConfigParseOptions,
  PskAuth,
  SelectorAddress,
} from './gateway/config.js';
export { ControlError, controlRequest } from './gateway/control.js';
export type { ControlErrorKind, ControlOptions, ControlRequest, ControlResponse, InitiatedChild } from './gateway/control.js';

// The ISAKMP codec: bytes <-> typed messages, the payload types and the IANA constants.
export type * from './isakmp/types.js';
export * from './isakmp/constants.js';
export { parseHeader, parseMessage, parsePayloads, type ParseOptions } from './isakmp/parse.js';
export { encodeHeader, encodeMessage, encodePayloads } from './isakmp/encode.js';
export { IsakmpEncodeError } from './isakmp/errors.js';
export { describePayloads, findPayload, findPayloads } from './isakmp/find.js';
export { decodeIdentity, encodeIdentity, idToString, type Identity } from './isakmp/identity.js';

// The load tester.
export { LoadTester, formatProgress, formatResult } from './load/index.js';
export type { LoadOptions, LoadProgress, LoadResult } from './load/index.js';

// Crypto provider selection: the addon when it loads, node:crypto otherwise, or either on request.
export { crypto, defaultCrypto, nativeCrypto, nodeCrypto } from './crypto/index.js';
export type * from './crypto/types.js';
export { nativeLoadError } from './native.js';

// ESP SAs.
export { createEspSa, espKeyLengths, EspStatus, espStatusName, layoutSealBatch, MAX_REPLAY_WINDOW, splitEspKeymat } from './esp/index.js';
export type { EspAlgorithm, EspKeyLengths, EspOpenResult, EspSa, EspSaParams, EspSaStats, EspStatusCode, EspStatusName } from './esp/index.js';

// Errors.
export { IkeError } from './ike/errors.js';
export type { IkeErrorKind } from './ike/errors.js';
/** The kind of a codec error (CodecError.kind): the name of the Notify it answers with. */
export type CodecErrorKind = keyof typeof NotifyType;
/**
 * Every error kind the engine reports: negotiation failures (IkeError.kind, GatewayErrorEvent.kind), codec
 * errors (CodecError.kind), socket failures of a running gateway ('SOCKET') and control-socket errors.
 * ConfigError has no kind: it carries the list of problems found in the file.
 */
export type ErrorKind = IkeErrorKind | CodecErrorKind | 'SOCKET' | ControlErrorKind;
