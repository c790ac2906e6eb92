// Remote access over the Transaction exchange, the Cisco Easy VPN way, after a phase 1 authenticated
// with XAUTH_INIT_PSK (65001):
//   server                                         client
//   REQUEST(XAUTH_TYPE, USER_NAME, USER_PASSWORD) -->
//                                  <-- REPLY(USER_NAME=u, USER_PASSWORD=p)
//   [wrong password and tries left: REQUEST again]
//   SET(XAUTH_STATUS=OK|FAIL)                     -->
//                                  <-- ACK(XAUTH_STATUS)
//   then Mode-Config, pull:          <-- REQUEST(INTERNAL_IP4_ADDRESS, ...)
//                                        REPLY(address, netmask, DNS, ...) -->
//                 or push:  SET(address, ...) -->  <-- ACK
// Sans I/O: the gateway feeds every Transaction datagram of the ISAKMP SA to handle() and calls
// onTimer at `timer`. `authenticated` tells it whether Quick Mode may be accepted from this peer.
import type { CryptoProvider } from '../crypto/index.js';
import { ModeCfgAttr, ModeCfgType, XauthStatus, XauthType, parseMessage, tlv, tv, type Attribute, type AttributePayload, type IsakmpHeader } from '../isakmp/index.js';
import { AddressPoolExhausted, DEFAULT_REQUEST_ATTRIBUTES, ipv4Bytes, modeCfgAttributes, prefixMask, readModeCfgAttributes, type AddressPool, type Ipv4Subnet, type ModeCfgConfig } from './modecfg.js';
import type { Phase2Keys } from './phase2-crypto.js';
import type { RetransmitPolicy } from './retransmit.js';
import { TransactionChannel, type TransactionEvent, type TransactionOutput } from './transaction.js';
import type { LoginLimiter } from './xauth-users.js';

export type RemoteAccessEvent =
  | { type: 'xauthOk'; user: string }
  /** `malformed`: the peer's own (authenticated) message did not parse. */
  | { type: 'xauthFailed'; user?: string; reason: string; malformed?: true }
  /** Server: a wrong password, asking again (attempt = the next attempt's number). */
  | { type: 'xauthRetry'; user: string; attempt: number }
  /** Server: configuration given to the client; client: configuration received. */
  | { type: 'modeCfg'; config: ModeCfgConfig }
  | { type: 'modeCfgFailed'; reason: string; malformed?: true };

export interface RemoteAccessOutput {
  send: Buffer[];
  timer: number | null;
  events: RemoteAccessEvent[];
  dropped: string[];
}

export interface XauthServerConfig {
  verify: (user: string, password: string) => Promise<boolean>;
  /** Password attempts on one ISAKMP SA (default 3). */
  maxAttempts?: number;
  /** Shared across sessions: failed logins per user name and per peer address. */
  limiter?: LoginLimiter;
}

export interface ModeCfgServerConfig {
  pool?: AddressPool;
  /** Netmask sent with the address (default: none sent, clients assume /32). */
  netmask?: string;
  dns?: string[];
  nbns?: string[];
  splitInclude?: Ipv4Subnet[];
  banner?: string;
  /** 'pull' (default, Cisco clients ask) or 'push' (we SET after XAUTH). */
  mode?: 'pull' | 'push';
}

export interface RemoteAccessServerOptions {
  xauth?: XauthServerConfig;
  modeConfig?: ModeCfgServerConfig;
  /** The peer's address: the rate-limiter key. */
  peer: string;
  /** Pool owner key (default: the ISAKMP SA cookies in hex). */
  owner?: string;
  retransmit?: RetransmitPolicy;
  newMessageId?: () => number;
}

function empty(): RemoteAccessOutput {
  return { send: [], timer: null, events: [], dropped: [] };
}

function attrString(attrs: readonly Attribute[], type: number): string | null {
  const a = attrs.find((x) => x.type === type);
  if (a === undefined) return null;
  return typeof a.value === 'number' ? String(a.value) : a.value.toString('utf8');
}

function attrNum(attrs: readonly Attribute[], type: number): number | null {
  const a = attrs.find((x) => x.type === type);
  if (a === undefined) return null;
  if (typeof a.value === 'number') return a.value;
  return a.value.length >= 1 && a.value.length <= 4 ? a.value.readUIntBE(0, a.value.length) : null;
}

/** Parses a datagram and passes Transaction messages of this SA to the channel. */
function feed(channel: TransactionChannel, message: Buffer, now: number): TransactionOutput | string {
  const parsed = parseMessage(message);
  if (!parsed.ok) return `unparsable: ${parsed.error.message}`;
  if (!('encrypted' in parsed.value)) return 'unencrypted message after phase 1 (not authenticated)';
  return channel.handle(parsed.value.header as IsakmpHeader, parsed.value.encrypted, now);
}

abstract class Session {
  protected readonly channel: TransactionChannel;
  protected out: RemoteAccessOutput = empty();

  constructor(crypto: CryptoProvider, sa: Phase2Keys, retransmit?: RetransmitPolicy, newMessageId?: () => number) {
    this.channel = new TransactionChannel(crypto, sa, { ...(retransmit ? { retransmit } : {}), ...(newMessageId ? { newMessageId } : {}) });
  }

  /** A datagram of exchange type 6 on this ISAKMP SA. */
  async handle(message: Buffer, now: number): Promise<RemoteAccessOutput> {
    this.out = empty();
    const r = feed(this.channel, message, now);
    if (typeof r === 'string') this.out.dropped.push(r);
    else await this.take(r, now);
    return this.flush();
  }

  /** Same, for a message already split by parseMessage (the gateway has done it). */
  async handleParsed(header: IsakmpHeader, body: Buffer, now: number): Promise<RemoteAccessOutput> {
    this.out = empty();
    await this.take(this.channel.handle(header, body, now), now);
    return this.flush();
  }

  async onTimer(now: number): Promise<RemoteAccessOutput> {
    this.out = empty();
    await this.take(this.channel.onTimer(now), now);
    return this.flush();
  }

  get timer(): number | null {
    return this.channel.deadline;
  }

  protected async take(r: TransactionOutput, now: number): Promise<void> {
    this.out.send.push(...r.send);
    this.out.dropped.push(...r.dropped);
    for (const e of r.events) await this.onEvent(e, now);
  }

  protected request(cfgType: number, attrs: Attribute[], now: number): void {
    this.out.send.push(...this.channel.request(cfgType, attrs, now).out.send);
  }

  protected flush(): RemoteAccessOutput {
    const o = this.out;
    o.timer = this.channel.deadline;
    this.out = empty();
    return o;
  }

  protected abstract onEvent(e: TransactionEvent, now: number): Promise<void>;
}

/** What an authenticated but unparsable Transaction message is reported as (at once: no retransmission fixes it). */
function malformedReason(e: Extract<TransactionEvent, { kind: 'malformed' }>, what: string): string {
  return `malformed ${what} from the peer (authenticated, so not a forgery): ${e.reason}`;
}

export class RemoteAccessServer extends Session {
  /** XAUTH done (or not configured): Quick Mode from this peer may be accepted. */
  authenticated: boolean;
  /** XAUTH failed: the caller deletes the ISAKMP SA. */
  failed = false;
  user: string | null = null;
  /** The pool address given to this client. */
  assigned: string | null = null;
  private attempts = 0;
  private statusSent: number | null = null;
  private closed = false;
  private readonly owner: string;

  constructor(
    crypto: CryptoProvider,
    sa: Phase2Keys,
    readonly options: RemoteAccessServerOptions,
  ) {
    super(crypto, sa, options.retransmit, options.newMessageId);
    this.authenticated = options.xauth === undefined;
    this.owner = options.owner ?? Buffer.concat([sa.cookieI, sa.cookieR]).toString('hex');
  }

  /** Call once phase 1 is up: starts XAUTH (or a Mode-Config push when there is no XAUTH). */
  start(now: number): RemoteAccessOutput {
    this.out = empty();
    if (this.options.xauth) {
      const limiter = this.options.xauth.limiter;
      if (limiter && !limiter.allowed(this.options.peer)) {
        const wait = Math.ceil(limiter.retryAfterMs(this.options.peer) / 1000);
        this.fail(undefined, `too many failed logins from ${this.options.peer}: refused for ${wait} s`, now);
      } else this.askCredentials(now);
    } else if (this.options.modeConfig?.mode === 'push') this.push(now);
    return this.flush();
  }

  /** The ISAKMP SA is gone: give its address back, stop retransmitting. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.cancel();
    if (this.assigned !== null) this.options.modeConfig?.pool?.release(this.owner);
  }

  private askCredentials(now: number): void {
    this.attempts++;
    this.request(ModeCfgType.CFG_REQUEST, [tv(ModeCfgAttr.XAUTH_TYPE, XauthType.GENERIC), tlv(ModeCfgAttr.XAUTH_USER_NAME, Buffer.alloc(0)), tlv(ModeCfgAttr.XAUTH_USER_PASSWORD, Buffer.alloc(0))], now);
  }

  private fail(user: string | undefined, reason: string, now: number, malformed = false): void {
    this.statusSent = XauthStatus.FAIL;
    this.failed = true;
    this.request(ModeCfgType.CFG_SET, [tv(ModeCfgAttr.XAUTH_STATUS, XauthStatus.FAIL)], now);
    this.out.events.push({ type: 'xauthFailed', ...(user !== undefined ? { user } : {}), reason, ...(malformed ? { malformed: true as const } : {}) });
  }

  private config(): ModeCfgConfig | string {
    const mc = this.options.modeConfig!;
    if (mc.pool && this.assigned === null) {
      try {
        this.assigned = mc.pool.allocate(this.owner);
      } catch (e) {
        if (e instanceof AddressPoolExhausted) return e.message;
        throw e;
      }
    }
    return {
      ...(this.assigned !== null ? { address: this.assigned } : {}),
      ...(mc.netmask !== undefined ? { netmask: mc.netmask } : {}),
      dns: mc.dns ?? [],
      nbns: mc.nbns ?? [],
      splitInclude: mc.splitInclude ?? [],
      ...(mc.banner !== undefined ? { banner: mc.banner } : {}),
    };
  }

  private push(now: number): void {
    const c = this.config();
    if (typeof c === 'string') {
      this.out.events.push({ type: 'modeCfgFailed', reason: c });
      return;
    }
    this.request(ModeCfgType.CFG_SET, modeCfgAttributes(c), now);
    this.out.events.push({ type: 'modeCfg', config: c });
  }

  protected async onEvent(e: TransactionEvent, now: number): Promise<void> {
    if (this.closed) return;
    if (e.kind === 'timeout') {
      if (!this.authenticated && !this.failed) this.fail(this.user ?? undefined, `no XAUTH answer from ${this.options.peer} after ${Math.round(e.afterMs / 1000)} s`, now);
      else if (e.request.attributes.some((a) => a.type === ModeCfgAttr.INTERNAL_IP4_ADDRESS)) this.out.events.push({ type: 'modeCfgFailed', reason: 'no ACK to the Mode-Config SET' });
      return;
    }
    if (e.kind === 'malformed') {
      if (!this.authenticated && !this.failed) this.fail(this.user ?? undefined, malformedReason(e, 'XAUTH message'), now, true);
      else this.out.events.push({ type: 'modeCfgFailed', reason: malformedReason(e, 'Mode-Config message'), malformed: true });
      return;
    }
    if (e.kind === 'reply') {
      const xauthReq = e.request.attributes.some((a) => a.type === ModeCfgAttr.XAUTH_TYPE);
      const statusSet = e.request.attributes.some((a) => a.type === ModeCfgAttr.XAUTH_STATUS);
      if (xauthReq && e.attr.cfgType === ModeCfgType.CFG_REPLY) await this.credentials(e.attr, now);
      else if (statusSet && this.statusSent === XauthStatus.OK) {
        this.authenticated = true;
        this.out.events.push({ type: 'xauthOk', user: this.user! });
        if (this.options.modeConfig?.mode === 'push') this.push(now);
      }
      return;
    }
    // A peer REQUEST (Mode-Config pull) or SET.
    if (e.attr.cfgType === ModeCfgType.CFG_REQUEST && this.options.modeConfig && this.authenticated) {
      const c = this.config();
      if (typeof c === 'string') {
        // An empty REPLY tells the client it gets nothing (strongSwan does the same when its pool is dry).
        this.out.send.push(this.channel.respond(e.messageId, ModeCfgType.CFG_REPLY, []));
        this.out.events.push({ type: 'modeCfgFailed', reason: c });
        return;
      }
      const wanted = e.attr.attributes.map((a) => a.type);
      let attrs = modeCfgAttributes(c, wanted);
      // A client asking for a netmask we have not configured gets the /32 it would assume.
      if (wanted.includes(ModeCfgAttr.INTERNAL_IP4_NETMASK) && c.netmask === undefined && c.address !== undefined) {
        attrs = [...attrs, tlv(ModeCfgAttr.INTERNAL_IP4_NETMASK, ipv4Bytes(prefixMask(32)))];
      }
      this.out.send.push(this.channel.respond(e.messageId, ModeCfgType.CFG_REPLY, attrs));
      this.out.events.push({ type: 'modeCfg', config: c });
      return;
    }
    this.out.dropped.push(
      e.attr.cfgType === ModeCfgType.CFG_REQUEST && this.options.modeConfig && !this.authenticated
        ? 'Mode-Config request before XAUTH completed (ignored)'
        : `unexpected ${e.attr.cfgType === ModeCfgType.CFG_SET ? 'SET' : 'REQUEST'} from the client (ignored)`,
    );
  }

  private async credentials(attr: AttributePayload, now: number): Promise<void> {
    if (this.failed || this.authenticated || this.statusSent !== null) return;
    const user = attrString(attr.attributes, ModeCfgAttr.XAUTH_USER_NAME);
    const password = attrString(attr.attributes, ModeCfgAttr.XAUTH_USER_PASSWORD);
    const x = this.options.xauth!;
    if (user === null || password === null) {
      this.fail(user ?? undefined, 'XAUTH reply without user name or password', now);
      return;
    }
    const peer = this.options.peer;
    const checked = x.limiter?.begin(peer, user);
    if (x.limiter && !checked) {
      // blocked (or as many checks in flight as failures left): no password check for now
      const wait = Math.ceil(x.limiter.retryAfterMs(peer, user) / 1000);
      this.fail(user, `too many failed logins for '${user}' or from ${peer}: ${wait > 0 ? `refused for ${wait} s` : 'other checks are in progress'}`, now);
      return;
    }
    let ok = false;
    try {
      ok = await x.verify(user, password);
    } finally {
      // counted even when the SA went away meanwhile: deleting it must not hide a wrong guess
      checked?.(ok);
    }
    if (this.closed) return;
    if (ok) {
      this.user = user;
      this.statusSent = XauthStatus.OK;
      this.request(ModeCfgType.CFG_SET, [tv(ModeCfgAttr.XAUTH_STATUS, XauthStatus.OK)], now);
      return;
    }
    const blocked = x.limiter !== undefined && !x.limiter.allowed(peer, user);
    if (this.attempts < (x.maxAttempts ?? 3) && !blocked) {
      this.out.events.push({ type: 'xauthRetry', user, attempt: this.attempts + 1 });
      this.askCredentials(now);
    } else {
      this.fail(user, blocked ? `wrong password for '${user}'; too many failed logins for '${user}' or from ${peer}` : `wrong password for '${user}' after ${this.attempts} attempts`, now);
    }
  }
}

export interface RemoteAccessClientOptions {
  /** Answers to the server's XAUTH request (omitted: an XAUTH request is ignored). */
  xauth?: { user: string; password: string };
  /** Mode-Config: 'pull' (default) sends a REQUEST (after XAUTH succeeds, or at start without XAUTH); 'push' waits for a SET; 'none'. */
  modeConfig?: 'pull' | 'push' | 'none';
  /** Attribute types requested when pulling (default: address, netmask, DNS, NBNS, split include, banner). */
  request?: readonly number[];
  retransmit?: RetransmitPolicy;
  newMessageId?: () => number;
}

export class RemoteAccessClient extends Session {
  /** The server said XAUTH_STATUS OK. */
  authenticated = false;
  failed = false;
  config: ModeCfgConfig | null = null;

  constructor(
    crypto: CryptoProvider,
    sa: Phase2Keys,
    readonly options: RemoteAccessClientOptions = {},
  ) {
    super(crypto, sa, options.retransmit, options.newMessageId);
  }

  /** Call once phase 1 is up: without XAUTH, a pull client asks for its configuration now. */
  start(now: number): RemoteAccessOutput {
    this.out = empty();
    if (this.options.xauth === undefined && (this.options.modeConfig ?? 'pull') === 'pull') this.pull(now);
    return this.flush();
  }

  close(): void {
    this.channel.cancel();
  }

  private pull(now: number): void {
    this.request(ModeCfgType.CFG_REQUEST, (this.options.request ?? DEFAULT_REQUEST_ATTRIBUTES).map((t) => tlv(t, Buffer.alloc(0))), now);
  }

  protected async onEvent(e: TransactionEvent, now: number): Promise<void> {
    if (e.kind === 'timeout') {
      this.out.events.push({ type: 'modeCfgFailed', reason: `no Mode-Config reply after ${Math.round(e.afterMs / 1000)} s` });
      return;
    }
    if (e.kind === 'malformed') {
      const xauth = this.options.xauth !== undefined && !this.authenticated && !this.failed;
      if (xauth) this.failed = true;
      this.out.events.push(xauth
        ? { type: 'xauthFailed', user: this.options.xauth!.user, reason: malformedReason(e, 'XAUTH message'), malformed: true }
        : { type: 'modeCfgFailed', reason: malformedReason(e, e.request ? 'Mode-Config reply' : 'Mode-Config message'), malformed: true });
      return;
    }
    if (e.kind === 'reply') {
      const { config } = readModeCfgAttributes(e.attr.attributes);
      this.config = config;
      this.out.events.push({ type: 'modeCfg', config });
      return;
    }
    const attrs = e.attr.attributes;
    if (e.attr.cfgType === ModeCfgType.CFG_REQUEST) {
      if (!attrs.some((a) => a.type === ModeCfgAttr.XAUTH_USER_NAME || a.type === ModeCfgAttr.XAUTH_USER_PASSWORD || a.type === ModeCfgAttr.XAUTH_TYPE)) {
        this.out.dropped.push('server REQUEST for attributes other than XAUTH (not supported)');
        return;
      }
      const type = attrNum(attrs, ModeCfgAttr.XAUTH_TYPE) ?? XauthType.GENERIC;
      if (this.options.xauth === undefined || type !== XauthType.GENERIC || this.failed || this.authenticated) {
        this.out.dropped.push(this.options.xauth === undefined ? 'XAUTH request but no credentials configured' : `XAUTH type ${type} not supported (generic only)`);
        return;
      }
      const reply: Attribute[] = [];
      if (attrs.some((a) => a.type === ModeCfgAttr.XAUTH_TYPE)) reply.push(tv(ModeCfgAttr.XAUTH_TYPE, XauthType.GENERIC));
      reply.push(tlv(ModeCfgAttr.XAUTH_USER_NAME, Buffer.from(this.options.xauth.user, 'utf8')));
      reply.push(tlv(ModeCfgAttr.XAUTH_USER_PASSWORD, Buffer.from(this.options.xauth.password, 'utf8')));
      this.out.send.push(this.channel.respond(e.messageId, ModeCfgType.CFG_REPLY, reply));
      return;
    }
    // SET: XAUTH status, or a Mode-Config push.
    const status = attrNum(attrs, ModeCfgAttr.XAUTH_STATUS);
    if (status !== null) {
      this.out.send.push(this.channel.respond(e.messageId, ModeCfgType.CFG_ACK, [tv(ModeCfgAttr.XAUTH_STATUS, status)]));
      if (this.authenticated || this.failed) return;
      if (status === XauthStatus.OK) {
        this.authenticated = true;
        this.out.events.push({ type: 'xauthOk', user: this.options.xauth?.user ?? '' });
        if ((this.options.modeConfig ?? 'pull') === 'pull') this.pull(now);
      } else {
        this.failed = true;
        this.channel.cancel();
        this.out.events.push({ type: 'xauthFailed', ...(this.options.xauth ? { user: this.options.xauth.user } : {}), reason: 'the server rejected the credentials' });
      }
      return;
    }
    const { config } = readModeCfgAttributes(attrs);
    // The ACK lists the attribute types accepted, with empty values (draft-dukes 3.2).
    const seen = [...new Set(attrs.map((a) => a.type))];
    this.out.send.push(this.channel.respond(e.messageId, ModeCfgType.CFG_ACK, seen.map((t) => tlv(t, Buffer.alloc(0)))));
    this.config = config;
    this.out.events.push({ type: 'modeCfg', config });
  }
}
