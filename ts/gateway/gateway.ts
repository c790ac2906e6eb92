// The gateway runtime: UDP sockets on the IKE port and the NAT-T port, the table of phase 1 exchanges by
// cookie, their timers, and typed events. The exchanges themselves are the sans-I/O machines of ts/ike;
// this file only moves datagrams and time between them and the network.
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { defaultCrypto, type CryptoProvider } from '../crypto/index.js';
import { parseHeader, idToString, type Identity } from '../isakmp/index.js';
import { CookieGenerator, IkeError, ikev1KeylogLine, natFloat, Phase1, ZERO_COOKIE, type Endpoint, type IsakmpSa, type Phase1Output, type Phase1Policy } from '../ike/index.js';
import type { ConnectionConfig, GatewayConfig } from './config.js';

/** RFC 3948: IKE on the NAT-T port is prefixed with four zero bytes (the non-ESP marker). */
const NON_ESP_MARKER = Buffer.alloc(4);

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

export interface GatewayErrorEvent {
  connection?: string;
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

export interface GatewayEvents {
  'phase1-up': [Phase1UpEvent];
  'phase1-down': [Phase1DownEvent];
  error: [GatewayErrorEvent];
  /** Wireshark IKEv1 decryption table lines, only when a connection has keylog on. */
  keylog: [string];
  listening: [{ address: string; port: number; nattPort: number }];
}

export interface GatewayOptions {
  crypto?: CryptoProvider;
  /** Half-open phase 1 exchanges kept at most, in total and per peer address (oldest dropped first). */
  maxHalfOpen?: number;
  maxHalfOpenPerPeer?: number;
  /** Run DH on the thread pool (default true: keeps the event loop free). */
  asyncDh?: boolean;
}

interface Entry {
  phase1: Phase1;
  connection: string;
  remote: Endpoint;
  /** Which of our sockets the peer talks to (it moves to the NAT-T port when NAT-T floats). */
  natt: boolean;
  timer: NodeJS.Timeout | null;
  createdAt: number;
  up: boolean;
}

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly config: GatewayConfig;
  private readonly crypto: CryptoProvider;
  private readonly cookies: CookieGenerator;
  private readonly options: Required<Omit<GatewayOptions, 'crypto'>>;
  private ike: dgram.Socket | null = null;
  private natt: dgram.Socket | null = null;
  private readonly exchanges = new Map<string, Entry>();
  private localAddress = '0.0.0.0';
  private ports = { ike: 0, natt: 0 };

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    super();
    this.config = config;
    this.crypto = options.crypto ?? defaultCrypto();
    this.cookies = new CookieGenerator(this.crypto);
    this.options = {
      maxHalfOpen: options.maxHalfOpen ?? 10_000,
      maxHalfOpenPerPeer: options.maxHalfOpenPerPeer ?? 1_000,
      asyncDh: options.asyncDh ?? true,
    };
  }

  /** Binds the sockets, then starts the connections marked `initiate`. */
  async start(): Promise<void> {
    const { address, port, nattPort } = this.config.listen;
    const type = address.includes(':') ? 'udp6' : 'udp4';
    this.localAddress = address;
    this.ike = await bind(type, address, port);
    this.natt = await bind(type, address, nattPort);
    this.ports = { ike: this.ike.address().port, natt: this.natt.address().port };
    this.ike.on('message', (msg, rinfo) => this.receive(msg, { address: rinfo.address, port: rinfo.port }, false));
    this.natt.on('message', (msg, rinfo) => this.receiveNatt(msg, { address: rinfo.address, port: rinfo.port }));
    this.emit('listening', { address, port: this.ports.ike, nattPort: this.ports.natt });
    for (const c of this.config.connections) if (c.initiate) void this.initiate(c.name);
  }

  /** The ports actually bound (useful when the config asked for port 0). */
  get boundPorts(): { ike: number; natt: number } {
    return { ...this.ports };
  }

  /** Starts phase 1 of a connection. Failures arrive as 'error' events. */
  async initiate(name: string): Promise<void> {
    const c = this.config.connections.find((x) => x.name === name);
    if (!c) throw new IkeError('POLICY', `no connection named '${name}'`);
    if (c.remote === '%any') throw new IkeError('POLICY', `connection '${name}' has remote %any and can only respond`);
    const remote = { address: c.remote, port: c.remotePort };
    const now = Date.now();
    try {
      const { phase1, out } = await Phase1.initiate(this.env(remote, c), this.policy(c), now);
      const entry: Entry = { phase1, connection: c.name, remote, natt: false, timer: null, createdAt: now, up: false };
      this.exchanges.set(phase1.cookieI.toString('hex'), entry);
      this.apply(entry, out);
    } catch (e) {
      this.emitError(e, c.name, remote);
    }
  }

  /** Closes the sockets and forgets every exchange. */
  async stop(): Promise<void> {
    for (const e of this.exchanges.values()) if (e.timer) clearTimeout(e.timer);
    this.exchanges.clear();
    await Promise.all([this.ike, this.natt].map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)));
    this.ike = this.natt = null;
  }

  /** Established phase 1 SAs. */
  phase1Sas(): IsakmpSa[] {
    return [...this.exchanges.values()].filter((e) => e.up).map((e) => e.phase1.established!);
  }

  private receiveNatt(msg: Buffer, from: Endpoint): void {
    // 1 byte 0xff = NAT keepalive (RFC 3948 2.3); a marker of 4 zero bytes = IKE; anything else is ESP,
    // which the data plane takes (not wired yet: dropped here).
    if (msg.length >= 4 + 28 && msg.subarray(0, 4).equals(NON_ESP_MARKER)) this.receive(msg.subarray(4), from, true);
  }

  private receive(msg: Buffer, from: Endpoint, natt: boolean): void {
    const h = parseHeader(msg);
    if (!h.ok) return; // not ISAKMP: nothing to answer
    const key = h.value.initiatorCookie.toString('hex');
    const entry = this.exchanges.get(key);
    const now = Date.now();
    if (entry) {
      if (entry.remote.address !== from.address) return;
      entry.natt ||= natt;
      entry.remote = from; // follow a NAT mapping that moved
      void entry.phase1.handle(Buffer.from(msg), now).then((out) => this.apply(entry, out), (e) => this.emitError(e, entry.connection, from));
      return;
    }
    if (!h.value.responderCookie.equals(ZERO_COOKIE)) return; // an exchange we do not know (or forgot)
    void this.respond(Buffer.from(msg), from, natt, now);
  }

  private async respond(msg: Buffer, from: Endpoint, natt: boolean, now: number): Promise<void> {
    const candidates = this.config.connections.filter((c) => c.remote === '%any' || c.remote === from.address);
    if (!this.admitHalfOpen(from.address)) return;
    const first = candidates[0];
    const { phase1, out } = await Phase1.respond(this.env(from, first), candidates.map((c) => this.policy(c)), msg, now);
    const entry: Entry | null = phase1
      ? { phase1, connection: phase1.policy.name, remote: from, natt, timer: null, createdAt: now, up: false }
      : null;
    if (entry) this.exchanges.set(phase1!.cookieI.toString('hex'), entry);
    if (entry) this.apply(entry, out);
    else {
      for (const m of out.send) this.send(m, from, natt);
      if (out.failed) this.emitError(out.failed, undefined, from);
    }
  }

  /** Half-open limits: a flood of message 1s cannot grow the table without bound; the oldest go first. */
  private admitHalfOpen(address: string): boolean {
    const half = [...this.exchanges.entries()].filter(([, e]) => !e.up);
    const perPeer = half.filter(([, e]) => e.remote.address === address);
    const drop = (list: typeof half) => {
      const [k, e] = list.reduce((a, b) => (a[1].createdAt <= b[1].createdAt ? a : b));
      if (e.timer) clearTimeout(e.timer);
      this.exchanges.delete(k);
    };
    if (perPeer.length >= this.options.maxHalfOpenPerPeer) drop(perPeer);
    if (half.length >= this.options.maxHalfOpen) drop(half);
    return true;
  }

  private apply(entry: Entry, out: Phase1Output): void {
    // RFC 3947 4: once NAT-D shows a NAT, the initiator sends from its next message on to the NAT-T port;
    // the responder follows when a message arrives there (see receive()).
    if (!entry.natt && entry.phase1.initiator && natFloat(entry.phase1.nat)) {
      entry.natt = true;
      const c = this.config.connections.find((x) => x.name === entry.connection);
      entry.remote = { address: entry.remote.address, port: c?.remoteNattPort ?? 4500 };
    }
    for (const m of out.send) this.send(m, entry.remote, entry.natt);
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (out.timer !== null) {
      entry.timer = setTimeout(() => this.apply(entry, entry.phase1.onTimer(Date.now())), Math.max(0, out.timer - Date.now()));
      entry.timer.unref?.();
    }
    const key = entry.phase1.cookieI.toString('hex');
    if (out.established) {
      entry.up = true;
      const sa = out.established;
      const c = this.config.connections.find((x) => x.name === entry.connection);
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
      if (c?.keylog) this.emit('keylog', ikev1KeylogLine(sa));
    }
    if (out.failed) {
      this.exchanges.delete(key);
      if (entry.timer) clearTimeout(entry.timer);
      this.emitError(out.failed, entry.connection, entry.remote);
    }
  }

  private send(msg: Buffer, to: Endpoint, natt: boolean): void {
    const s = natt ? this.natt : this.ike;
    if (!s) return;
    const data = natt ? Buffer.concat([NON_ESP_MARKER, msg]) : msg;
    s.send(data, to.port, to.address, (err) => {
      if (err) this.emit('error', { remote: to, kind: 'SOCKET', message: `send to ${to.address}:${to.port} failed: ${err.message}` });
    });
  }

  private env(remote: Endpoint, c: ConnectionConfig | undefined) {
    const local = { address: c?.local ?? this.localAddress, port: this.ports.ike };
    return { crypto: this.crypto, cookies: this.cookies, local, remote };
  }

  private policy(c: ConnectionConfig): Phase1Policy {
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
      retransmit: { tries: c.retransmit.tries, timeoutMs: c.retransmit.timeoutSeconds * 1000, factor: c.retransmit.factor },
      asyncDh: this.options.asyncDh,
      forceEncap: c.encap,
    };
  }

  private emitError(e: unknown, connection: string | undefined, remote: Endpoint): void {
    const err = e instanceof IkeError ? e : new IkeError('INTERNAL', (e as Error)?.message ?? String(e));
    this.emit('error', { connection, remote, kind: err.kind, message: err.message });
  }
}

function addressIdentity(address: string): Identity {
  return address.includes(':') ? { kind: 'ipv6', address } : { kind: 'ipv4', address };
}

function bind(type: 'udp4' | 'udp6', address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type, reuseAddr: false });
    s.once('error', reject);
    s.bind(port, address, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}
