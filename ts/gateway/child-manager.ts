// The child SA manager: Quick Modes on an ISAKMP SA, what the phase 2 context reports (children, deletes,
// dead peers, notifies), installing ESP SAs, and the replacement rules of a rekey.
import { createChildEspSas, hostSelector, IkeError, tsToString, type ChildSa, type Phase2Output, type Phase2Policy, type TrafficSelector } from '../ike/index.js';
import { idToString } from '../isakmp/index.js';
import type { ConnectionConfig } from './config.js';
import { emitError, type GatewayEmitter } from './events.js';
import { childKeylog } from './keylog.js';
import type { PolicyCompiler } from './policy.js';
import { isUp, newChild, scopeOf, type Child, type IsakmpEntry, type SaTable } from './sa-table.js';
import { SEND_LATER_MS, type Scheduler } from './scheduler.js';
import type { Transport } from './transport.js';

/** An SA we initiated is rekeyed this far into its lifetime (minus up to 5% jitter so both ends do not collide). */
const REKEY_AT = 0.9;
/**
 * A responder whose lifetime is the shorter one rekeys later than an initiator would: a peer that honours
 * RESPONDER-LIFETIME rekeys first (and ours is then skipped), one that ignores it still gets a new SA in time.
 */
const RESPONDER_REKEY_AT = 0.95;

/** When to start replacing an SA (child or ISAKMP) of this lifetime that we initiated. */
export function rekeyTime(lifetimeSeconds: number, now = Date.now(), at = REKEY_AT): number {
  return now + lifetimeSeconds * 1000 * (at - Math.random() * 0.05);
}

/** Same, for an SA we answered with a lifetime shorter than the peer's (RESPONDER-LIFETIME sent). */
export function responderRekeyTime(lifetimeSeconds: number, now = Date.now()): number {
  return rekeyTime(lifetimeSeconds, now, RESPONDER_REKEY_AT);
}
/** After a rekey, the old SA keeps receiving this long (packets in flight), then it is deleted. */
const REKEY_OVERLAP_MS = 5_000;

export interface ChildManagerDeps {
  events: GatewayEmitter;
  table: SaTable;
  scheduler: Scheduler;
  transport: Transport;
  policies: PolicyCompiler;
  /** Sends an IKE message to the entry's peer (and shows it to 'datagram' listeners). */
  send(entry: IsakmpEntry, message: Buffer): void;
  /** Ends an ISAKMP SA with its children (lifecycle). */
  teardown(entry: IsakmpEntry, reason: string, notify: boolean): void;
  /** Brings a connection up again (DPD action restart, closeAction restart). */
  restart(connection: string): void;
}

/** Our Quick Modes on one ISAKMP SA: being started (QM1 not yet sent), under way (by message ID), queued. */
interface QmQueue {
  starting: number;
  inFlight: Set<number>;
  waiting: Phase2Policy[];
}

/**
 * How many Quick Modes we run at once on one ISAKMP SA. strongSwan keeps the IVs of only 3 exchanges per
 * ISAKMP SA (charon.max_ikev1_exchanges, its own included) and loses the oldest beyond that: four pairs
 * started together failed all four QM3s there ("invalid HASH_V1 payload length"). One at a time, as
 * strongSwan's own initiator queues them.
 */
const QM_IN_FLIGHT = 1;

export class ChildManager {
  private readonly queues = new WeakMap<IsakmpEntry, QmQueue>();

  constructor(private readonly d: ChildManagerDeps) {}

  /**
   * Quick Mode on `entry` for each of the connection's children, one per selector pair (with the virtual IP
   * as our side, if Mode-Config gave one); `rekey`: only the pair of that child, which it replaces. They
   * leave one after another (see QM_IN_FLIGHT): the promise settles once the first is sent or queued.
   */
  async start(entry: IsakmpEntry, c: ConnectionConfig, rekey?: Child): Promise<void> {
    if (!this.d.table.alive(entry) || !isUp(entry)) return;
    // A new ISAKMP SA of the connection (our phase 1 rekey): the children of the older ones move over as they
    // are, with the lifetime they have left; no Quick Mode (in IKEv1 IPsec SAs outlive their ISAKMP SA).
    if (rekey === undefined && this.adoptSiblings(entry)) return;
    let q = this.queues.get(entry);
    if (q === undefined) this.queues.set(entry, (q = { starting: 0, inFlight: new Set(), waiting: [] }));
    q.waiting.push(...this.policiesFor(entry, c, rekey));
    await this.next(entry, q);
  }

  /** Starts queued Quick Modes while fewer than QM_IN_FLIGHT of ours are under way on the SA. */
  private async next(entry: IsakmpEntry, q: QmQueue): Promise<void> {
    while (q.waiting.length > 0 && q.starting + q.inFlight.size < QM_IN_FLIGHT) {
      if (!this.d.table.alive(entry) || !isUp(entry)) return;
      const policy = q.waiting.shift()!;
      q.starting++;
      try {
        const { messageId, out } = await entry.ctx.initiate(policy, Date.now());
        q.inFlight.add(messageId);
        this.apply(entry, out);
      } catch (e) {
        if (this.d.table.alive(entry)) emitError(this.d.events, e, scopeOf(entry));
      } finally {
        q.starting--;
      }
    }
  }

  /** One of our Quick Modes ended (child up, or failed): the next queued one may go. */
  private ended(entry: IsakmpEntry, messageId: number): void {
    const q = this.queues.get(entry);
    if (q?.inFlight.delete(messageId)) void this.next(entry, q);
  }

  private policiesFor(entry: IsakmpEntry, c: ConnectionConfig, rekey: Child | undefined): Phase2Policy[] {
    let all = this.d.policies.children(c, entry.sa!);
    if (entry.virtualIp !== null) {
      // one local address for every pair: the pairs left differ by their remote selector only
      const localTs = hostSelector(entry.virtualIp);
      const byRemote = new Map<string, Phase2Policy>();
      for (const p of all) {
        const k = p.remoteTs ? tsToString(p.remoteTs) : '';
        if (!byRemote.has(k)) byRemote.set(k, { ...p, localTs });
      }
      all = [...byRemote.values()];
    }
    if (rekey === undefined) return all;
    const sa = entry.sa!;
    const ts = (t: TrafficSelector | undefined, host: string) => tsToString(t ?? hostSelector(host));
    const same = all.find((p) => ts(p.localTs, sa.local.address) === tsToString(rekey.sa.localTs) && ts(p.remoteTs, sa.remote.address) === tsToString(rekey.sa.remoteTs));
    // a pair the responder narrowed is proposed again as it was agreed
    return [same ?? { ...all[0]!, localTs: rekey.sa.localTs, remoteTs: rekey.sa.remoteTs }];
  }

  /** What the phase 2 context says: sends, its deadline, and its events. Nothing for an SA gone meanwhile. */
  apply(entry: IsakmpEntry, out: Phase2Output): void {
    if (!this.d.table.alive(entry)) return;
    for (const m of out.send) this.d.send(entry, m);
    if (out.later?.length) {
      const later = out.later;
      void this.d.scheduler.after(SEND_LATER_MS, () => {
        if (this.d.table.alive(entry)) for (const m of later) this.d.send(entry, m);
      });
    }
    entry.ctxDue = out.timer;
    this.d.scheduler.wake(entry);
    for (const ev of out.events) {
      // an event may have ended the SA (a Delete, a dead peer): the rest of the batch is moot
      if (!this.d.table.alive(entry)) return;
      switch (ev.type) {
        case 'childInbound':
          this.inbound(entry, ev.child);
          break;
        case 'childSa':
          this.up(entry, ev.child);
          if (ev.child.initiator) this.ended(entry, ev.child.messageId);
          break;
        case 'childFailed':
          this.dropEarly(entry, (c) => c.sa.messageId === ev.messageId);
          emitError(this.d.events, ev.error, scopeOf(entry));
          this.ended(entry, ev.messageId);
          break;
        case 'delete':
          if (ev.protocol === 1) this.d.teardown(entry, 'deleted by the peer', false);
          else for (const spi of ev.spis) this.down(this.holder(entry, spi), spi, 'deleted by the peer', false);
          this.closed(entry.connection);
          break;
        case 'peerDead':
          this.d.teardown(entry, `dead peer (no answer to DPD for ${Math.round(ev.idleMs / 1000)} s)`, false);
          if (ev.action === 'restart') this.d.restart(entry.connection);
          break;
        case 'initialContact':
          // RFC 2407 4.6.3.3: the peer has rebooted and holds no other SA with us: drop our stale ones
          // (not with unique 'never': each SA stands alone)
          if (entry.independent) break;
          for (const e of [...this.d.table.withPeer(entry.connection, entry.remote.address)]) {
            if (e !== entry) this.d.teardown(e, 'INITIAL-CONTACT from the peer', false);
          }
          break;
        case 'notify':
          if (ev.error) emitError(this.d.events, new IkeError('PEER_NOTIFY', `peer ${entry.remote.address} sent ${ev.name}`), { connection: entry.connection, remote: entry.remote });
          break;
        default:
          break;
      }
    }
  }

  /**
   * Moves the children of `from` to the newest other ISAKMP SA of its connection and peer, which from now on
   * carries their Deletes and its DPD vouches for the peer. False when there is no such SA (or nothing to move).
   */
  adopt(from: IsakmpEntry): boolean {
    const to = this.d.table.newest(from);
    if (to === from || !isUp(to) || from.children.length === 0 || !this.samePeer(from, to)) return false;
    const moved = from.children;
    from.children = [];
    to.children = [...to.children, ...moved];
    for (const child of moved) this.d.table.inbound.set(child.sa.spiIn.toString('hex'), { entry: to, child });
    this.d.scheduler.wake(to);
    this.d.scheduler.wake(from);
    return true;
  }

  /** Takes over the live children of the entry's older siblings; the emptied ones are deleted. */
  private adoptSiblings(entry: IsakmpEntry): boolean {
    if (entry.independent || this.d.table.newest(entry) !== entry) return false;
    let moved = false;
    for (const old of [...this.d.table.siblings(entry)]) {
      if (old === entry || !old.children.some((ch) => !ch.rekeyed)) continue;
      if (this.adopt(old)) {
        moved = true;
        this.d.teardown(old, 'replaced by a newer ISAKMP SA', true);
      }
    }
    return moved;
  }

  /**
   * The peer deleted SAs of the connection: with closeAction 'restart' and no live child left (a rekey's
   * Delete of the replaced SA leaves the new one), the connection is brought up again.
   */
  private closed(connection: string): void {
    const c = this.d.policies.find(connection);
    if (c?.closeAction !== 'restart' || this.d.table.currentChild(connection) !== undefined) return;
    this.d.restart(connection);
  }

  /**
   * The ISAKMP SA that holds the child with this SPI: `entry`, or another of the same connection and peer. In
   * IKEv1 a Delete may come on any ISAKMP SA with the peer; after a re-key the peer may have moved the child to
   * its new ISAKMP SA before we did (strongSwan adopts children at once).
   */
  private holder(entry: IsakmpEntry, spi: Buffer): IsakmpEntry {
    const has = (e: IsakmpEntry) => e.children.some((c) => c.sa.spiIn.equals(spi) || c.sa.spiOut.equals(spi));
    if (has(entry) || entry.independent) return entry;
    for (const e of this.d.table.siblings(entry)) if (has(e) && this.samePeer(entry, e)) return e;
    return entry;
  }

  /**
   * Two ISAKMP SAs of one peer, so that children may move between them: siblings (connection and address) of a
   * connection with a fixed remote, authenticated as the same identity. Not for `remote: %any`: clients behind
   * one NAT share an address, and one must never take over (or delete) another's children.
   */
  private samePeer(a: IsakmpEntry, b: IsakmpEntry): boolean {
    if (a.independent || b.independent || a.connection !== b.connection || a.remote.address !== b.remote.address) return false;
    if (this.d.policies.find(a.connection)?.remote === '%any') return false;
    return idToString(a.sa!.remoteId) === idToString(b.sa!.remoteId);
  }

  /** Removes one child SA, found by either of its SPIs; with `notify`, the peer gets a Delete first. */
  down(entry: IsakmpEntry, spi: Buffer, reason: string, notify: boolean): void {
    const child = entry.children.find((c) => c.sa.spiIn.equals(spi)) ?? entry.children.find((c) => c.sa.spiOut.equals(spi));
    if (!child) return;
    if (notify && (isUp(entry) || entry.state === 'closing')) this.d.send(entry, entry.ctx.deleteChildren([child.sa.spiIn]));
    entry.children = entry.children.filter((c) => c !== child);
    this.release(child, true);
    this.d.events.emit('child-down', { connection: entry.connection, spiIn: child.sa.spiIn.toString('hex'), spiOut: child.sa.spiOut.toString('hex'), reason });
    // An ISAKMP SA that a newer one replaced goes once its last child has moved over.
    if (entry.children.length === 0 && isUp(entry) && this.d.table.newest(entry) !== entry) this.d.teardown(entry, 'replaced by a newer ISAKMP SA', true);
  }

  /** Takes back early children (QM3 never came, or the SA goes): their inbound SA stops taking packets. */
  dropEarly(entry: IsakmpEntry, which: (c: Child) => boolean): void {
    const gone = entry.early?.filter(which) ?? [];
    if (gone.length === 0) return;
    entry.early = entry.early!.filter((c) => !which(c));
    for (const child of gone) this.release(child, false);
  }

  /** Responder, QM2 sent: the new child's inbound ESP SA takes packets from now on (see IsakmpEntry.early). */
  private inbound(entry: IsakmpEntry, sa: ChildSa): void {
    const child = newChild(sa, createChildEspSas(sa));
    entry.early = [...(entry.early ?? []), child];
    this.d.table.inbound.set(sa.spiIn.toString('hex'), { entry, child });
    if (this.d.transport.dataplane) this.install(entry, child, [], { outbound: false, inbound: true });
  }

  /** A child's ESP SAs stop: no longer found by SPI, out of the data plane (its outbound only if installed), freed. */
  private release(child: Child, outboundInstalled: boolean): void {
    this.d.table.inbound.delete(child.sa.spiIn.toString('hex'));
    this.d.transport.uninstall(child, outboundInstalled, true);
    child.inbound.destroy?.();
    child.outbound.destroy?.();
  }

  private up(entry: IsakmpEntry, sa: ChildSa): void {
    const c = this.d.policies.find(entry.connection)!;
    // responder: the ESP SAs made at QM2 (inbound()), whose inbound may have taken packets already
    const early = entry.early?.find((e) => e.sa.spiIn.equals(sa.spiIn));
    if (early) entry.early = entry.early!.filter((e) => e !== early);
    // the event hands `sa` itself to the application; the gateway keeps a compact copy for the SA's life
    // (made again: QM3 set the child's establishedAt / expiresAt)
    const child = newChild(sa, early ?? createChildEspSas(sa));
    const replaced = this.replacedBy(entry, sa);
    for (const { owner, old } of replaced) {
      old.rekeyed = true;
      // keep an earlier drop: rekeys closer together than the overlap must not postpone it forever; and an SA
      // replaced close to its end (a responder-side rekey) goes as replaced, not as expired
      old.dropAt ??= Math.min(Date.now() + REKEY_OVERLAP_MS, old.sa.expiresAt);
      this.d.scheduler.wake(owner);
    }
    const spi = sa.spiIn.toString('hex');
    entry.children = [...entry.children, child];
    this.d.table.inbound.set(spi, { entry, child });
    if (this.d.transport.dataplane) this.install(entry, child, replaced.map((r) => r.old), { outbound: true, inbound: early === undefined });
    // its expiry is sa.expiresAt; the rekey (ours to start) a little before
    if (sa.initiator && c.initiate) child.rekeyAt = rekeyTime(sa.lifetimeSeconds);
    else if (!sa.initiator && sa.shorterThanPeer) child.rekeyAt = responderRekeyTime(sa.lifetimeSeconds);
    this.d.scheduler.wake(entry);
    if (c.keylog) for (const l of childKeylog(sa, entry.sa!.local, entry.remote)) this.d.events.emit('keylog', l);
    this.d.events.emit('child-up', {
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
   * The SAs a new child replaces (same connection, same selectors), also on an older ISAKMP SA of the
   * connection: after a phase 1 rekey the children move over.
   */
  private replacedBy(entry: IsakmpEntry, sa: ChildSa): { owner: IsakmpEntry; old: Child }[] {
    const replaced: { owner: IsakmpEntry; old: Child }[] = [];
    if (entry.independent) return replaced;
    const localTs = tsToString(sa.localTs);
    const remoteTs = tsToString(sa.remoteTs);
    for (const owner of this.d.table.siblings(entry)) {
      for (const old of owner.children) {
        if (old.sa.name === sa.name && tsToString(old.sa.localTs) === localTs && tsToString(old.sa.remoteTs) === remoteTs) replaced.push({ owner, old });
      }
    }
    return replaced;
  }

  /**
   * Hands a child's ESP SAs to the data plane. The SAs it replaces stop sending at once (the data plane
   * takes the first outbound SA that matches) but keep receiving until they are deleted.
   */
  private install(entry: IsakmpEntry, child: Child, replaced: Child[], which: { outbound: boolean; inbound: boolean }): void {
    for (const old of replaced) this.d.transport.uninstall(old, true, false);
    try {
      this.d.transport.install(child, { address: entry.remote.address, port: this.peerNattPort(entry) }, which);
    } catch (e) {
      emitError(this.d.events, new IkeError('INTERNAL', `data plane refused child SA ${child.sa.spiIn.toString('hex')}: ${(e as Error).message}`), scopeOf(entry));
    }
  }

  /** Where ESP in UDP goes: the port the peer talks IKE from once floated, else its configured NAT-T port. */
  peerNattPort(entry: IsakmpEntry): number {
    return entry.natt ? entry.remote.port : (this.d.policies.find(entry.connection)?.remoteNattPort ?? 4500);
  }
}
