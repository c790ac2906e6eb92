// The gateway runtime: UDP sockets on the IKE port and the NAT-T port, the table of ISAKMP SAs by cookie,
// their phase 2 contexts, timers (retransmission, DPD, lifetimes, rekeying) and typed events. The
// exchanges are the sans-I/O machines of ts/ike; this file moves datagrams and time between them and the
// network, and keeps the ESP SAs the negotiations produce.
import { EventEmitter } from 'node:events';
import { defaultCrypto, type CryptoProvider } from '../crypto/index.js';
import type { EspSa } from '../esp/index.js';
import { ExchangeType, Flags, parseHeader, idToString, type Identity } from '../isakmp/index.js';
import {
  CookieGenerator,
  AddressPool,
  createChildEspSas,
  hostSelector,
  IkeError,
  LoginLimiter,
  RemoteAccessClient,
  RemoteAccessServer,
  type RemoteAccessEvent,
  type RemoteAccessOutput,
  IsakmpSaContext,
  natFloat,
  Phase1,
  tsToString,
  ZERO_COOKIE,
  DEFAULT_RETRANSMIT,
  fullChildSa,
  retainChildSa,
  RetainedChildSa,
  retransmitTotalMs,
  type ChildSa,
  type DpdPolicy,
  type Endpoint,
  type IsakmpSa,
  type Phase1Output,
  type Phase1Policy,
  type Phase2Output,
  type Phase2Policy,
} from '../ike/index.js';
import { retransmitPolicy, type ConnectionConfig, type GatewayConfig } from './config.js';
import { childKeylog, isakmpKeylog, type KeylogLine } from './keylog.js';
import { configureTun, DataPlane, openTun, type TunDevice } from './dataplane.js';
import { Deadlines } from './deadlines.js';
import { openSocket, type GatewaySocket } from './sockets.js';
import { nativeAddon } from '../native.js';

/** RFC 3948: IKE on the NAT-T port is prefixed with four zero bytes (the non-ESP marker). */
const NON_ESP_MARKER = Buffer.alloc(4);
/** RFC 3948 2.3: the NAT keepalive is one octet, 0xff. */
const KEEPALIVE = Buffer.from([0xff]);
/** How long an ISAKMP SA's Delete waits behind the Deletes of its children (teardown). */
const ISAKMP_DELETE_DELAY_MS = 20;

/** A child SA is rekeyed this far into its lifetime (minus up to 5% jitter so both ends do not collide). */
const REKEY_AT = 0.9;
/** After a rekey, the old SA keeps receiving this long (packets in flight), then it is deleted. */
const REKEY_OVERLAP_MS = 5_000;

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

interface Child {
  /** Compact: the keys are in one block (fullChildSa gives them back for keylog); the ESP SAs have their own. */
  sa: RetainedChildSa;
  inbound: EspSa;
  outbound: EspSa;
  /** When we start its replacement (we initiated it), when it goes after being replaced; expiry is sa.expiresAt. */
  rekeyAt: number | null;
  dropAt: number | null;
  /** Replaced by a rekey: no longer used to send. */
  rekeyed: boolean;
}

interface Entry {
  /** Initiator cookie (hex): this entry's key in `sas`. */
  key: string;
  /**
   * The phase 1 exchange: until it completes, then for a grace period in which the peer may repeat its last
   * message and get our cached answer (see established()); then dropped, `sa` being all that is needed.
   */
  phase1: Phase1 | null;
  /** The ISAKMP SA, once phase 1 is complete. */
  sa: IsakmpSa | null;
  ctx: IsakmpSaContext;
  /** Filled when phase 1 completes (the PFS group and the peer's DPD support are known only then). */
  ctxOptions: { children: Phase2Policy[]; dpd?: DpdPolicy };
  connection: string;
  remote: Endpoint;
  /** Talking on the NAT-T port (floated, or the peer came there). */
  natt: boolean;
  /** Phase 1: retransmission, then the end of the grace period. */
  timer: NodeJS.Timeout | null;
  /**
   * The first of everything else that falls due (see wake()): the phase 2 context's deadline (Quick Mode
   * retransmission, DPD), the lifetimes and rekeys of the ISAKMP SA and its children, a pending delete.
   * The gateway keeps these in one heap with one Node timer (deadlines.ts): a Node timer per SA costs some
   * 250 bytes, which a gateway with many SAs notices.
   */
  wakeAt: number;
  heapIndex: number;
  /** The context's own deadline (Phase2Output.timer). */
  ctxDue: number | null;
  /** When we start a new ISAKMP SA to replace this one (we initiated it); its expiry is sa.expiresAt. */
  rekeyAt: number | null;
  /** A delete decided for later (XAUTH failure), and why. */
  dropAt: number | null;
  dropReason: string;
  keepaliveTimer: NodeJS.Timeout | null;
  up: boolean;
  /**
   * Its child SAs, replaced (never changed in place) when one comes or goes: an exact-size array, where a Map
   * would cost some 250 bytes for the one or two children an SA has.
   */
  children: readonly Child[];
  /**
   * Responder: children whose QM2 went out and whose QM3 has not come yet. Their inbound direction already
   * takes packets (the initiator sends on a new child as soon as QM2 arrives); nothing is sent on them.
   */
  early?: Child[];
  /** We started this ISAKMP SA to bring a child up (not to replace an expiring ISAKMP SA). */
  wantChild: boolean;
  /** NAT keepalives sent on this ISAKMP SA's behalf. */
  keepalives: number;
  /** Started with `independent` (load testing): never replaces, nor is replaced by, another SA of its connection. */
  independent: boolean;
  /** XAUTH / Mode-Config on this ISAKMP SA (connections with `xauth` or `modeConfig`). */
  ra?: RemoteAccessServer | RemoteAccessClient;
  raTimer?: NodeJS.Timeout | null;
  /** Client: the address Mode-Config gave us, our side of every Quick Mode. */
  virtualIp?: string;
}

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly config: GatewayConfig;
  private readonly crypto: CryptoProvider;
  private readonly cookies: CookieGenerator;
  private readonly options: Required<Omit<GatewayOptions, 'crypto'>>;
  private ike: GatewaySocket | null = null;
  /** The NAT-T port: our own socket, or the data plane's when the TUN data plane carries the traffic. */
  private natt: GatewaySocket | null = null;
  private dataplane: DataPlane | null = null;
  private tun: TunDevice | null = null;
  /** ISAKMP SAs (and exchanges on their way to one) by initiator cookie. */
  private readonly sas = new Map<string, Entry>();
  /**
   * The entries of `sas` whose phase 1 is not complete, oldest first: the half-open limits look at these
   * alone (a scan of every SA per message 1 would make setting up N SAs cost N^2).
   */
  private readonly halfOpen = new Map<string, Entry>();
  /** ISAKMP SA Deletes held back behind their children's Deletes (see teardown): stop() waits for them. */
  private readonly heldDeletes = new Set<Promise<void>>();
  /** Inbound child SAs by SPI (hex), for ESP arriving on the NAT-T socket. */
  private readonly inbound = new Map<string, { entry: Entry; child: Child }>();
  private localAddress = '0.0.0.0';
  /** Remote access: one address pool and one failed-login limiter per connection. */
  private readonly pools = new Map<string, AddressPool>();
  private readonly limiters = new Map<string, LoginLimiter>();
  private ports = { ike: 0, natt: 0 };
  /**
   * What every SA of a connection shares, built once per connection instead of once per SA: its phase 1
   * policy, its child policies (by PFS group), its DPD settings, our endpoint objects.
   */
  private readonly perConnection = new WeakMap<ConnectionConfig, { localAddress: string; phase1: Phase1Policy; children: Map<number, Phase2Policy[]>; dpd?: DpdPolicy }>();
  private readonly localEndpoints = new Map<string, Endpoint>();
  /** Every SA's next deadline (Entry.wakeAt), one Node timer for them all. */
  private readonly deadlines = new Deadlines<Entry>((entry) => this.tick(entry));

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    super();
    this.config = config;
    this.crypto = options.crypto ?? defaultCrypto();
    this.cookies = new CookieGenerator(this.crypto);
    this.options = {
      maxHalfOpen: options.maxHalfOpen ?? 10_000,
      maxHalfOpenPerPeer: options.maxHalfOpenPerPeer ?? 1_000,
      asyncDh: options.asyncDh ?? true,
      independentSas: options.independentSas ?? false,
      nativeUdp: options.nativeUdp ?? nativeAddon() !== null,
    };
  }

  /** Binds the sockets, then starts the connections marked `initiate`. */
  async start(): Promise<void> {
    const { address, port, nattPort } = this.config.listen;
    this.localAddress = address;
    const onError = (message: string, to: Endpoint) => this.emit('error', { remote: to, kind: 'SOCKET', message });
    const native = this.options.nativeUdp;
    this.ike = await openSocket(address, port, { onMessage: (msg, from) => this.receive(msg, from, false), onError }, native);
    if (this.config.dataplane) {
      await this.startDataPlane(address, nattPort);
      this.ports = { ike: this.ike.port, natt: this.dataplane!.port };
    } else {
      this.natt = await openSocket(address, nattPort, { onMessage: (msg, from) => this.receiveNatt(msg, from), onError }, native);
      this.ports = { ike: this.ike.port, natt: this.natt.port };
    }
    this.emit('listening', { address, port: this.ports.ike, nattPort: this.ports.natt });
    for (const c of this.config.connections) if (c.initiate) this.guard(this.initiate(c.name), c.name);
  }

  /**
   * The TUN device and the native worker that owns the NAT-T port: ESP never reaches JavaScript, IKE on that
   * port comes up through onIke. Routes to every configured remote selector point into the device.
   */
  private async startDataPlane(address: string, nattPort: number): Promise<void> {
    const d = this.config.dataplane!;
    const routes = new Set<string>();
    let source: string | undefined;
    for (const c of this.config.connections) {
      if (c.remoteTs !== 'dynamic') for (const ts of c.remoteTs) routes.add(selectorCidr(ts));
      if (source === undefined && c.localTs !== 'dynamic' && c.localTs[0]?.kind === 'ipv4') source = c.localTs[0].address;
    }
    this.tun = openTun(d.tun, { offload: d.offload });
    try {
      await configureTun(this.tun.name, { mtu: d.mtu, routes: [...routes], source });
      this.dataplane = new DataPlane({ tunFd: this.tun.fd, address, port: nattPort, onIke: (m, from) => this.receive(Buffer.from(m), from, true) });
    } catch (e) {
      this.tun.close();
      this.tun = null;
      throw e;
    }
  }

  /** The ports actually bound. */
  get boundPorts(): { ike: number; natt: number } {
    return { ...this.ports };
  }

  /**
   * Brings a connection up: a Quick Mode on its established ISAKMP SA, or phase 1 first (`fresh`: always a
   * new ISAKMP SA, as a load tester wants). Resolves to the initiator cookie (hex) of the ISAKMP SA used.
   * Failures arrive as 'error' events.
   */
  async initiate(name: string, options: { fresh?: boolean; withChild?: boolean; independent?: boolean } = {}): Promise<string | undefined> {
    const c = this.connection(name);
    if (c.remote === '%any') throw new IkeError('POLICY', `connection '${name}' has remote %any and can only respond`);
    const up = options.fresh ? undefined : [...this.sas.values()].find((e) => e.up && e.connection === name);
    if (up) {
      await this.startQuickMode(up, c);
      return up.key;
    }
    const remote = { address: c.remote, port: c.remotePort };
    const now = Date.now();
    try {
      const { phase1, out } = await Phase1.initiate(this.env(remote, c), this.policy(c), now);
      const entry = this.newEntry(phase1, c.name, remote, false, now);
      entry.wantChild = options.withChild ?? true;
      entry.independent = options.independent ?? this.options.independentSas;
      const key = entry.key;
      this.sas.set(key, entry);
      this.halfOpen.set(key, entry);
      this.applyPhase1(entry, out);
      return key;
    } catch (e) {
      this.emitError(e, c.name, remote);
      return undefined;
    }
  }

  /** Deletes one ISAKMP SA (by initiator cookie, hex) with its child SAs, telling the peer. */
  deleteSa(cookieI: string, reason = 'deleted locally'): void {
    const e = this.sas.get(cookieI);
    if (e) this.teardown(cookieI, e, reason, true);
  }

  /** Tears a connection down: deletes for its child SAs and ISAKMP SAs go to the peer first. */
  delete(name: string, reason = 'deleted locally'): void {
    for (const [key, e] of this.sas) if (e.connection === name) this.teardown(key, e, reason, true);
  }

  /** Sends deletes for everything, then closes the sockets. */
  async stop(): Promise<void> {
    for (const [key, e] of this.sas) this.teardown(key, e, 'gateway stopped', true);
    // the sockets let the deletes leave before they close
    await Promise.all(this.heldDeletes);
    await Promise.all([this.ike?.close(), this.natt?.close()]);
    this.ike = this.natt = null;
    this.dataplane?.close();
    this.tun?.close();
    this.dataplane = null;
    this.tun = null;
  }

  /** Table sizes: what a flood test or an operator watches. */
  stats(): { halfOpen: number; phase1: number; children: number } {
    let halfOpen = 0;
    let phase1 = 0;
    let children = 0;
    for (const e of this.sas.values()) {
      if (e.up) phase1++;
      else halfOpen++;
      children += e.children.length;
    }
    return { halfOpen, phase1, children };
  }

  phase1Sas(): IsakmpSa[] {
    return [...this.sas.values()].filter((e) => e.up).map((e) => e.sa!);
  }

  childSas(): ChildSa[] {
    return [...this.sas.values()].flatMap((e) => e.children.filter((c) => !c.rekeyed).map((c) => fullChildSa(c.sa)));
  }

  /** Every established ISAKMP SA with its children, counters and remaining lifetimes; never key material. */
  status(now = Date.now()): GatewayStatus {
    const dp = this.dataplane?.stats();
    const counters = (spi: Buffer, direction: 'inbound' | 'outbound', esp: EspSa) => {
      // an ESP SA lent to the data plane cannot be asked itself: the data plane counts for it
      const s = dp ? dp.sas.find((x) => x.spi === spi.readUInt32BE(0) && x.direction === direction) : esp.stats();
      return { packets: s?.packets ?? 0, bytes: s?.bytes ?? 0 };
    };
    const remaining = (expiresAt: number) => Math.max(0, Math.round((expiresAt - now) / 1000));
    const sas: Phase1Status[] = [];
    for (const e of this.sas.values()) {
      if (!e.up) continue;
      const sa = e.sa!;
      sas.push({
        connection: e.connection,
        role: sa.initiator ? 'initiator' : 'responder',
        mode: sa.mode,
        local: e.natt ? { address: sa.local.address, port: this.ports.natt } : { ...sa.local },
        remote: { ...e.remote },
        localId: idToString(sa.localId),
        remoteId: idToString(sa.remoteId),
        algorithms: sa.algorithms,
        cookieI: sa.cookieI.toString('hex'),
        cookieR: sa.cookieR.toString('hex'),
        established: new Date(sa.establishedAt).toISOString(),
        lifetimeRemainingSeconds: remaining(sa.expiresAt),
        nat: { local: sa.nat.localBehindNat, remote: sa.nat.remoteBehindNat, natt: e.natt, keepaliveSeconds: this.keepaliveSeconds(e), keepalivesSent: e.keepalives },
        children: e.children.map((c) => ({
          spiIn: c.sa.spiIn.toString('hex'),
          spiOut: c.sa.spiOut.toString('hex'),
          proposal: c.sa.proposal,
          mode: c.sa.mode,
          localTs: tsToString(c.sa.localTs),
          remoteTs: tsToString(c.sa.remoteTs),
          encapsulation: c.sa.encapsulation,
          established: new Date(c.sa.establishedAt).toISOString(),
          lifetimeRemainingSeconds: remaining(c.sa.expiresAt),
          rekeyed: c.rekeyed,
          in: counters(c.sa.spiIn, 'inbound', c.inbound),
          out: counters(c.sa.spiOut, 'outbound', c.outbound),
        })),
      });
    }
    const dataplane = dp && this.tun ? { tun: this.tun.name, keepalivesReceived: dp.keepalives, espSent: dp.espSent, espReceived: dp.espReceived } : null;
    return { listen: { address: this.localAddress, port: this.ports.ike, nattPort: this.ports.natt }, dataplane, halfOpen: this.stats().halfOpen, sas };
  }

  /**
   * Wireshark's key table lines for every established SA, whatever the connections' `keylog` setting:
   * for an operator who already controls the process (the control socket is owner-only).
   */
  keylogLines(): KeylogLine[] {
    const lines: KeylogLine[] = [];
    for (const e of this.sas.values()) {
      if (!e.up) continue;
      const sa = e.sa!;
      lines.push(isakmpKeylog(sa));
      for (const c of e.children) lines.push(...childKeylog(fullChildSa(c.sa), sa.local, e.remote));
    }
    return lines;
  }

  /**
   * Seals one packet with the connection's current outbound SA and sends it as ESP in UDP to the peer's
   * NAT-T port (RFC 3948). For hosts that carry traffic themselves; the TUN data plane does this natively.
   */
  sendEsp(connection: string, payload: Buffer, nextHeader = 4): void {
    const found = this.currentChild(connection);
    if (!found) throw new IkeError('POLICY', `connection '${connection}' has no child SA`);
    if (this.dataplane) throw new IkeError('POLICY', `the TUN data plane carries the traffic of '${connection}': route packets into ${this.tun?.name}`);
    const { entry, child } = found;
    const packet = child.outbound.seal(payload, nextHeader);
    const port = this.peerNattPort(entry);
    this.natt?.send(packet, { address: entry.remote.address, port });
  }

  // ---- receiving ----

  private receiveNatt(msg: Buffer, from: Endpoint): void {
    // 1 byte 0xff = NAT keepalive (RFC 3948 2.3); a marker of 4 zero bytes = IKE; anything else is ESP.
    if (msg.length >= 4 + 28 && msg.subarray(0, 4).equals(NON_ESP_MARKER)) return this.receive(msg.subarray(4), from, true);
    if (msg.length < 8) return;
    const spi = msg.subarray(0, 4).toString('hex');
    const hit = this.inbound.get(spi);
    if (!hit) return;
    const r = hit.child.inbound.open(msg);
    if (!r.ok) return;
    hit.entry.ctx.activity(Date.now());
    this.emit('esp-packet', { connection: hit.entry.connection, spi, payload: r.payload, nextHeader: r.nextHeader });
  }

  private receive(msg: Buffer, from: Endpoint, natt: boolean): void {
    const h = parseHeader(msg);
    if (!h.ok) return; // not ISAKMP: nothing to answer
    if (this.listenerCount('datagram') > 0) this.emit('datagram', { direction: 'in', remote: from, bytes: msg });
    const key = h.value.initiatorCookie.toString('hex');
    const entry = this.sas.get(key);
    const now = Date.now();
    if (!entry) {
      if (h.value.responderCookie.equals(ZERO_COOKIE)) this.guard(this.respond(Buffer.from(msg), from, natt, now), undefined, from);
      return; // else: an exchange we do not know (or forgot)
    }
    if (entry.remote.address !== from.address) return;
    // the peer's NAT mapping moved (RFC 3947 5): an established SA follows only an authenticated message
    const moved = natt === entry.natt && from.port !== entry.remote.port;
    if (natt && !entry.natt) {
      entry.natt = true;
      entry.remote = from; // the peer floated
    } else if (moved && !entry.up) entry.remote = from;
    const data = Buffer.from(msg);
    const { messageId, exchangeType, flags } = h.value;
    // Message ID 0 is phase 1; so are the clear notifies a peer sends while phase 1 is not complete.
    const phase1 = messageId === 0 || (!entry.up && exchangeType === ExchangeType.INFORMATIONAL && (flags & Flags.ENCRYPTION) === 0);
    if (phase1) {
      // after the grace period nothing answers phase 1 any more: a late repeat is dropped
      const p1 = entry.phase1;
      if (p1) this.guard(p1.handle(data, now).then((out) => this.applyPhase1(entry, out)), entry.connection, from, entry);
    } else if (exchangeType === ExchangeType.TRANSACTION) {
      const ra = entry.ra;
      if (ra) this.guard(ra.handle(data, now).then((out) => this.applyRemoteAccess(entry, out)), entry.connection, from, entry);
    } else {
      // XAUTH_INIT_PSK: no Quick Mode from a client before XAUTH succeeded (not even queued for later).
      const c = this.configOf(entry);
      if (exchangeType === ExchangeType.QUICK_MODE && c?.xauth?.role === 'server' && !(entry.ra instanceof RemoteAccessServer && entry.ra.authenticated)) return;
      this.guard(
        entry.ctx.handle(data, now).then((out) => {
          if (moved && entry.up && out.dropped.length === 0) this.follow(entry, from);
          this.applyPhase2(entry, out);
        }),
        entry.connection,
        from,
        entry,
      );
    }
  }

  /** IKE and, with the data plane, the ESP of every child go to the peer's new address:port from now on. */
  private follow(entry: Entry, to: Endpoint): void {
    entry.remote = to;
    if (entry.natt && this.dataplane) for (const c of entry.children) this.dataplane.setPeer(c.sa.spiOut.readUInt32BE(0), to);
  }

  private async respond(msg: Buffer, from: Endpoint, natt: boolean, now: number): Promise<void> {
    const candidates = this.config.connections.filter((c) => c.remote === '%any' || c.remote === from.address);
    this.admitHalfOpen(from.address);
    const { phase1, out } = await Phase1.respond(this.env(from, candidates[0]), candidates.map((c) => this.policy(c)), msg, now);
    if (phase1) {
      const entry = this.newEntry(phase1, phase1.policy.name, from, natt, now);
      const key = entry.key;
      this.sas.set(key, entry);
      this.halfOpen.set(key, entry);
      this.applyPhase1(entry, out);
    } else {
      for (const m of out.send) this.send(m, from, natt);
      if (out.failed) this.emitError(out.failed, undefined, from);
    }
  }

  /** Half-open limits: a flood of message 1s cannot grow the table without bound; the oldest go first. */
  private admitHalfOpen(address: string): void {
    // halfOpen is in creation order: the first match is the oldest
    let perPeer = 0;
    let oldestOfPeer: [string, Entry] | undefined;
    for (const [k, e] of this.halfOpen) {
      if (e.remote.address !== address) continue;
      perPeer++;
      oldestOfPeer ??= [k, e];
    }
    if (oldestOfPeer && perPeer >= this.options.maxHalfOpenPerPeer) this.forget(...oldestOfPeer);
    const oldest = this.halfOpen.entries().next().value as [string, Entry] | undefined;
    if (oldest && this.halfOpen.size >= this.options.maxHalfOpen) this.forget(...oldest);
  }

  // ---- phase 1 ----

  private newEntry(phase1: Phase1, connection: string, remote: Endpoint, natt: boolean, now: number): Entry {
    // dpd is declared now, set later: a property added afterwards would cost the object a separate property array
    const ctxOptions: Entry['ctxOptions'] = { children: [], dpd: undefined };
    return {
      key: phase1.cookieI.toString('hex'),
      phase1,
      sa: null,
      ctx: new IsakmpSaContext(this.crypto, null, ctxOptions, now),
      ctxOptions,
      connection,
      remote,
      natt,
      timer: null,
      wakeAt: Infinity,
      heapIndex: -1,
      ctxDue: null,
      rekeyAt: null,
      dropAt: null,
      dropReason: '',
      keepaliveTimer: null,
      up: false,
      children: [],
      wantChild: false,
      keepalives: 0,
      independent: this.options.independentSas,
    };
  }

  private applyPhase1(entry: Entry, out: Phase1Output): void {
    const phase1 = entry.phase1;
    if (phase1 === null) return;
    if (entry.sa !== null) {
      // established: a repeated last message answered from the cache; the release timer stays as it is
      for (const m of out.send) this.send(m, entry.remote, entry.natt);
      return;
    }
    // RFC 3947 4: once NAT-D shows a NAT, the initiator sends from its next message on to the NAT-T port;
    // the responder follows when a message arrives there (see receive()).
    if (!entry.natt && phase1.initiator && natFloat(phase1.nat)) {
      entry.natt = true;
      entry.remote = { address: entry.remote.address, port: this.configOf(entry)?.remoteNattPort ?? 4500 };
    }
    for (const m of out.send) this.send(m, entry.remote, entry.natt);
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (out.timer !== null) {
      entry.timer = setTimeout(() => this.applyPhase1(entry, phase1.onTimer(Date.now())), Math.max(0, out.timer - Date.now()));
    }
    const key = entry.key;
    if (out.failed) {
      this.forget(key, entry);
      this.emitError(out.failed, entry.connection, entry.remote, entry);
      return;
    }
    if (out.established) {
      entry.sa = out.established;
      // The machine answers a repeat of the peer's last message (MM5, or AM2 at an AM initiator) for as long
      // as the peer may retransmit it (its schedule, taken to be ours), then goes: a gateway with many SAs
      // would otherwise keep every exchange's leftovers for the SA's whole life.
      const grace = retransmitTotalMs(phase1.policy.retransmit ?? DEFAULT_RETRANSMIT);
      entry.timer = this.later(grace, () => {
        entry.timer = null;
        entry.phase1 = null;
      });
      this.guard(this.established(key, entry, out.established), entry.connection, entry.remote, entry);
    }
  }

  private async established(key: string, entry: Entry, sa: IsakmpSa): Promise<void> {
    entry.up = true;
    this.halfOpen.delete(key);
    const c = this.configOf(entry)!;
    entry.ctxOptions.children = this.childPolicies(c, sa);
    const dpd = this.shared(c).dpd;
    if (dpd && sa.peerVendorIds.dpd) entry.ctxOptions.dpd = dpd;
    this.emit('phase1-up', {
      connection: sa.name,
      initiator: sa.initiator,
      mode: sa.mode,
      local: sa.local,
      // where the peer is now (the NAT-T port once IKE floated), not where the exchange started
      remote: { ...entry.remote },
      localId: idToString(sa.localId),
      remoteId: idToString(sa.remoteId),
      algorithms: sa.algorithms,
      lifetimeSeconds: sa.proposal.lifetimeSeconds,
      cookieI: sa.cookieI.toString('hex'),
      cookieR: sa.cookieR.toString('hex'),
      natDetected: { local: sa.nat.localBehindNat, remote: sa.nat.remoteBehindNat },
      sa,
    });
    if (c.keylog) this.emit('keylog', isakmpKeylog(sa));
    // Lifetime: a connection we initiate is re-established before the ISAKMP SA expires; at expiry it goes.
    // (the expiry is sa.expiresAt; wake() schedules the entry for whichever comes first)
    const life = sa.proposal.lifetimeSeconds * 1000;
    if (sa.initiator && c.initiate) entry.rekeyAt = Date.now() + life * (REKEY_AT - Math.random() * 0.05);
    this.wake(entry);
    const keepalive = this.keepaliveSeconds(entry);
    if (keepalive > 0) entry.keepaliveTimer = setInterval(() => this.sendKeepalive(entry), keepalive * 1000);
    this.applyPhase2(entry, await entry.ctx.establish(sa, Date.now()));
    const ra = this.startRemoteAccess(entry, c, sa);
    // Replaced by a rekey: the older ISAKMP SA of this connection and peer is deleted once the new one is up.
    for (const [k, e] of this.sas) {
      if (!sa.initiator || entry.independent || e.independent) break; // the peer deletes its own old SAs; load-test SAs stand alone
      if (e !== entry && e.up && e.connection === entry.connection && e.remote.address === entry.remote.address && e.sa!.establishedAt < sa.establishedAt && e.children.length === 0) {
        this.teardown(k, e, 'replaced by a newer ISAKMP SA', true);
      }
    }
    // A phase 1 rekey moves the children over at once, not when their own rekey timers say: the old ISAKMP
    // SA's expiry takes down any child still on it, and nothing would bring the tunnel back (found by ike soak).
    const moving = sa.initiator && !entry.independent && [...this.sas.values()].some((e) => e !== entry && e.up && !e.independent && e.connection === entry.connection && e.remote.address === entry.remote.address && e.children.some((ch) => !ch.rekeyed));
    // A remote-access client starts its Quick Mode once XAUTH / Mode-Config are done (applyRemoteAccess).
    if (sa.initiator && (entry.wantChild || moving) && !(ra instanceof RemoteAccessClient)) await this.startQuickMode(entry, c);
  }

  // ---- remote access (XAUTH, Mode-Config) ----

  private startRemoteAccess(entry: Entry, c: ConnectionConfig, sa: IsakmpSa): RemoteAccessServer | RemoteAccessClient | undefined {
    if (!c.xauth && !c.modeConfig) return undefined;
    const retransmit = retransmitPolicy(c);
    const newMessageId = () => entry.ctx.newMessageId();
    const now = Date.now();
    if (c.xauth?.role === 'client' || c.modeConfig?.role === 'client') {
      const ra = new RemoteAccessClient(this.crypto, sa, {
        ...(c.xauth?.role === 'client' ? { xauth: { user: c.xauth.user, password: c.xauth.password } } : {}),
        modeConfig: c.modeConfig?.role === 'client' ? c.modeConfig.mode : 'none',
        retransmit,
        newMessageId,
      });
      entry.ra = ra;
      this.applyRemoteAccess(entry, ra.start(now));
      return ra;
    }
    const x = c.xauth?.role === 'server' ? c.xauth : undefined;
    const m = c.modeConfig?.role === 'server' ? c.modeConfig : undefined;
    let limiter = this.limiters.get(c.name);
    if (x && !limiter) this.limiters.set(c.name, (limiter = new LoginLimiter({ maxFailures: x.blockAfter, blockMs: x.blockSeconds * 1000 })));
    let pool = this.pools.get(c.name);
    if (m?.pool && !pool) this.pools.set(c.name, (pool = new AddressPool(m.pool)));
    const ra = new RemoteAccessServer(this.crypto, sa, {
      peer: entry.remote.address,
      ...(x ? { xauth: { verify: x.users.verify, maxAttempts: x.maxAttempts, ...(limiter ? { limiter } : {}) } } : {}),
      ...(m
        ? {
            modeConfig: {
              ...(pool ? { pool } : {}),
              ...(m.netmask !== undefined ? { netmask: m.netmask } : {}),
              dns: m.dns,
              nbns: m.nbns,
              splitInclude: m.splitInclude,
              ...(m.banner !== undefined ? { banner: m.banner } : {}),
              mode: m.mode,
            },
          }
        : {}),
      retransmit,
      newMessageId,
    });
    entry.ra = ra;
    this.applyRemoteAccess(entry, ra.start(now));
    return ra;
  }

  private applyRemoteAccess(entry: Entry, out: RemoteAccessOutput): void {
    const ra = entry.ra;
    if (!ra || !entry.up) return;
    for (const m of out.send) this.send(m, entry.remote, entry.natt);
    if (entry.raTimer) clearTimeout(entry.raTimer);
    entry.raTimer = out.timer === null ? null : setTimeout(() => this.guard(ra.onTimer(Date.now()).then((o) => this.applyRemoteAccess(entry, o)), entry.connection, entry.remote, entry), Math.max(0, out.timer - Date.now()));
    const key = entry.key;
    const c = this.configOf(entry)!;
    for (const ev of out.events) {
      this.emit('remote-access', { connection: entry.connection, remote: entry.remote, cookieI: key, event: ev });
      if (ev.type === 'xauthFailed' || ev.type === 'modeCfgFailed') {
        this.emitError(new IkeError(ev.type === 'xauthFailed' ? 'AUTHENTICATION_FAILED' : 'POLICY', `${ev.type === 'xauthFailed' ? 'XAUTH' : 'Mode-Config'}: ${ev.reason}`), entry.connection, entry.remote, entry);
        // The server lets its SET(FAIL) be acknowledged before it deletes the ISAKMP SA.
        if (ev.type === 'xauthFailed') {
          entry.dropAt = Date.now() + (ra instanceof RemoteAccessServer ? 2_000 : 0);
          entry.dropReason = `XAUTH failed: ${ev.reason}`;
          this.wake(entry);
        }
      } else if (ra instanceof RemoteAccessServer && ev.type === 'modeCfg' && ev.config.address !== undefined) {
        // The client's side of its Quick Modes is exactly the address it was given.
        entry.ctxOptions.children = entry.ctxOptions.children.map((p) => ({ ...p, remoteTs: hostSelector(ev.config.address!) }));
      } else if (ra instanceof RemoteAccessClient && entry.wantChild && entry.sa?.initiator) {
        const ready = ev.type === 'modeCfg' || (ev.type === 'xauthOk' && c.modeConfig?.role !== 'client');
        if (ev.type === 'modeCfg' && ev.config.address !== undefined) entry.virtualIp = ev.config.address;
        if (ready) this.guard(this.startQuickMode(entry, c), entry.connection, entry.remote, entry);
      }
    }
  }

  /** A new ISAKMP SA before this one expires; children move to it as they rekey, then this one is deleted. */
  private rekeyPhase1(key: string, entry: Entry): void {
    if (!this.sas.has(key)) return;
    this.guard(this.initiate(entry.connection, { fresh: true, withChild: false }), entry.connection);
  }

  /** The newest established ISAKMP SA of a connection with this peer: where new Quick Modes go. */
  private newest(entry: Entry): Entry {
    if (entry.independent) return entry;
    let best = entry;
    for (const e of this.sas.values()) {
      if (e.up && !e.independent && e.connection === entry.connection && e.remote.address === entry.remote.address && e.sa!.establishedAt > best.sa!.establishedAt) best = e;
    }
    return best;
  }

  /**
   * RFC 3948 2.3: behind a NAT, a one-octet 0xff datagram to the peer's NAT-T port keeps the mapping alive.
   * Forced encapsulation counts as behind a NAT (phase 1 cannot tell them apart, and a forced tunnel often
   * crosses a NAT that NAT-D does not see). 0 = none.
   */
  private keepaliveSeconds(entry: Entry): number {
    const sa = entry.sa;
    if (!sa || sa.nat.version === null || !sa.nat.localBehindNat) return 0;
    return this.configOf(entry)?.natKeepaliveSeconds ?? 0;
  }

  private sendKeepalive(entry: Entry): void {
    if (!entry.up || !entry.natt) return;
    const { address, port } = entry.remote;
    entry.keepalives++;
    if (this.dataplane) this.dataplane.sendKeepalive(address, port);
    else this.natt?.send(KEEPALIVE, { address, port });
  }

  // ---- phase 2 ----

  private async startQuickMode(entry: Entry, c: ConnectionConfig): Promise<void> {
    try {
      let policy = this.childPolicy(c, entry.sa!);
      if (entry.virtualIp !== undefined) policy = { ...policy, localTs: hostSelector(entry.virtualIp) };
      const { out } = await entry.ctx.initiate(policy, Date.now());
      this.applyPhase2(entry, out);
    } catch (e) {
      this.emitError(e, c.name, entry.remote, entry);
    }
  }

  private applyPhase2(entry: Entry, out: Phase2Output): void {
    for (const m of out.send) this.send(m, entry.remote, entry.natt);
    entry.ctxDue = out.timer;
    this.wake(entry);
    const key = entry.key;
    for (const ev of out.events) {
      switch (ev.type) {
        case 'childInbound':
          this.childInbound(entry, ev.child);
          break;
        case 'childSa':
          this.childUp(entry, ev.child);
          break;
        case 'childFailed':
          this.dropEarly(entry, (c) => c.sa.messageId === ev.messageId);
          this.emitError(ev.error, entry.connection, entry.remote, entry);
          break;
        case 'delete':
          if (ev.protocol === 1) this.teardown(key, entry, 'deleted by the peer', false);
          else for (const spi of ev.spis) this.childDown(entry, spi, 'deleted by the peer', false);
          break;
        case 'peerDead': {
          this.teardown(key, entry, `dead peer (no answer to DPD for ${Math.round(ev.idleMs / 1000)} s)`, false);
          if (ev.action === 'restart') this.guard(this.initiate(entry.connection), entry.connection);
          break;
        }
        case 'initialContact':
          // RFC 2407 4.6.3.3: the peer has rebooted and holds no other SA with us: drop our stale ones.
          for (const [k, e] of this.sas) {
            if (e !== entry && e.up && e.remote.address === entry.remote.address && e.connection === entry.connection) this.teardown(k, e, 'INITIAL-CONTACT from the peer', false);
          }
          break;
        case 'notify':
          if (ev.error) this.emitError(new IkeError('PEER_NOTIFY', `peer ${entry.remote.address} sent ${ev.name}`), entry.connection, entry.remote);
          break;
        default:
          break;
      }
    }
  }

  /** Responder, QM2 sent: the new child's inbound ESP SA takes packets from now on (see Entry.early). */
  private childInbound(entry: Entry, sa: ChildSa): void {
    const child = newChild(sa, createChildEspSas(sa));
    entry.early = [...(entry.early ?? []), child];
    this.inbound.set(sa.spiIn.toString('hex'), { entry, child });
    if (this.dataplane) this.install(entry, child, [], { outbound: false, inbound: true });
  }

  /** Takes back early children (QM3 never came, or the SA goes): their inbound SA stops taking packets. */
  private dropEarly(entry: Entry, which: (c: Child) => boolean): void {
    const gone = entry.early?.filter(which) ?? [];
    if (gone.length === 0) return;
    entry.early = entry.early!.filter((c) => !which(c));
    for (const child of gone) this.releaseEsp(child, false);
  }

  /** A child's ESP SAs stop: no longer found by SPI, out of the data plane (its outbound only if installed), freed. */
  private releaseEsp(child: Child, outboundInstalled: boolean): void {
    this.inbound.delete(child.sa.spiIn.toString('hex'));
    if (this.dataplane) {
      if (outboundInstalled) this.dataplane.remove(child.sa.spiOut.readUInt32BE(0), 'outbound');
      this.dataplane.remove(child.sa.spiIn.readUInt32BE(0), 'inbound');
    }
    child.inbound.destroy?.();
    child.outbound.destroy?.();
  }

  private childUp(entry: Entry, sa: ChildSa): void {
    const c = this.configOf(entry)!;
    // responder: the ESP SAs made at QM2 (childInbound), whose inbound may have taken packets already
    const early = entry.early?.find((e) => e.sa.spiIn.equals(sa.spiIn));
    if (early) entry.early = entry.early!.filter((e) => e !== early);
    // the event hands `sa` itself to the application; the gateway keeps a compact copy for the SA's life
    // (made again: QM3 set the child's establishedAt / expiresAt)
    const child = newChild(sa, early ?? createChildEspSas(sa));
    // The SAs this one replaces (same connection, same selectors) stay for packets in flight, then go.
    // (also on an older ISAKMP SA of the connection: after a phase 1 rekey the children move over)
    const replaced: { owner: Entry; old: Child }[] = [];
    if (!entry.independent) for (const owner of this.sas.values()) {
      if (owner.connection !== entry.connection || owner.remote.address !== entry.remote.address) continue;
      if (owner.independent) continue;
      for (const old of owner.children) {
        if (old.sa.name === sa.name && tsToString(old.sa.localTs) === tsToString(sa.localTs) && tsToString(old.sa.remoteTs) === tsToString(sa.remoteTs)) replaced.push({ owner, old });
      }
    }
    for (const { owner, old } of replaced) {
      old.rekeyed = true;
      // keep an earlier drop: rekeys closer together than the overlap must not postpone it forever
      old.dropAt ??= Date.now() + REKEY_OVERLAP_MS;
      this.wake(owner);
    }
    const spi = sa.spiIn.toString('hex');
    entry.children = [...entry.children, child];
    this.inbound.set(spi, { entry, child });
    if (this.dataplane) this.install(entry, child, replaced.map((r) => r.old), { outbound: true, inbound: early === undefined });
    // its expiry is sa.expiresAt; the rekey (ours to start) a little before
    if (sa.initiator && c.initiate) child.rekeyAt = Date.now() + sa.lifetimeSeconds * 1000 * (REKEY_AT - Math.random() * 0.05);
    this.wake(entry);
    if (c.keylog) for (const l of childKeylog(sa, entry.sa!.local, entry.remote)) this.emit('keylog', l);
    this.emit('child-up', {
      connection: entry.connection,
      cookieI: entry.key,
      initiator: sa.initiator,
      spiIn: spi,
      spiOut: sa.spiOut.toString('hex'),
      proposal: sa.proposal,
      mode: sa.mode,
      encapsulation: sa.encapsulation,
      localTs: tsToString(sa.localTs),
      remoteTs: tsToString(sa.remoteTs),
      lifetimeSeconds: sa.lifetimeSeconds,
      rekey: replaced.length > 0,
      child: sa,
      inbound: child.inbound,
      outbound: child.outbound,
    });
  }

  /**
   * Hands a child's ESP SAs to the data plane. The SAs it replaces stop sending at once (the data plane
   * takes the first outbound SA that matches) but keep receiving until they are deleted.
   */
  private install(entry: Entry, child: Child, replaced: Child[], which: { outbound: boolean; inbound: boolean }): void {
    const dp = this.dataplane!;
    for (const old of replaced) dp.remove(old.sa.spiOut.readUInt32BE(0), 'outbound');
    const localTs = [selectorCidr(child.sa.localTs.id)];
    const remoteTs = [selectorCidr(child.sa.remoteTs.id)];
    try {
      if (which.outbound) dp.addOutbound({ spi: child.sa.spiOut.readUInt32BE(0), sa: child.outbound, localTs, remoteTs, peer: { address: entry.remote.address, port: this.peerNattPort(entry) } });
      if (which.inbound) dp.addInbound({ spi: child.sa.spiIn.readUInt32BE(0), sa: child.inbound, localTs, remoteTs });
    } catch (e) {
      this.emitError(new IkeError('INTERNAL', `data plane refused child SA ${child.sa.spiIn.toString('hex')}: ${(e as Error).message}`), entry.connection, entry.remote, entry);
    }
  }

  /** Removes one child SA, found by either of its SPIs; with `notify`, the peer gets a Delete first. */
  private childDown(entry: Entry, spi: Buffer, reason: string, notify: boolean): void {
    const child = entry.children.find((c) => c.sa.spiIn.equals(spi)) ?? entry.children.find((c) => c.sa.spiOut.equals(spi));
    if (!child) return;
    const spiIn = child.sa.spiIn.toString('hex');
    if (notify && entry.up) this.send(entry.ctx.deleteChildren([child.sa.spiIn]), entry.remote, entry.natt);
    entry.children = entry.children.filter((c) => c !== child);
    this.releaseEsp(child, true);
    this.emit('child-down', { connection: entry.connection, spiIn, spiOut: child.sa.spiOut.toString('hex'), reason });
    // An ISAKMP SA that a newer one replaced goes once its last child has moved over.
    if (entry.children.length === 0 && entry.up && this.newest(entry) !== entry) this.teardown(entry.key, entry, 'replaced by a newer ISAKMP SA', true);
  }

  /** Removes an ISAKMP SA with all its children; with `notify`, deletes go to the peer first. */
  private teardown(key: string, entry: Entry, reason: string, notify: boolean): void {
    const children = entry.children.length;
    for (const child of entry.children) this.childDown(entry, child.sa.spiIn, reason, notify);
    this.dropEarly(entry, () => true);
    if (notify && entry.up) {
      const del = entry.ctx.deleteIsakmp();
      const { remote, natt } = entry;
      if (children === 0) this.send(del, remote, natt);
      else {
        // The children's Deletes go first and the ISAKMP SA's a moment later. Sent back to back, a peer that
        // handles datagrams on several threads (strongSwan) may take the ISAKMP Delete first and drop the
        // others with the SA they name; in IKEv1 its IPsec SAs need not end with the ISAKMP SA.
        const held = new Promise<void>((resolve) =>
          setTimeout(() => {
            this.heldDeletes.delete(held);
            this.send(del, remote, natt);
            resolve();
          }, ISAKMP_DELETE_DELAY_MS),
        );
        this.heldDeletes.add(held);
      }
    }
    const wasUp = entry.up;
    this.forget(key, entry);
    if (wasUp) {
      const sa = entry.sa!;
      this.emit('phase1-down', { connection: entry.connection, remote: entry.remote, cookieI: sa.cookieI.toString('hex'), cookieR: sa.cookieR.toString('hex'), reason });
    }
  }

  private forget(key: string, entry: Entry): void {
    for (const t of [entry.timer, entry.raTimer]) if (t) clearTimeout(t);
    if (entry.keepaliveTimer) clearInterval(entry.keepaliveTimer);
    this.deadlines.remove(entry);
    entry.ra?.close(); // gives a pool address back
    entry.up = false;
    if (this.sas.get(key) === entry) this.sas.delete(key);
    if (this.halfOpen.get(key) === entry) this.halfOpen.delete(key);
  }

  private currentChild(connection: string): { entry: Entry; child: Child } | undefined {
    for (const entry of this.sas.values()) {
      if (entry.connection !== connection || !entry.up) continue;
      const live = entry.children.filter((c) => !c.rekeyed);
      if (live.length > 0) return { entry, child: live[live.length - 1]! };
    }
    return undefined;
  }

  // ---- plumbing ----

  private send(msg: Buffer, to: Endpoint, natt: boolean): void {
    if (this.listenerCount('datagram') > 0) this.emit('datagram', { direction: 'out', remote: to, bytes: msg });
    if (natt && this.dataplane) {
      this.dataplane.sendIke(msg, to.address, to.port);
      return;
    }
    if (natt) this.natt?.send(msg, to, NON_ESP_MARKER);
    else this.ike?.send(msg, to);
  }

  /** Schedules the entry (in the one heap of deadlines) at the first of its deadlines. */
  private wake(entry: Entry): void {
    if (this.sas.get(entry.key) !== entry) return; // forgotten: nothing more falls due
    let due = entry.ctxDue ?? Infinity;
    const consider = (t: number | null) => {
      if (t !== null && t < due) due = t;
    };
    if (entry.up) consider(entry.sa!.expiresAt);
    consider(entry.rekeyAt);
    consider(entry.dropAt);
    for (const ch of entry.children) {
      consider(ch.sa.expiresAt);
      consider(ch.rekeyAt);
      consider(ch.dropAt);
    }
    this.deadlines.set(entry, due);
  }

  /** Whatever is due on this entry now, in order: its own end, its rekey, its children's, its context's. */
  private tick(entry: Entry): void {
    const now = Date.now();
    const key = entry.key;
    const alive = () => this.sas.get(key) === entry;
    if (!alive()) return;
    if (entry.dropAt !== null && entry.dropAt <= now) return this.teardown(key, entry, entry.dropReason, true);
    if (entry.up && entry.sa!.expiresAt <= now) return this.teardown(key, entry, 'ISAKMP SA lifetime expired', true);
    if (entry.rekeyAt !== null && entry.rekeyAt <= now) {
      entry.rekeyAt = null;
      this.rekeyPhase1(key, entry);
    }
    for (const child of entry.children) {
      if (!alive() || !entry.children.includes(child)) continue;
      if (child.dropAt !== null && child.dropAt <= now) this.childDown(entry, child.sa.spiIn, 'replaced by a rekey', true);
      else if (child.sa.expiresAt <= now) this.childDown(entry, child.sa.spiIn, 'lifetime expired', true);
      else if (child.rekeyAt !== null && child.rekeyAt <= now) {
        child.rekeyAt = null;
        // the old child carries traffic until the new one is up
        const c = this.configOf(entry);
        if (c && !child.rekeyed) void this.startQuickMode(this.newest(entry), c);
      }
    }
    if (!alive()) return;
    if (entry.ctxDue !== null && entry.ctxDue <= now) {
      entry.ctxDue = null;
      this.applyPhase2(entry, entry.ctx.onTimer(now)); // re-arms through wake()
    }
    this.wake(entry);
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    // Node's timers take at most 2^31-1 ms (24.8 days); longer lifetimes are clamped (re-armed never needed
    // in practice: IKE lifetimes are hours).
    return setTimeout(fn, Math.min(Math.max(0, ms), 2 ** 31 - 1));
  }

  /** The configuration of the connection an SA belongs to. */
  private configOf(entry: Entry): ConnectionConfig | undefined {
    return this.config.connections.find((c) => c.name === entry.connection);
  }

  /** Where ESP in UDP goes: the port the peer talks IKE from once floated, else its configured NAT-T port. */
  private peerNattPort(entry: Entry): number {
    return entry.natt ? entry.remote.port : (this.configOf(entry)?.remoteNattPort ?? 4500);
  }

  private connection(name: string): ConnectionConfig {
    const c = this.config.connections.find((x) => x.name === name);
    if (!c) throw new IkeError('POLICY', `no connection named '${name}'`);
    return c;
  }

  private env(remote: Endpoint, c: ConnectionConfig | undefined) {
    const address = c?.local ?? this.localAddress;
    const port = this.ports.ike;
    const k = `${address} ${port}`;
    let local = this.localEndpoints.get(k);
    if (local === undefined) this.localEndpoints.set(k, (local = Object.freeze({ address, port })));
    return { crypto: this.crypto, cookies: this.cookies, local, remote };
  }

  /** The shared per-connection objects (rebuilt if the listening address changed since). */
  private shared(c: ConnectionConfig) {
    let s = this.perConnection.get(c);
    if (s === undefined || s.localAddress !== this.localAddress) {
      const dpd: DpdPolicy | undefined = c.dpd.delaySeconds > 0 ? { delayMs: c.dpd.delaySeconds * 1000, timeoutMs: c.dpd.timeoutSeconds * 1000, action: c.dpd.action } : undefined;
      s = { localAddress: this.localAddress, phase1: this.buildPolicy(c), children: new Map(), ...(dpd ? { dpd } : {}) };
      this.perConnection.set(c, s);
    }
    return s;
  }

  private policy(c: ConnectionConfig): Phase1Policy {
    return this.shared(c).phase1;
  }

  private buildPolicy(c: ConnectionConfig): Phase1Policy {
    const localId: Identity = c.localId === 'address' ? addressIdentity(c.local ?? this.localAddress) : c.localId;
    return {
      name: c.name,
      mode: c.mode,
      proposals: c.ike,
      psk: c.auth.psk,
      localId,
      remoteId: c.remoteId === 'any' ? undefined : c.remoteId,
      allowAggressivePsk: c.auth.allowAggressivePsk,
      selection: c.selection,
      retransmit: retransmitPolicy(c),
      asyncDh: this.options.asyncDh,
      // the data plane speaks ESP in UDP only, so it needs encapsulation whether or not there is a NAT
      forceEncap: c.encap || this.config.dataplane !== undefined,
    };
  }

  /**
   * The connection's child as phase 2 takes it; `pfs: true` without a group in a proposal uses the IKE group.
   * Shared by the SAs of the connection: callers copy before changing it.
   */
  private childPolicy(c: ConnectionConfig, sa: IsakmpSa): Phase2Policy {
    return this.childPolicies(c, sa)[0]!;
  }

  /** [childPolicy]: what an SA's context takes as its children (one shared array too). */
  private childPolicies(c: ConnectionConfig, sa: IsakmpSa): Phase2Policy[] {
    const children = this.shared(c).children;
    const group = c.pfs ? sa.proposal.group : 0;
    let p = children.get(group);
    if (p === undefined) children.set(group, (p = [this.buildChildPolicy(c, sa)]));
    return p;
  }

  private buildChildPolicy(c: ConnectionConfig, sa: IsakmpSa): Phase2Policy {
    const selector = (ts: ConnectionConfig['localTs']) => (ts === 'dynamic' ? undefined : { id: ts[0]!, protocol: 0, port: 0 });
    return {
      name: c.name,
      proposals: c.esp.map((p) => (c.pfs && p.pfsGroup === undefined ? { ...p, pfsGroup: sa.proposal.group } : p)),
      mode: 'tunnel',
      localTs: selector(c.localTs),
      remoteTs: selector(c.remoteTs),
      lifetimeSeconds: c.lifetime.espSeconds,
      lifetimeKilobytes: c.lifetime.espKilobytes,
      selection: c.selection,
      retransmit: retransmitPolicy(c),
      forceEncapsulation: c.encap || this.config.dataplane !== undefined,
      asyncDh: this.options.asyncDh,
    };
  }

  /** Work started from a socket or timer callback: a failure becomes an 'error' event, never an unhandled rejection. */
  private guard(p: Promise<unknown>, connection?: string, remote?: Endpoint, entry?: Entry): void {
    p.catch((e) => this.emitError(e, connection, remote ?? { address: '', port: 0 }, entry));
  }

  private emitError(e: unknown, connection: string | undefined, remote: Endpoint, entry?: Entry): void {
    const err = e instanceof IkeError ? e : new IkeError('INTERNAL', (e as Error)?.message ?? String(e));
    this.emit('error', { connection, cookieI: entry?.key, remote, kind: err.kind, message: err.message });
  }
}

/** A selector as the data plane takes it: an address or a CIDR prefix (ranges are not supported there). */
function selectorCidr(ts: Identity): string {
  switch (ts.kind) {
    case 'ipv4':
      return `${ts.address}/32`;
    case 'ipv6':
      return `${ts.address}/128`;
    case 'ipv4-subnet':
    case 'ipv6-subnet':
      return ts.subnet;
    default:
      throw new IkeError('POLICY', `the TUN data plane takes addresses and subnets as traffic selectors, not ${idToString(ts)}`);
  }
}

/** A child as the gateway keeps it: a compact copy of the SA, its ESP SAs, nothing scheduled yet. */
function newChild(sa: ChildSa, esp: { inbound: EspSa; outbound: EspSa }): Child {
  return { sa: retainChildSa(sa), inbound: esp.inbound, outbound: esp.outbound, rekeyAt: null, dropAt: null, rekeyed: false };
}

function addressIdentity(address: string): Identity {
  return address.includes(':') ? { kind: 'ipv6', address } : { kind: 'ipv4', address };
}

