// The phase 1 driver: starts and answers Main and Aggressive Mode exchanges, carries their output to the
// wire and the scheduler, and brings an ISAKMP SA up when its exchange completes. Every continuation after
// an `await` (a DH on the thread pool) asks the SA table first whether its entry is still alive.
import type { CryptoProvider } from '../crypto/index.js';
import { showId } from '../ike/auth-cert.js';
import {
  DEFAULT_RETRANSMIT,
  IsakmpSaContext,
  natFloat,
  Phase1,
  RemoteAccessClient,
  retransmitTotalMs,
  type CookieGenerator,
  type Endpoint,
  type IsakmpSa,
  type Phase1Output,
} from '../ike/index.js';
import type { Admission } from './admission.js';
import type { ConnectionConfig } from './config.js';
import { emitError, guard, type GatewayEmitter } from './events.js';
import { isakmpKeylog } from './keylog.js';
import { rekeyTime, type ChildManager } from './child-manager.js';
import { keepaliveSeconds, type PolicyCompiler } from './policy.js';
import type { RemoteAccessBinding } from './remote-access-binding.js';
import { newEntry, scopeOf, type IsakmpEntry, type SaTable } from './sa-table.js';
import { SEND_LATER_MS, type Scheduler } from './scheduler.js';

export interface Phase1DriverDeps {
  crypto: CryptoProvider;
  cookies: CookieGenerator;
  events: GatewayEmitter;
  table: SaTable;
  admission: Admission;
  scheduler: Scheduler;
  policies: PolicyCompiler;
  children: ChildManager;
  remoteAccess: RemoteAccessBinding;
  independentSas: boolean;
  /**
   * Our endpoint for a connection: `address` (where the peer's message came to, or the route's source),
   * else its `local`, else the listening address; and the IKE port.
   */
  local(c: ConnectionConfig | undefined, address?: string): Endpoint;
  /** Listening on a wildcard: the address the kernel sends from to `remote` (else undefined). */
  routeSource(remote: Endpoint): Promise<string | undefined>;
  send(entry: IsakmpEntry, message: Buffer): void;
  sendTo(message: Buffer, to: Endpoint, natt: boolean, source?: string): void;
  teardown(entry: IsakmpEntry, reason: string, notify: boolean): void;
  /** Out of the table and the scheduler, with nothing sent (a failed or evicted exchange). */
  forget(entry: IsakmpEntry): void;
  /** The gateway is stopping or stopped: nothing new starts. */
  closed(): boolean;
}

export interface InitiateOptions {
  /** Always a new ISAKMP SA, even if one is up (a load tester's). */
  fresh?: boolean;
  /** Bring a child up once phase 1 is complete (default true). */
  withChild?: boolean;
  /** Never replaces, nor is replaced by, another SA of its connection. */
  independent?: boolean;
}

export class Phase1Driver {
  constructor(private readonly d: Phase1DriverDeps) {}

  /** Message 1 of a new exchange with the connection's peer; the new entry's key (initiator cookie, hex). */
  async initiate(c: ConnectionConfig, options: InitiateOptions): Promise<string | undefined> {
    const remote = { address: c.remote, port: c.remotePort };
    const now = Date.now();
    const mark = this.d.table.mark();
    try {
      const source = c.local === null ? await this.d.routeSource(remote) : undefined;
      const { phase1, out } = await Phase1.initiate(this.env(remote, c, source), this.d.policies.phase1(c, source), now);
      // stopped or deleted while the key pair was made
      if (this.d.closed() || this.d.table.deletedSince(c.name, mark)) return undefined;
      const entry = this.newEntry(phase1, c.name, remote, false, now, options.independent ?? this.d.independentSas);
      entry.wantChild = options.withChild ?? true;
      this.d.table.add(entry);
      this.apply(entry, out);
      return entry.key;
    } catch (e) {
      emitError(this.d.events, e, { connection: c.name, remote });
      return undefined;
    }
  }

  /**
   * A message 1 with a cookie we do not know (its header parsed), that came to our address `local` (if the
   * socket says). Admission decides first, in O(1), whether it may start an exchange at all (see admission.ts);
   * a refusal is counted there and nothing is sent.
   */
  respond(msg: Buffer, from: Endpoint, natt: boolean, now: number, local?: string): void {
    // decided before anything else, the datagram not even copied yet (it may be a view of a receive batch);
    // a refusal costs no promise either
    const verdict = this.d.admission.admit(from.address, msg, now);
    if (!verdict.admit) return;
    if (verdict.evict) this.d.forget(verdict.evict);
    const answered = this.respondAdmitted(Buffer.from(msg), from, natt, now, local).finally(() => this.d.admission.settled(from.address));
    guard(this.d.events, answered, { remote: from });
  }

  private async respondAdmitted(msg: Buffer, from: Endpoint, natt: boolean, now: number, local?: string): Promise<void> {
    const candidates = this.d.policies.candidates(from.address);
    const mark = this.d.table.mark();
    const { phase1, out } = await Phase1.respond(this.env(from, candidates[0], local), candidates.map((c) => this.d.policies.phase1(c, local)), msg, now);
    if (this.d.closed()) return;
    if (phase1) {
      // the connection was deleted while our answer was computed (Aggressive Mode: a DH): no exchange
      if (this.d.table.deletedSince(phase1.policy.name, mark)) return;
      const entry = this.newEntry(phase1, phase1.policy.name, from, natt, now, this.d.independentSas);
      // a repeat of message 1 that raced the first (both awaited a DH): the first answers its retransmissions
      if (this.d.table.add(entry, true)) this.apply(entry, out);
    } else {
      for (const m of out.send) this.d.sendTo(m, from, natt, local);
      if (out.failed) emitError(this.d.events, out.failed, { remote: from });
    }
  }

  /** A phase 1 message on an exchange we know (or a repeat after it completed, answered from the cache). */
  handle(entry: IsakmpEntry, msg: Buffer, now: number): void {
    const p1 = entry.phase1;
    // after the grace period nothing answers phase 1 any more: a late repeat is dropped
    if (p1) guard(this.d.events, p1.handle(msg, now).then((out) => this.apply(entry, out)), scopeOf(entry));
  }

  /** The phase 1 deadline came: a retransmission, or the end of the grace period after completion. */
  onTimer(entry: IsakmpEntry, now: number): void {
    entry.phase1Due = null;
    const p1 = entry.phase1;
    if (p1 === null) return;
    if (entry.sa !== null) entry.phase1 = null; // the grace period is over
    else this.apply(entry, p1.onTimer(now));
  }

  private env(remote: Endpoint, c: ConnectionConfig | undefined, localAddress?: string) {
    return { crypto: this.d.crypto, cookies: this.d.cookies, local: this.d.local(c, localAddress), remote };
  }

  private newEntry(phase1: Phase1, connection: string, remote: Endpoint, natt: boolean, now: number, independent: boolean): IsakmpEntry {
    // dpd is declared now, set later: a property added afterwards would cost the object a separate property array
    const ctxOptions: IsakmpEntry['ctxOptions'] = { children: [], dpd: undefined };
    return newEntry(phase1, new IsakmpSaContext(this.d.crypto, null, ctxOptions, now), ctxOptions, connection, remote, natt, independent);
  }

  private apply(entry: IsakmpEntry, out: Phase1Output): void {
    const phase1 = entry.phase1;
    if (phase1 === null || !this.d.table.alive(entry)) return;
    if (entry.sa !== null) {
      // established: a repeated last message answered from the cache; the grace deadline stays as it is
      for (const m of out.send) this.d.send(entry, m);
      return;
    }
    // RFC 3947 4: once NAT-D shows a NAT, the initiator sends from its next message on to the NAT-T port;
    // the responder follows when a message arrives there (see Gateway.receive).
    if (!entry.natt && phase1.initiator && natFloat(phase1.nat)) {
      entry.natt = true;
      entry.remote = { address: entry.remote.address, port: this.d.policies.find(entry.connection)?.remoteNattPort ?? 4500 };
    }
    for (const m of out.send) this.d.send(entry, m);
    if (out.later?.length) {
      // also after the exchange is forgotten (it is a refusal's Delete)
      const later = out.later;
      void this.d.scheduler.after(SEND_LATER_MS, () => {
        for (const m of later) this.d.send(entry, m);
      });
    }
    entry.phase1Due = out.timer;
    // the peer answered our message 2 (it receives at its address): not the first to go when the table is full
    if (!phase1.initiator && phase1.step !== 'R_MM_SA' && phase1.step !== 'R_AM_SA') this.d.table.proven(entry);
    if (out.failed) {
      this.d.forget(entry);
      emitError(this.d.events, out.failed, scopeOf(entry));
      return;
    }
    if (out.established) {
      entry.sa = out.established;
      // The machine answers a repeat of the peer's last message (MM5, or AM2 at an AM initiator) for as long
      // as the peer may retransmit it (its schedule, taken to be ours), then goes: a gateway with many SAs
      // would otherwise keep every exchange's leftovers for the SA's whole life.
      entry.phase1Due = Date.now() + retransmitTotalMs(phase1.policy.retransmit ?? DEFAULT_RETRANSMIT);
      guard(this.d.events, this.established(entry, out.established), scopeOf(entry));
    }
    this.d.scheduler.wake(entry);
  }

  private async established(entry: IsakmpEntry, sa: IsakmpSa): Promise<void> {
    const c = this.d.policies.find(entry.connection)!;
    // unique 'never': an SA the peer set up stands alone, like the load tester's (our own re-keys still move
    // the children of the SAs we started)
    if (c.unique === 'never' && !sa.initiator) entry.independent = true;
    this.d.table.established(entry);
    this.d.admission.established(entry.remote.address, Date.now());
    entry.ctxOptions.children = this.d.policies.children(c, sa);
    const dpd = this.d.policies.dpd(c);
    if (dpd && sa.peerVendorIds.dpd) entry.ctxOptions.dpd = dpd;
    this.emitUp(entry, sa);
    if (c.keylog) this.d.events.emit('keylog', isakmpKeylog(sa));
    // Lifetime: a connection we initiate is re-established before the ISAKMP SA expires; at expiry it goes.
    // (the expiry is sa.expiresAt; the scheduler wakes the entry for whichever comes first)
    if (sa.initiator && c.initiate) entry.rekeyAt = rekeyTime(sa.proposal.lifetimeSeconds);
    const keepalive = keepaliveSeconds(sa, c);
    if (keepalive > 0) entry.keepaliveAt = Date.now() + keepalive * 1000;
    this.d.scheduler.wake(entry);
    const out = await entry.ctx.establish(sa, Date.now());
    if (!this.d.table.alive(entry)) return; // deleted or stopped meanwhile
    this.d.children.apply(entry, out);
    const ra = this.d.remoteAccess.start(entry, c, sa);
    if (!sa.initiator || !this.d.table.alive(entry)) return;
    const moving = this.replaceOlder(entry, sa);
    // A remote-access client starts its Quick Mode once XAUTH / Mode-Config are done.
    if ((entry.wantChild || moving) && !(ra instanceof RemoteAccessClient)) await this.d.children.start(entry, c);
  }

  /**
   * Initiator: the older ISAKMP SAs of this connection and peer that a rekey replaces. One without children
   * is deleted now; the children of the others move over at once, not when their own rekey timers say (the
   * old ISAKMP SA's expiry would take down any child still on it; found by ike soak). True when some move.
   */
  private replaceOlder(entry: IsakmpEntry, sa: IsakmpSa): boolean {
    if (entry.independent) return false; // load-test SAs stand alone
    let moving = false;
    for (const e of [...this.d.table.siblings(entry)]) {
      if (e === entry) continue;
      if (e.sa!.establishedAt < sa.establishedAt && e.children.length === 0) this.d.teardown(e, 'replaced by a newer ISAKMP SA', true);
      else if (e.children.some((ch) => !ch.rekeyed)) moving = true;
    }
    return moving;
  }

  private emitUp(entry: IsakmpEntry, sa: IsakmpSa): void {
    this.d.events.emit('phase1-up', {
      connection: sa.name,
      initiator: sa.initiator,
      mode: sa.mode,
      local: sa.local,
      // where the peer is now (the NAT-T port once IKE floated), not where the exchange started
      remote: { ...entry.remote },
      localId: showId(sa.localId),
      remoteId: showId(sa.remoteId),
      algorithms: sa.algorithms,
      lifetimeSeconds: sa.proposal.lifetimeSeconds,
      cookieI: sa.cookieI.toString('hex'),
      cookieR: sa.cookieR.toString('hex'),
      natDetected: { local: sa.nat.localBehindNat, remote: sa.nat.remoteBehindNat },
      setupMs: Date.now() - entry.startedAt,
      sa,
    });
  }

}
