// The lifecycle of ISAKMP SAs after they exist: what falls due on one (the scheduler calls due()), its
// rekey, its NAT keepalives, and its end (teardown: Deletes to the peer, children first, then closed).
import type { GatewayEmitter } from './events.js';
import { guard } from './events.js';
import type { IsakmpSa } from '../ike/index.js';
import { rekeyTime, responderRekeyTime, type ChildManager } from './child-manager.js';
import type { Phase1Driver, InitiateOptions } from './phase1-driver.js';
import { keepaliveSeconds, type PolicyCompiler } from './policy.js';
import type { RemoteAccessBinding } from './remote-access-binding.js';
import { isUp, type IsakmpEntry, type SaTable } from './sa-table.js';
import type { Scheduler } from './scheduler.js';
import type { Transport } from './transport.js';

/** How long an ISAKMP SA's Delete waits behind the Deletes of its children (teardown). */
const ISAKMP_DELETE_DELAY_MS = 20;

/**
 * Ends of an ISAKMP SA that its children survive when a newer ISAKMP SA of the connection is up: they move to
 * it (IKEv1 IPsec SAs outlive the ISAKMP SA that made them; a peer that rekeyed phase 1 deletes the old one).
 * A dead peer, INITIAL-CONTACT, a terminate or a stop take the children along.
 */
const CHILDREN_SURVIVE = new Set(['deleted by the peer', 'ISAKMP SA lifetime expired', 'replaced by a newer ISAKMP SA']);

export interface LifecycleDeps {
  events: GatewayEmitter;
  table: SaTable;
  scheduler: Scheduler;
  transport: Transport;
  policies: PolicyCompiler;
  children: ChildManager;
  phase1: Phase1Driver;
  remoteAccess: RemoteAccessBinding;
  send(entry: IsakmpEntry, message: Buffer): void;
  initiate(connection: string, options: InitiateOptions): Promise<unknown>;
}

export class SaLifecycle {
  constructor(private readonly d: LifecycleDeps) {
    d.events.on('phase1-up', (e) => {
      this.armRekey(e.cookieI, e.sa);
      if (!e.sa.initiator) this.adoptAsResponder(e.cookieI);
    });
  }

  /**
   * The peer re-keyed phase 1 (a new ISAKMP SA of the connection, we respond): the children of the older ones
   * move to it now, as the peer's do (strongSwan adopts them at once), so that its Deletes and DPD find them
   * there. The older SAs stay until the peer deletes them or they expire.
   */
  private adoptAsResponder(cookieI: string): void {
    const entry = this.d.table.get(cookieI);
    if (!entry || entry.independent || this.d.table.newest(entry) !== entry) return;
    for (const old of [...this.d.table.siblings(entry)]) if (old !== entry) this.d.children.adopt(old);
  }

  /**
   * The side with the shorter phase 1 lifetime re-keys it. The phase 1 driver arms the rekey of an ISAKMP SA
   * that a connection with `initiate` started; this arms it where that rule leaves none: as responder with
   * the shorter lifetime (RESPONDER-LIFETIME sent), and on an SA we started for a responder connection (our
   * own re-key of such an SA). Not for a connection with `remote: %any`, which cannot initiate.
   */
  private armRekey(cookieI: string, sa: IsakmpSa): void {
    const entry = this.d.table.get(cookieI);
    const c = this.d.policies.find(sa.name);
    if (!entry || !c || c.remote === '%any' || entry.rekeyAt !== null) return;
    if (sa.initiator) {
      if (!c.initiate) entry.rekeyAt = rekeyTime(sa.proposal.lifetimeSeconds);
    } else if (sa.proposal.offeredLifetimeSeconds !== undefined) entry.rekeyAt = responderRekeyTime(sa.proposal.lifetimeSeconds);
    this.d.scheduler.wake(entry);
  }

  /** Whatever is due on this entry now, in order: its own end, its exchanges' timers, its rekey, its children's. */
  due(entry: IsakmpEntry): void {
    const now = Date.now();
    const { table } = this.d;
    if (!table.alive(entry)) return;
    if (entry.dropAt !== null && entry.dropAt <= now) return this.teardown(entry, entry.dropReason, true);
    if (isUp(entry) && entry.sa!.expiresAt <= now) return this.teardown(entry, 'ISAKMP SA lifetime expired', true);
    if (entry.phase1Due !== null && entry.phase1Due <= now) this.d.phase1.onTimer(entry, now);
    if (!table.alive(entry)) return;
    if (entry.raDue !== null && entry.raDue <= now) this.d.remoteAccess.onTimer(entry, now);
    if (entry.keepaliveAt !== null && entry.keepaliveAt <= now) this.keepalive(entry, now);
    if (entry.rekeyAt !== null && entry.rekeyAt <= now) {
      entry.rekeyAt = null;
      // a new ISAKMP SA before this one expires; children move to it, then this one is deleted
      guard(this.d.events, this.d.initiate(entry.connection, { fresh: true, withChild: false }), { connection: entry.connection, ours: true });
    }
    this.childrenDue(entry, now);
    if (!table.alive(entry)) return;
    if (entry.ctxDue !== null && entry.ctxDue <= now) {
      entry.ctxDue = null;
      this.d.children.apply(entry, entry.ctx.onTimer(now)); // re-arms through the scheduler
    }
    this.d.scheduler.wake(entry);
  }

  /** Removes an ISAKMP SA with all its children; with `notify`, Deletes go to the peer first. */
  teardown(entry: IsakmpEntry, reason: string, notify: boolean): void {
    if (entry.state === 'closing' || entry.state === 'closed') return;
    const wasUp = isUp(entry);
    if (wasUp && CHILDREN_SURVIVE.has(reason)) this.d.children.adopt(entry);
    entry.state = 'closing';
    const children = entry.children.length;
    for (const child of entry.children) this.d.children.down(entry, child.sa.spiIn, reason, notify);
    this.d.children.dropEarly(entry, () => true);
    if (notify && wasUp) {
      const del = entry.ctx.deleteIsakmp();
      if (children === 0) this.d.send(entry, del);
      else {
        // The children's Deletes go first and the ISAKMP SA's a moment later. Sent back to back, a peer that
        // handles datagrams on several threads (strongSwan) may take the ISAKMP Delete first and drop the
        // others with the SA they name; in IKEv1 its IPsec SAs need not end with the ISAKMP SA.
        void this.d.scheduler.after(ISAKMP_DELETE_DELAY_MS, () => this.d.send(entry, del));
      }
    }
    this.forget(entry);
    if (wasUp) {
      const sa = entry.sa!;
      this.d.events.emit('phase1-down', { connection: entry.connection, remote: entry.remote, cookieI: sa.cookieI.toString('hex'), cookieR: sa.cookieR.toString('hex'), reason });
    }
  }

  /** Out of the table and the scheduler: closed, nothing more sent or due for it. */
  forget(entry: IsakmpEntry): void {
    this.d.table.remove(entry);
    this.d.scheduler.forget(entry);
    entry.ra?.close(); // gives a pool address back
    if (entry.virtualIp !== null) this.d.transport.useVirtualIp(entry.virtualIp, [], -1); // a client's, off the host
  }

  private childrenDue(entry: IsakmpEntry, now: number): void {
    for (const child of entry.children) {
      if (!this.d.table.alive(entry) || !entry.children.includes(child)) continue;
      if (child.dropAt !== null && child.dropAt <= now) this.d.children.down(entry, child.sa.spiIn, 'replaced by a rekey', true);
      else if (child.sa.expiresAt <= now) this.d.children.down(entry, child.sa.spiIn, 'lifetime expired', true);
      else if (child.rekeyAt !== null && child.rekeyAt <= now) {
        child.rekeyAt = null;
        // the old child carries traffic until the new one is up
        const c = this.d.policies.find(entry.connection);
        if (c && !child.rekeyed) void this.d.children.start(this.d.table.newest(entry), c, child);
      }
    }
  }

  /** RFC 3948 2.3: a NAT keepalive to the peer's NAT-T port, and the next one scheduled. */
  private keepalive(entry: IsakmpEntry, now: number): void {
    const seconds = keepaliveSeconds(entry.sa, this.d.policies.find(entry.connection));
    entry.keepaliveAt = seconds > 0 ? now + seconds * 1000 : null;
    if (!isUp(entry) || !entry.natt) return;
    entry.keepalives++;
    this.d.transport.sendKeepalive(entry.remote);
  }
}
