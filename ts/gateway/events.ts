// What the gateway tells its embedder: typed events, the status of its SAs (never key material) and its options.
import type { EventEmitter } from 'node:events';
import type { CryptoProvider } from '../crypto/index.js';
import type { EspSa } from '../esp/index.js';
import { IkeError, type ChildSa, type Endpoint, type IsakmpSa, type RemoteAccessEvent } from '../ike/index.js';
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
  /** The TUN data plane's own counters: ESP datagrams, NAT keepalives received from peers. */
  dataplane: { tun: string; keepalivesReceived: number; espSent: number; espReceived: number } | null;
  halfOpen: number;
  sas: Phase1Status[];
}

export interface GatewayOptions {
  crypto?: CryptoProvider;
  /** Half-open phase 1 exchanges kept at most, in total and per peer address (oldest dropped first). */
  maxHalfOpen?: number;
  maxHalfOpenPerPeer?: number;
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

/** Where a failure happened, as the 'error' event names it. */
export interface ErrorScope {
  connection?: string | undefined;
  remote?: Endpoint;
  /** The ISAKMP SA's initiator cookie (hex). */
  cookieI?: string | undefined;
}

/** A failure as an 'error' event: an IkeError keeps its kind, anything else is INTERNAL. */
export function emitError(events: GatewayEmitter, e: unknown, scope: ErrorScope): void {
  const err = e instanceof IkeError ? e : new IkeError('INTERNAL', (e as Error)?.message ?? String(e));
  events.emit('error', { connection: scope.connection, cookieI: scope.cookieI, remote: scope.remote ?? { address: '', port: 0 }, kind: err.kind, message: err.message });
}

/** Work started from a socket or timer callback: a failure becomes an 'error' event, never an unhandled rejection. */
export function guard(events: GatewayEmitter, p: Promise<unknown>, scope: ErrorScope): void {
  p.catch((e) => emitError(events, e, scope));
}
