// The gateway: the facade an embedder sees. Behind it each room has one job (DESIGN.md, "The gateway as
// rooms"):
//   sa-table.ts        ISAKMP SAs by cookie and child SAs by SPI, each with an explicit lifecycle
//   scheduler.ts       one deadline heap for every timer of every SA
//   phase1-driver.ts   Main and Aggressive Mode exchanges, an ISAKMP SA coming up
//   child-manager.ts   Quick Mode, installing child SAs, rekey and replacement rules
//   remote-access-binding.ts  XAUTH, Mode-Config, address pools, login limits
//   lifecycle.ts       what falls due on an SA, its rekey and keepalives, its teardown
//   policy.ts          config -> phase 1 / phase 2 policies
//   transport.ts       sockets (UDP 500 / 4500), the TUN data plane
//   events.ts, status.ts  events, status, keylog
// This file dispatches datagrams to those rooms and holds the gateway's own lifecycle (start, stop).
import { EventEmitter } from 'node:events';
import { defaultCrypto } from '../crypto/index.js';
import { ExchangeType, parseHeader } from '../isakmp/index.js';
import { Fragmentation } from './fragmentation.js';
import { CookieGenerator, fullChildSa, IkeError, ZERO_COOKIE, type ChildSa, type Endpoint, type IsakmpSa } from '../ike/index.js';
import type { ConnectionConfig, GatewayConfig } from './config.js';
import { Admission } from './admission.js';
import { ChildManager } from './child-manager.js';
import { ErrorSummary } from './error-summary.js';
import { admissionLimits, countEspDrop, guard, noEspDrops, reportError, summariseErrors, type GatewayErrorEvent, type GatewayEvents, type GatewayOptions, type GatewayStatus } from './events.js';
import type { KeylogLine } from './keylog.js';
import { SaLifecycle } from './lifecycle.js';
import { Phase1Driver, type InitiateOptions } from './phase1-driver.js';
import { PolicyCompiler } from './policy.js';
import { connectionInfo, diffConfig, type ConnectionInfo, type ReloadReport } from './reload.js';
import { RemoteAccessBinding } from './remote-access-binding.js';
import { isUp, scopeOf, SaTable, type IsakmpEntry } from './sa-table.js';
import { Scheduler } from './scheduler.js';
import { gatewayStatus, keylogLines } from './status.js';
import { Transport, virtualIpRoutes } from './transport.js';
import { routeSource } from './sockets.js';
import { nativeAddon } from '../native.js';

export type { ConnectionInfo, ReloadReport } from './reload.js';
export type { ChildDownEvent, ChildStatus, ChildUpEvent, EspPacketEvent, GatewayErrorEvent, GatewayEvents, GatewayOptions, GatewayStatus, Phase1DownEvent, Phase1Status, Phase1UpEvent } from './events.js';

/** The gateway's own lifecycle: nothing starts once it is stopping. */
type RunState = 'new' | 'running' | 'stopping' | 'stopped';

/** The event loop's utilisation since the last call: what busy mode's rate follows (admission.ts). */
function eventLoopLoad(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly config: GatewayConfig;
  private readonly table: SaTable;
  private readonly admission: Admission;
  private readonly errors: ErrorSummary;
  /** ESP that reached JavaScript: counted only once it authenticated; the rest by reason. */
  private readonly espIn = { received: 0, drops: noEspDrops() };
  private readonly scheduler: Scheduler;
  private readonly transport: Transport;
  private readonly policies: PolicyCompiler;
  private readonly children: ChildManager;
  private readonly remoteAccess: RemoteAccessBinding;
  private readonly phase1: Phase1Driver;
  private readonly lifecycle: SaLifecycle;
  private readonly fragments: Fragmentation;
  private readonly localEndpoints = new Map<string, Endpoint>();
  private run: RunState = 'new';

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    super();
    this.config = config;
    const crypto = options.crypto ?? defaultCrypto();
    const events = this as EventEmitter<GatewayEvents>;
    // a summary of held-back errors never throws for want of a listener (stop() flushes one)
    const emitError = (e: GatewayErrorEvent) => (e.kind !== 'SUPPRESSED' || this.listenerCount('error') > 0) && this.emit('error', e);
    this.errors = new ErrorSummary(emitError, { ...config.limits?.errors, ...options.errorLimits });
    summariseErrors(events, this.errors);
    const table = (this.table = new SaTable());
    const admission = (this.admission = new Admission(table, admissionLimits(options, config.limits?.admission), eventLoopLoad()));
    const scheduler = (this.scheduler = new Scheduler((entry) => this.lifecycle.due(entry)));
    const transport = (this.transport = new Transport(config, options.nativeUdp ?? nativeAddon() !== null));
    const policies = (this.policies = new PolicyCompiler(config, { asyncDh: options.asyncDh ?? true, plainEsp: () => transport.dataplane?.plainEsp ?? false }, () => transport.address));
    this.fragments = new Fragmentation(table, policies);
    // a wildcard listener sends each SA's messages from the address the SA runs on (its NAT-D hashes name it)
    const send = (entry: IsakmpEntry, m: Buffer) => this.sendTo(m, entry.remote, entry.natt, transport.wildcard ? (entry.sa?.local ?? entry.phase1?.env.local)?.address : undefined);
    const teardown = (entry: IsakmpEntry, reason: string, notify: boolean) => this.lifecycle.teardown(entry, reason, notify);
    const restart = (connection: string) => guard(this, this.initiate(connection), { connection, ours: true });
    const children = (this.children = new ChildManager({ events, table, scheduler, transport, policies, send, teardown, restart }));
    const startQuickMode = (entry: IsakmpEntry, c: ConnectionConfig) => children.start(entry, c);
    const connection = (name: string) => policies.find(name);
    const virtualIp = (c: ConnectionConfig | undefined, address: string, delta: 1 | -1) => transport.useVirtualIp(address, virtualIpRoutes(c), delta);
    const remoteAccess = (this.remoteAccess = new RemoteAccessBinding({ crypto, events, table, scheduler, send, connection, startQuickMode, virtualIp }));
    this.phase1 = new Phase1Driver({
      crypto,
      cookies: new CookieGenerator(crypto),
      events,
      table,
      admission,
      scheduler,
      policies,
      children,
      remoteAccess,
      independentSas: options.independentSas ?? false,
      local: (c, address) => this.localEndpoint(c, address),
      routeSource: (remote) => (transport.wildcard ? routeSource(remote) : Promise.resolve(undefined)),
      send,
      sendTo: (m, to, natt, source) => this.sendTo(m, to, natt, source),
      teardown,
      forget: (entry) => this.lifecycle.forget(entry),
      closed: () => this.run === 'stopping' || this.run === 'stopped',
    });
    const initiate = (name: string, o: InitiateOptions) => this.initiate(name, o);
    this.lifecycle = new SaLifecycle({ events, table, scheduler, transport, policies, children, phase1: this.phase1, remoteAccess, send, initiate });
  }

  /** Binds the sockets, then starts the connections marked `initiate`. */
  async start(): Promise<void> {
    if (this.run !== 'new') throw new IkeError('POLICY', `the gateway has been started already (${this.run})`);
    this.run = 'running';
    const onError = (message: string, to: Endpoint) => reportError(this, { remote: to, kind: 'SOCKET', message });
    try {
      await this.transport.open({ ike: (m, from, natt, local) => this.receive(m, from, natt, local), esp: (m, from) => this.receiveEsp(m, from), onError });
    } catch (e) {
      this.run = 'stopped';
      throw e;
    }
    const { ike, natt } = this.transport.ports;
    this.emit('listening', { address: this.transport.address, port: ike, nattPort: natt });
    for (const c of this.config.connections) if (c.initiate) guard(this, this.initiate(c.name), { connection: c.name, ours: true });
  }

  /** The ports actually bound. */
  get boundPorts(): { ike: number; natt: number } {
    return this.transport.ports;
  }

  /**
   * Brings a connection up: a Quick Mode on its established ISAKMP SA, or phase 1 first (`fresh`: always a
   * new ISAKMP SA, as a load tester wants). Resolves to the initiator cookie (hex) of the ISAKMP SA used.
   * Failures arrive as 'error' events.
   */
  async initiate(name: string, options: InitiateOptions = {}): Promise<string | undefined> {
    const c = this.policies.connection(name);
    if (c.remote === '%any') throw new IkeError('POLICY', `connection '${name}' has remote %any and can only respond`);
    if (this.run !== 'running') throw new IkeError('POLICY', `the gateway is not running (${this.run})`);
    if (!options.fresh) {
      for (const up of this.table.up()) {
        if (up.connection !== name) continue;
        await this.children.start(up, c);
        return up.key;
      }
    }
    return this.phase1.initiate(c, options);
  }

  /** Deletes one ISAKMP SA (by initiator cookie, hex) with its child SAs, telling the peer. */
  deleteSa(cookieI: string, reason = 'deleted locally'): void {
    const e = this.table.get(cookieI);
    if (e) this.lifecycle.teardown(e, reason, true);
  }

  /** Tears a connection down: deletes for its child SAs and ISAKMP SAs go to the peer first. */
  delete(name: string, reason = 'deleted locally'): void {
    this.table.noteDeleted(name);
    for (const e of [...this.table.values()]) if (e.connection === name) this.lifecycle.teardown(e, reason, true);
  }

  /** `delete` under the name swanctl and `ike terminate` use. */
  terminate(name: string): void {
    this.policies.connection(name); // a POLICY error for a name that does not exist
    this.delete(name, 'terminated by the operator');
  }

  /** Every configured connection, in config order, with whether it is up (`ike list-conns`). */
  connections(): ConnectionInfo[] {
    return connectionInfo(this.config.connections, this.table);
  }

  /**
   * Applies a new configuration (SIGHUP, `ike reload`): connections that are new start (when `initiate`),
   * removed ones are deleted with Deletes to their peers, changed ones are deleted and start again, unchanged
   * ones keep their SAs. `listen` and `dataplane` are bound at start: a difference there is reported in
   * `restartNeeded` and not applied. A config that does not parse never gets here (loadConfig throws), so the
   * running one stays.
   */
  reload(next: GatewayConfig): ReloadReport {
    if (this.run !== 'running') throw new IkeError('POLICY', `the gateway is not running (${this.run})`);
    const diff = diffConfig(this.config, next);
    if (this.transport.dataplane && diff.added.concat(diff.changed).some((c) => c.remoteTs !== 'dynamic')) {
      // the TUN routes are set once at start (transport.ts)
      diff.report.restartNeeded.push('dataplane routes of new or changed connections');
    }
    for (const c of diff.removed) this.delete(c.name, 'removed from the configuration');
    for (const c of diff.changed) this.delete(c.name, 'changed in the configuration');
    this.config.connections.splice(0, this.config.connections.length, ...diff.next);
    this.config.warnings.splice(0, this.config.warnings.length, ...next.warnings);
    for (const c of [...diff.changed, ...diff.added]) if (c.initiate) guard(this, this.initiate(c.name), { connection: c.name, ours: true });
    return diff.report;
  }

  /**
   * Sends deletes for everything, then closes the sockets. Afterwards nothing is scheduled and no socket is
   * open: a process that only ran a gateway exits by itself.
   */
  async stop(): Promise<void> {
    if (this.run === 'stopping' || this.run === 'stopped') return;
    this.run = 'stopping';
    for (const e of [...this.table.values()]) this.lifecycle.teardown(e, 'gateway stopped', true);
    // the held ISAKMP Deletes leave before the sockets close
    await this.scheduler.settle();
    await this.transport.close();
    this.errors.close();
    this.fragments.clear();
    this.run = 'stopped';
  }

  /** Table sizes: what a flood test or an operator watches. */
  stats(): { halfOpen: number; phase1: number; children: number } {
    return this.table.counts();
  }

  phase1Sas(): IsakmpSa[] {
    return [...this.table.up()].map((e) => e.sa!);
  }

  childSas(): ChildSa[] {
    return [...this.table.values()].flatMap((e) => e.children.filter((c) => !c.rekeyed).map((c) => fullChildSa(c.sa)));
  }

  /** Every established ISAKMP SA with its children, counters and remaining lifetimes; never key material. */
  status(now = Date.now()): GatewayStatus {
    return { ...gatewayStatus(this.table, this.transport, this.policies, now), esp: { received: this.espIn.received, drops: { ...this.espIn.drops } }, admission: this.admission.stats(), errors: this.errors.stats() };
  }

  /**
   * Wireshark's key table lines for every established SA, whatever the connections' `keylog` setting:
   * for an operator who already controls the process (the control socket is owner-only).
   */
  keylogLines(): KeylogLine[] {
    return keylogLines(this.table);
  }

  /**
   * Seals one packet with the connection's current outbound SA and sends it as ESP in UDP to the peer's
   * NAT-T port (RFC 3948). For hosts that carry traffic themselves; the TUN data plane does this natively.
   */
  sendEsp(connection: string, payload: Buffer, nextHeader = 4): void {
    const found = this.table.currentChild(connection);
    if (!found) throw new IkeError('POLICY', `connection '${connection}' has no child SA`);
    if (this.transport.dataplane) throw new IkeError('POLICY', `the TUN data plane carries the traffic of '${connection}': route packets into ${this.transport.tunName}`);
    const { entry, child } = found;
    const packet = child.outbound.seal(payload, nextHeader);
    this.transport.sendEsp(packet, { address: entry.remote.address, port: this.children.peerNattPort(entry) });
  }

  // ---- receiving ----

  private receiveEsp(msg: Buffer, _from: Endpoint): void {
    const spi = msg.subarray(0, 4).toString('hex');
    const hit = this.table.inbound.get(spi);
    if (!hit) {
      this.espIn.drops.unknownSpi++;
      return;
    }
    const r = hit.child.inbound.open(msg);
    if (!r.ok) {
      countEspDrop(this.espIn.drops, r.reason);
      return;
    }
    this.espIn.received++;
    hit.entry.ctx.activity(Date.now());
    this.emit('esp-packet', { connection: hit.entry.connection, spi, payload: r.payload, nextHeader: r.nextHeader });
  }

  private receive(datagram: Buffer, from: Endpoint, natt: boolean, local?: string): void {
    if (this.run !== 'running') return;
    const first = parseHeader(datagram);
    if (!first.ok) return; // not ISAKMP: nothing to answer
    // a fragment is held until its message is whole, which then goes on as if it had come in one datagram
    const msg = this.fragments.incoming(datagram, first.value.nextPayload, from, Date.now());
    if (msg === null) return;
    const h = msg === datagram ? first : parseHeader(msg);
    if (!h.ok) return;
    if (this.listenerCount('datagram') > 0) this.emit('datagram', { direction: 'in', remote: from, bytes: msg });
    const entry = this.table.get(h.value.initiatorCookie.toString('hex'));
    const now = Date.now();
    if (!entry) {
      if (h.value.responderCookie.equals(ZERO_COOKIE)) this.phase1.respond(msg, from, natt, now, this.transport.wildcard ? local : undefined);
      return; // else: an exchange we do not know (or forgot)
    }
    if (entry.remote.address !== from.address) return;
    // the peer's NAT mapping moved (RFC 3947 5): an established SA follows only an authenticated message
    const moved = natt === entry.natt && from.port !== entry.remote.port;
    if (natt && !entry.natt) {
      entry.natt = true;
      entry.remote = from; // the peer floated
    } else if (moved && !isUp(entry)) entry.remote = from;
    const data = Buffer.from(msg);
    const { messageId, exchangeType } = h.value;
    // Message ID 0 is phase 1; so are the notifies a peer sends while phase 1 is not complete (clear, or under
    // the phase 1 keys when it refuses our authentication).
    if (messageId === 0 || (!isUp(entry) && exchangeType === ExchangeType.INFORMATIONAL)) {
      this.phase1.handle(entry, data, now);
    } else if (exchangeType === ExchangeType.TRANSACTION) {
      this.remoteAccess.handle(entry, data, now);
    } else if (!(exchangeType === ExchangeType.QUICK_MODE && this.remoteAccess.blocksQuickMode(entry, this.policies.find(entry.connection)))) {
      const followed = entry.ctx.handle(data, now).then((out) => {
        if (moved && isUp(entry) && this.table.alive(entry) && out.dropped.length === 0) this.follow(entry, from);
        this.children.apply(entry, out);
      });
      guard(this, followed, scopeOf(entry));
    }
  }

  /** IKE and, with the data plane, the ESP of every child go to the peer's new address:port from now on. */
  private follow(entry: IsakmpEntry, to: Endpoint): void {
    entry.remote = to;
    if (entry.natt) this.transport.setPeer(entry.children, to);
  }

  // ---- plumbing ----

  private sendTo(msg: Buffer, to: Endpoint, natt: boolean, source?: string): void {
    for (const d of this.fragments.outgoing(msg)) {
      if (this.listenerCount('datagram') > 0) this.emit('datagram', { direction: 'out', remote: to, bytes: d });
      this.transport.send(d, to, natt, source);
    }
  }

  private localEndpoint(c: ConnectionConfig | undefined, received?: string): Endpoint {
    const address = received ?? c?.local ?? this.transport.address;
    const port = this.transport.ikePort;
    const k = `${address} ${port}`;
    let local = this.localEndpoints.get(k);
    if (local === undefined) this.localEndpoints.set(k, (local = Object.freeze({ address, port })));
    return local;
  }
}
