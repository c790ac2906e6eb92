// The remote-access binding: XAUTH and Mode-Config on an ISAKMP SA (connections with `xauth` or
// `modeConfig`), with one address pool and one failed-login limiter per connection.
import type { CryptoProvider } from '../crypto/index.js';
import {
  AddressPool,
  hostSelector,
  IkeError,
  LoginLimiter,
  RemoteAccessClient,
  RemoteAccessServer,
  type IsakmpSa,
  type RemoteAccessEvent,
  type RemoteAccessOutput,
} from '../ike/index.js';
import { retransmitPolicy, type ConnectionConfig } from './config.js';
import { emitError, guard, type GatewayEmitter } from './events.js';
import { isUp, scopeOf, type IsakmpEntry, type SaTable } from './sa-table.js';
import type { Scheduler } from './scheduler.js';

/** The XAUTH server lets its SET(FAIL) be acknowledged this long before it deletes the ISAKMP SA. */
const XAUTH_FAIL_LINGER_MS = 2_000;

export interface RemoteAccessDeps {
  crypto: CryptoProvider;
  events: GatewayEmitter;
  table: SaTable;
  scheduler: Scheduler;
  send(entry: IsakmpEntry, message: Buffer): void;
  connection(name: string): ConnectionConfig | undefined;
  /** The client's Quick Mode, once XAUTH / Mode-Config are done. */
  startQuickMode(entry: IsakmpEntry, c: ConnectionConfig): Promise<void>;
  /** A client's virtual IP held by one ISAKMP SA more (+1) or fewer (-1): on the host while any holds it. */
  virtualIp(c: ConnectionConfig | undefined, address: string, delta: 1 | -1): void;
}

export class RemoteAccessBinding {
  private readonly pools = new Map<string, AddressPool>();
  private readonly limiters = new Map<string, LoginLimiter>();

  constructor(private readonly d: RemoteAccessDeps) {}

  /** Starts XAUTH / Mode-Config on a new ISAKMP SA if its connection has them; the machine, or null. */
  start(entry: IsakmpEntry, c: ConnectionConfig, sa: IsakmpSa): RemoteAccessServer | RemoteAccessClient | null {
    if (!c.xauth && !c.modeConfig) return null;
    const ra = c.xauth?.role === 'client' || c.modeConfig?.role === 'client' ? this.client(entry, c, sa) : this.server(entry, c, sa);
    entry.ra = ra;
    this.apply(entry, ra.start(Date.now()));
    return ra;
  }

  /** A TRANSACTION exchange from the peer. */
  handle(entry: IsakmpEntry, message: Buffer, now: number): void {
    const ra = entry.ra;
    if (ra) guard(this.d.events, ra.handle(message, now).then((out) => this.apply(entry, out)), scopeOf(entry));
  }

  /** The exchange's retransmission deadline came (from the scheduler). */
  onTimer(entry: IsakmpEntry, now: number): void {
    const ra = entry.ra;
    entry.raDue = null;
    if (ra) guard(this.d.events, ra.onTimer(now).then((out) => this.apply(entry, out)), scopeOf(entry));
  }

  /** XAUTH_INIT_PSK: no Quick Mode from a client before XAUTH succeeded (not even queued for later). */
  blocksQuickMode(entry: IsakmpEntry, c: ConnectionConfig | undefined): boolean {
    return c?.xauth?.role === 'server' && !(entry.ra instanceof RemoteAccessServer && entry.ra.authenticated);
  }

  private client(entry: IsakmpEntry, c: ConnectionConfig, sa: IsakmpSa): RemoteAccessClient {
    return new RemoteAccessClient(this.d.crypto, sa, {
      ...(c.xauth?.role === 'client' ? { xauth: { user: c.xauth.user, password: c.xauth.password } } : {}),
      modeConfig: c.modeConfig?.role === 'client' ? c.modeConfig.mode : 'none',
      retransmit: retransmitPolicy(c),
      newMessageId: () => entry.ctx.newMessageId(),
    });
  }

  private server(entry: IsakmpEntry, c: ConnectionConfig, sa: IsakmpSa): RemoteAccessServer {
    const x = c.xauth?.role === 'server' ? c.xauth : undefined;
    const m = c.modeConfig?.role === 'server' ? c.modeConfig : undefined;
    let limiter = this.limiters.get(c.name);
    if (x && !limiter) this.limiters.set(c.name, (limiter = new LoginLimiter({ maxFailures: x.blockAfter, blockMs: x.blockSeconds * 1000 })));
    let pool = this.pools.get(c.name);
    if (m?.pool && !pool) this.pools.set(c.name, (pool = new AddressPool(m.pool)));
    const modeConfig = m && {
      ...(pool ? { pool } : {}),
      ...(m.netmask !== undefined ? { netmask: m.netmask } : {}),
      dns: m.dns,
      nbns: m.nbns,
      splitInclude: m.splitInclude,
      ...(m.banner !== undefined ? { banner: m.banner } : {}),
      mode: m.mode,
    };
    return new RemoteAccessServer(this.d.crypto, sa, {
      peer: entry.remote.address,
      ...(x ? { xauth: { verify: x.users.verify, maxAttempts: x.maxAttempts, ...(limiter ? { limiter } : {}) } } : {}),
      ...(modeConfig ? { modeConfig } : {}),
      retransmit: retransmitPolicy(c),
      newMessageId: () => entry.ctx.newMessageId(),
    });
  }

  /** What the exchange says: sends, its deadline, its events. Nothing for an SA gone meanwhile. */
  private apply(entry: IsakmpEntry, out: RemoteAccessOutput): void {
    const ra = entry.ra;
    if (!ra || !this.d.table.alive(entry) || !isUp(entry)) return;
    for (const m of out.send) this.d.send(entry, m);
    entry.raDue = out.timer;
    this.d.scheduler.wake(entry);
    for (const ev of out.events) {
      if (!this.d.table.alive(entry)) return;
      this.d.events.emit('remote-access', { connection: entry.connection, remote: entry.remote, cookieI: entry.key, event: ev });
      this.onEvent(entry, ra, ev);
    }
  }

  private onEvent(entry: IsakmpEntry, ra: RemoteAccessServer | RemoteAccessClient, ev: RemoteAccessEvent): void {
    if (ev.type === 'xauthFailed' || ev.type === 'modeCfgFailed') {
      const xauth = ev.type === 'xauthFailed';
      const kind = ev.malformed ? 'PAYLOAD_MALFORMED' : xauth ? 'AUTHENTICATION_FAILED' : 'POLICY';
      emitError(this.d.events, new IkeError(kind, `${xauth ? 'XAUTH' : 'Mode-Config'}: ${ev.reason}`), scopeOf(entry));
      if (xauth) {
        entry.dropAt = Date.now() + (ra instanceof RemoteAccessServer ? XAUTH_FAIL_LINGER_MS : 0);
        entry.dropReason = `XAUTH failed: ${ev.reason}`;
        this.d.scheduler.wake(entry);
      }
    } else if (ra instanceof RemoteAccessServer && ev.type === 'modeCfg' && ev.config.address !== undefined) {
      // The client's side of its Quick Modes is exactly the address it was given.
      entry.ctxOptions.children = entry.ctxOptions.children.map((p) => ({ ...p, remoteTs: hostSelector(ev.config.address!) }));
    } else if (ra instanceof RemoteAccessClient && entry.wantChild && entry.sa?.initiator) {
      const c = this.d.connection(entry.connection);
      const ready = ev.type === 'modeCfg' || (ev.type === 'xauthOk' && c?.modeConfig?.role !== 'client');
      if (ev.type === 'modeCfg' && ev.config.address !== undefined && ev.config.address !== entry.virtualIp) {
        // the SA holds the address until it is forgotten (lifecycle.ts), or until the server assigns another
        if (entry.virtualIp !== null) this.d.virtualIp(c, entry.virtualIp, -1);
        entry.virtualIp = ev.config.address;
        this.d.virtualIp(c, entry.virtualIp, 1);
      }
      if (ready && c) guard(this.d.events, this.d.startQuickMode(entry, c), scopeOf(entry));
    }
  }
}
