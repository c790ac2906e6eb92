// What the gateway tells its embedder: typed events, the status of its SAs (never key material) and its options.
import type { EventEmitter } from 'node:events';
import type { CryptoProvider } from '../crypto/index.js';
import type { EspEngine, EspSa } from '../esp/index.js';
import { IkeError, type ChildSa, type Endpoint, type IsakmpSa, type RemoteAccessEvent } from '../ike/index.js';
import type { AdmissionLimits, AdmissionStats } from './admission.js';
import type { ErrorLimits, ErrorStats, ErrorSummary } from './error-summary.js';
import type { KeylogLine } from './keylog.js';

export interface Phase1UpEvent {
  connection: string;
  initiator: boolean;
  mode: 'main' | 'aggressive';
  local: Endpoint;
  remote: Endpoint;
  localId: string;
  remoteId: string;
  algorithms: string;
  lifetimeSeconds: number;
  cookieI: string;
  cookieR: string;
  natDetected: { local: boolean; remote: boolean };
  /** Milliseconds from the first message of the exchange (sent or received) to now. */
  setupMs: number;
  /** The object phase 2 works from (keys included: never log it whole). */
  sa: IsakmpSa;
}

export interface ChildUpEvent {
  connection: string;
  /** Initiator cookie (hex) of the ISAKMP SA that negotiated it. */
  cookieI: string;
  initiator: boolean;
  spiIn: string;
  spiOut: string;
  /** ESP algorithm with PFS group and ESN: aes128gcm16-modp2048 */
  proposal: string;
  mode: 'tunnel' | 'transport';
  encapsulation: boolean;
  localTs: string;
  remoteTs: string;
  lifetimeSeconds: number;
  rekey: boolean;
  /** The negotiated SA (keys included: never log it whole) and its two ESP SAs, ready to seal and open. */
  child: ChildSa;
  inbound: EspSa;
  outbound: EspSa;
}

export interface ChildDownEvent {
  connection: string;
  spiIn: string;
  spiOut: string;
  reason: string;
}

export interface GatewayErrorEvent {
  connection?: string;
  /** Initiator cookie (hex) of the exchange that failed, when there was one. */
  cookieI?: string;
  remote?: Endpoint;
  kind: string;
  message: string;
}

export interface Phase1DownEvent {
  connection: string;
  remote: Endpoint;
  cookieI: string;
  cookieR: string;
  reason: string;
}

export interface EspPacketEvent {
  connection: string;
  spi: string;
  payload: Buffer;
  nextHeader: number;
}

export interface GatewayEvents {
  'phase1-up': [Phase1UpEvent];
  'phase1-down': [Phase1DownEvent];
  'child-up': [ChildUpEvent];
  'child-down': [ChildDownEvent];
  error: [GatewayErrorEvent];
  /** A decrypted ESP packet that arrived on the NAT-T socket (when no data plane carries it). */
  'esp-packet': [EspPacketEvent];
  /** Lines of Wireshark's key tables (IKEv1 decryption table, ESP SAs), only when a connection has keylog on. */
  keylog: [KeylogLine];
  listening: [{ address: string; port: number; nattPort: number }];
  /** XAUTH and Mode-Config progress on connections with `xauth` / `modeConfig` (never a password). */
  'remote-access': [{ connection: string; remote: Endpoint; cookieI: string; event: RemoteAccessEvent }];
  /** Every IKE datagram sent or received (without the non-ESP marker), for tracing and demos. */
  datagram: [{ direction: 'in' | 'out'; remote: Endpoint; bytes: Buffer }];
}

/** Inbound ESP dropped, by reason. */
export interface EspDrops {
  unknownSpi: number;
  authFailed: number;
  replay: number;
  /** Truncated, bad padding, not IP inside. */
  malformed: number;
  other: number;
}

export function noEspDrops(): EspDrops {
  return { unknownSpi: 0, authFailed: 0, replay: 0, malformed: 0, other: 0 };
}

/** Counts one inbound ESP datagram that did not open, by the ESP SA's reason. */
export function countEspDrop(drops: EspDrops, reason: string): void {
  if (reason === 'AUTH_FAILED') drops.authFailed++;
  else if (reason === 'REPLAYED') drops.replay++;
  else if (reason === 'MALFORMED') drops.malformed++;
  else if (reason === 'WRONG_SPI') drops.unknownSpi++;
  else drops.other++;
}

/** What `ike status` shows of one child SA: no key material. */
export interface ChildStatus {
  spiIn: string;
  spiOut: string;
  proposal: string;
  mode: 'tunnel' | 'transport';
  localTs: string;
  remoteTs: string;
  encapsulation: boolean;
  established: string;
  lifetimeRemainingSeconds: number;
  /** Replaced by a rekey: still receives until it is deleted, no longer sends. */
  rekeyed: boolean;
  /** From the ESP SAs, or from the data plane when it carries them (payload octets). */
  in: { packets: number; bytes: number };
  out: { packets: number; bytes: number };
  /** The ESP crypto engine of the SA pair ('ipsec-mb', 'evp' or 'node:crypto'; EspSa.engine, inbound SA's). */
  engine: EspEngine;
}

/** What `ike status` shows of one established ISAKMP SA: no key material. */
export interface Phase1Status {
  connection: string;
  role: 'initiator' | 'responder';
  mode: 'main' | 'aggressive';
  local: Endpoint;
  remote: Endpoint;
  localId: string;
  remoteId: string;
  algorithms: string;
  cookieI: string;
  cookieR: string;
  established: string;
  lifetimeRemainingSeconds: number;
  /** NAT-D results (local includes forced encapsulation), IKE on the NAT-T port, keepalive interval and count. */
  nat: { local: boolean; remote: boolean; natt: boolean; keepaliveSeconds: number; keepalivesSent: number };
  children: ChildStatus[];
}

export interface GatewayStatus {
  listen: { address: string; port: number; nattPort: number };
  /**
   * The TUN data plane's own counters: ESP datagrams sent, received that authenticated, inbound drops by
   * reason, NAT keepalives received from peers; per worker (index = worker) the SAs it owns and its ESP counts.
   */
  dataplane: {
    tun: string;
    keepalivesReceived: number;
    espSent: number;
    espReceived: number;
    drops: EspDrops & { selectorMismatch: number };
    workers: { sas: number; espSent: number; espReceived: number }[];
  } | null;
  /** ESP that reached JavaScript (no data plane): datagrams that authenticated, and the others by reason. */
  esp: { received: number; drops: EspDrops };
  halfOpen: number;
  /** Message 1 admission: busy mode, exchanges admitted, evicted and refused by reason. */
  admission: AdmissionStats;
  /** Error events counted, emitted, repeats and held back, by kind and by source (error-summary.ts). */
  errors: ErrorStats;
  sas: Phase1Status[];
}

export interface GatewayOptions {
  crypto?: CryptoProvider;
  /**
   * Half-open phase 1 exchanges kept at most, in total and per peer address (when full, the oldest whose peer
   * never answered goes). Shorthands for admission.maxHalfOpen / maxHalfOpenPerPeer.
   */
  maxHalfOpen?: number;
  maxHalfOpenPerPeer?: number;
  /** Message 1 admission: half-open limits and busy mode (admission.ts; the config's `limits`). */
  admission?: Partial<AdmissionLimits>;
  /** How many error events are emitted before they are only counted (error-summary.ts; the config's `limits.errors`). */
  errorLimits?: Partial<ErrorLimits>;
  /** Run DH on the thread pool (default true: keeps the event loop free). */
  asyncDh?: boolean;
  /**
   * Every ISAKMP SA stands alone, as the load tester's own are: none is taken for a rekey of another, nor
   * its children for replacements. For benchmarks where one peer address sets up many identical SAs and
   * keeps them (bench/memory.ts); not reachable from a config file.
   */
  independentSas?: boolean;
  /**
   * The IKE and NAT-T sockets: the addon's batched UdpSocket (sendmmsg / recvmmsg, about half the CPU per
   * datagram of node:dgram; each datagram still reaches JavaScript on its own, as from dgram) or node:dgram.
   * Default: the addon's when it is loaded.
   */
  nativeUdp?: boolean;
}

export type GatewayEmitter = EventEmitter<GatewayEvents>;

/**
 * The admission limits: the config's `limits`, then the options' `admission`, then their shorthands (the
 * more specific wins).
 */
export function admissionLimits(o: GatewayOptions, fromConfig: Partial<AdmissionLimits> = {}): Partial<AdmissionLimits> {
  const l: Partial<AdmissionLimits> = { ...fromConfig, ...o.admission };
  if (o.maxHalfOpen !== undefined) l.maxHalfOpen = o.maxHalfOpen;
  if (o.maxHalfOpenPerPeer !== undefined) l.maxHalfOpenPerPeer = o.maxHalfOpenPerPeer;
  return l;
}

/** Where a failure happened, as the 'error' event names it. */
export interface ErrorScope {
  connection?: string | undefined;
  remote?: Endpoint;
  /** The ISAKMP SA's initiator cookie (hex). */
  cookieI?: string | undefined;
  /**
   * An exchange this gateway started (initiate()): its failures come no faster than we start exchanges, and
   * whoever started it waits for its outcome (the load tester), so the error summary never holds them back.
   */
  ours?: boolean | undefined;
}

/**
 * The gateways' error summaries: every room reports errors through emitError with the gateway as its
 * emitter, and the gateway's summary decides what is emitted (error-summary.ts).
 */
const summaries = new WeakMap<GatewayEmitter, ErrorSummary>();

export function summariseErrors(events: GatewayEmitter, summary: ErrorSummary): void {
  summaries.set(events, summary);
}

/** An 'error' event, through the emitter's summary when it has one (counted; repeats and floods held back). */
export function reportError(events: GatewayEmitter, e: GatewayErrorEvent, ours = false): void {
  const summary = summaries.get(events);
  if (summary) summary.report(e, Date.now(), ours);
  else events.emit('error', e);
}

/** A failure as an 'error' event: an IkeError keeps its kind, anything else is INTERNAL. */
export function emitError(events: GatewayEmitter, e: unknown, scope: ErrorScope): void {
  const err = e instanceof IkeError ? e : new IkeError('INTERNAL', (e as Error)?.message ?? String(e));
  reportError(events, { connection: scope.connection, cookieI: scope.cookieI, remote: scope.remote ?? { address: '', port: 0 }, kind: err.kind, message: err.message }, scope.ours === true);
}

/** Work started from a socket or timer callback: a failure becomes an 'error' event, never an unhandled rejection. */
export function guard(events: GatewayEmitter, p: Promise<unknown>, scope: ErrorScope): void {
  p.catch((e) => emitError(events, e, scope));
}
