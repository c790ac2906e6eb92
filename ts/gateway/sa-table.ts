// The SA table: ISAKMP SAs (and exchanges on their way to one) by initiator cookie, child SAs by inbound SPI,
// each ISAKMP SA with an explicit lifecycle:
//
//   half-open --(phase 1 complete)--> established --(teardown)--> closing --> closed
//        \______________________________(failure, eviction, teardown)_______/
//
// Every continuation that resumes after an `await` (a DH on the thread pool, a Quick Mode's KEYMAT) asks
// `alive(entry)` before it sends, emits or installs anything: an SA deleted, replaced or stopped meanwhile
// is `closed` and is no longer the table's entry for its cookie.
import type { EspSa } from '../esp/index.js';
import {
  retainChildSa,
  type ChildSa,
  type DpdPolicy,
  type Endpoint,
  type IsakmpSa,
  type IsakmpSaContext,
  type Phase1,
  type Phase2Policy,
  type RemoteAccessClient,
  type RemoteAccessServer,
  type RetainedChildSa,
} from '../ike/index.js';
import type { Scheduled } from './deadlines.js';

export type SaState = 'half-open' | 'established' | 'closing' | 'closed';

export interface Child {
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

/** One ISAKMP SA as the gateway keeps it. Its deadlines all live in the scheduler's one heap (wakeAt). */
export interface IsakmpEntry extends Scheduled {
  /** Initiator cookie (hex): this entry's key in the table. */
  readonly key: string;
  state: SaState;
  /** When the exchange began (ms): phase1-up reports the setup time from it. */
  readonly startedAt: number;
  /**
   * The phase 1 exchange: until it completes, then for a grace period in which the peer may repeat its last
   * message and get our cached answer; then dropped, `sa` being all that is needed.
   */
  phase1: Phase1 | null;
  /** The ISAKMP SA, once phase 1 is complete. */
  sa: IsakmpSa | null;
  readonly ctx: IsakmpSaContext;
  /** Filled when phase 1 completes (the PFS group and the peer's DPD support are known only then). */
  readonly ctxOptions: { children: Phase2Policy[]; dpd?: DpdPolicy };
  readonly connection: string;
  remote: Endpoint;
  /** Talking on the NAT-T port (floated, or the peer came there). */
  natt: boolean;
  /** Phase 1: its retransmission, then the end of the grace period. */
  phase1Due: number | null;
  /** The phase 2 context's own deadline (Quick Mode retransmission, DPD). */
  ctxDue: number | null;
  /** The remote-access exchange's retransmission. */
  raDue: number | null;
  /** The next NAT keepalive. */
  keepaliveAt: number | null;
  /** When we start a new ISAKMP SA to replace this one (we initiated it); its expiry is sa.expiresAt. */
  rekeyAt: number | null;
  /** A delete decided for later (XAUTH failure), and why. */
  dropAt: number | null;
  dropReason: string;
  /**
   * Its child SAs, replaced (never changed in place) when one comes or goes: an exact-size array, where a Map
   * would cost some 250 bytes for the one or two children an SA has.
   */
  children: readonly Child[];
  /**
   * Responder: children whose QM2 went out and whose QM3 has not come yet. Their inbound direction already
   * takes packets (the initiator sends on a new child as soon as QM2 arrives); nothing is sent on them.
   */
  early: Child[] | null;
  /** We started this ISAKMP SA to bring a child up (not to replace an expiring ISAKMP SA). */
  wantChild: boolean;
  /** NAT keepalives sent on this ISAKMP SA's behalf. */
  keepalives: number;
  /**
   * Started with `independent` (load testing) or of a connection with `unique: 'never'`: never replaces, nor is
   * replaced by, another SA of its connection.
   */
  independent: boolean;
  /** XAUTH / Mode-Config on this ISAKMP SA (connections with `xauth` or `modeConfig`). */
  ra: RemoteAccessServer | RemoteAccessClient | null;
  /** Client: the address Mode-Config gave us, our side of every Quick Mode. */
  virtualIp: string | null;
}

export function newEntry(phase1: Phase1, ctx: IsakmpSaContext, ctxOptions: IsakmpEntry['ctxOptions'], connection: string, remote: Endpoint, natt: boolean, independent: boolean): IsakmpEntry {
  return {
    key: phase1.cookieI.toString('hex'),
    state: 'half-open',
    startedAt: Date.now(),
    phase1,
    sa: null,
    ctx,
    ctxOptions,
    connection,
    remote,
    natt,
    wakeAt: Infinity,
    heapIndex: -1,
    phase1Due: null,
    ctxDue: null,
    raDue: null,
    keepaliveAt: null,
    rekeyAt: null,
    dropAt: null,
    dropReason: '',
    children: [],
    early: null,
    wantChild: false,
    keepalives: 0,
    independent,
    ra: null,
    virtualIp: null,
  };
}

/** A child as the gateway keeps it: a compact copy of the SA, its ESP SAs, nothing scheduled yet. */
export function newChild(sa: ChildSa, esp: { inbound: EspSa; outbound: EspSa }): Child {
  return { sa: retainChildSa(sa), inbound: esp.inbound, outbound: esp.outbound, rekeyAt: null, dropAt: null, rekeyed: false };
}

export function isUp(entry: IsakmpEntry): boolean {
  return entry.state === 'established';
}

export class SaTable {
  private readonly sas = new Map<string, IsakmpEntry>();
  /** The entries whose phase 1 is not complete, oldest first. */
  private readonly halfOpen = new Map<string, IsakmpEntry>();
  /**
   * Responder exchanges whose peer has not answered our first message yet, oldest first: the source address
   * of their message 1 may be forged, and they cost us nothing but memory, so a full table drops these first
   * (and only these). The ones we started, and those whose peer proved it receives at its address, stay.
   */
  private readonly unproven = new Map<string, IsakmpEntry>();
  /**
   * Per source address, its half-open exchanges and its established ISAKMP SAs: the admission limits read
   * them in O(1) for every message 1 (a scan of the half-open table per message 1 made a flood cost ~0.5 ms
   * a message at 10,000 half-open).
   */
  private readonly halfOpenBySource = new Map<string, number>();
  private readonly upBySource = new Map<string, number>();
  /** Established entries (until removed), in the order they came up. */
  private readonly upEntries = new Set<IsakmpEntry>();
  /**
   * The same per connection and peer address (an entry's address never changes, only its port): siblings()
   * and newest() read a few entries instead of scanning every SA, which made each setup O(SAs) under load.
   */
  private readonly upByPeer = new Map<string, Set<IsakmpEntry>>();
  /** Inbound child SAs by SPI (hex), for ESP arriving on the NAT-T socket. */
  readonly inbound = new Map<string, { entry: IsakmpEntry; child: Child }>();

  /** Per connection, the last `delete(connection)` (a sequence number): exchanges still being created check it. */
  private readonly deletions = new Map<string, number>();
  private sequence = 0;

  get(key: string): IsakmpEntry | undefined {
    return this.sas.get(key);
  }

  /** Still half-open or established, and still the table's entry for its cookie. */
  alive(entry: IsakmpEntry): boolean {
    return (entry.state === 'half-open' || entry.state === 'established') && this.sas.get(entry.key) === entry;
  }

  /**
   * A mark to take before creating an exchange that awaits (a DH on the thread pool) before it has an entry:
   * `deletedSince(connection, mark)` then says whether the connection was deleted meanwhile.
   */
  mark(): number {
    return this.sequence;
  }

  noteDeleted(connection: string): void {
    this.deletions.set(connection, ++this.sequence);
  }

  deletedSince(connection: string, mark: number): boolean {
    return (this.deletions.get(connection) ?? 0) > mark;
  }

  /**
   * A new half-open exchange (`unproven`: a responder's, its peer not yet heard from again); false when its
   * cookie is taken (a repeated message 1 that raced the first).
   */
  add(entry: IsakmpEntry, unproven = false): boolean {
    if (this.sas.has(entry.key)) return false;
    this.sas.set(entry.key, entry);
    this.halfOpen.set(entry.key, entry);
    if (unproven) this.unproven.set(entry.key, entry);
    bump(this.halfOpenBySource, entry.remote.address, 1);
    return true;
  }

  /** The peer answered our first message: it receives at its address; no longer the first to be dropped. */
  proven(entry: IsakmpEntry): void {
    if (this.unproven.get(entry.key) === entry) this.unproven.delete(entry.key);
  }

  established(entry: IsakmpEntry): void {
    entry.state = 'established';
    this.leaveHalfOpen(entry);
    if (!this.upEntries.has(entry)) {
      this.upEntries.add(entry);
      bump(this.upBySource, entry.remote.address, 1);
      const k = peerKey(entry);
      const set = this.upByPeer.get(k);
      if (set) set.add(entry);
      else this.upByPeer.set(k, new Set([entry]));
    }
  }

  /** Out of the table for good: `closed`, whatever it was. */
  remove(entry: IsakmpEntry): void {
    entry.state = 'closed';
    if (this.sas.get(entry.key) === entry) this.sas.delete(entry.key);
    this.leaveHalfOpen(entry);
    if (this.upEntries.delete(entry)) {
      bump(this.upBySource, entry.remote.address, -1);
      const k = peerKey(entry);
      const set = this.upByPeer.get(k);
      if (set?.delete(entry) && set.size === 0) this.upByPeer.delete(k);
    }
  }

  private leaveHalfOpen(entry: IsakmpEntry): void {
    if (this.halfOpen.get(entry.key) !== entry) return;
    this.halfOpen.delete(entry.key);
    this.proven(entry);
    bump(this.halfOpenBySource, entry.remote.address, -1);
  }

  /** Half-open exchanges with this source address. */
  halfOpenFrom(address: string): number {
    return this.halfOpenBySource.get(address) ?? 0;
  }

  /** Established ISAKMP SAs with this source address. */
  upFrom(address: string): number {
    return this.upBySource.get(address) ?? 0;
  }

  get halfOpenCount(): number {
    return this.halfOpen.size;
  }

  /** The oldest exchange whose peer never answered: what a full table drops to make room. */
  oldestUnproven(): IsakmpEntry | undefined {
    for (const e of this.unproven.values()) return e;
    return undefined;
  }

  values(): IterableIterator<IsakmpEntry> {
    return this.sas.values();
  }

  /** Established ISAKMP SAs. */
  *up(): IterableIterator<IsakmpEntry> {
    for (const e of this.upEntries) if (e.state === 'established') yield e;
  }

  /** Established ISAKMP SAs of this connection with this peer address, independent ones included. */
  *withPeer(connection: string, address: string): IterableIterator<IsakmpEntry> {
    const set = this.upByPeer.get(`${connection}\n${address}`);
    if (set) for (const e of set) if (e.state === 'established') yield e;
  }

  /** The established SAs that share the connection and peer of `entry` (itself included), unless independent. */
  *siblings(entry: IsakmpEntry): IterableIterator<IsakmpEntry> {
    for (const e of this.withPeer(entry.connection, entry.remote.address)) if (!e.independent) yield e;
  }

  /** The newest established ISAKMP SA of a connection with this peer: where new Quick Modes go. */
  newest(entry: IsakmpEntry): IsakmpEntry {
    if (entry.independent) return entry;
    let best = entry;
    for (const e of this.siblings(entry)) if (e.sa!.establishedAt > (best.sa?.establishedAt ?? -Infinity)) best = e;
    return best;
  }

  /** The connection's child SA that sends now: the newest not replaced by a rekey. */
  currentChild(connection: string): { entry: IsakmpEntry; child: Child } | undefined {
    for (const entry of this.up()) {
      if (entry.connection !== connection) continue;
      const live = entry.children.filter((c) => !c.rekeyed);
      if (live.length > 0) return { entry, child: live[live.length - 1]! };
    }
    return undefined;
  }

  counts(): { halfOpen: number; phase1: number; children: number } {
    let phase1 = 0;
    let children = 0;
    for (const e of this.sas.values()) {
      if (e.state === 'established') phase1++;
      children += e.children.length;
    }
    return { halfOpen: this.halfOpen.size, phase1, children };
  }
}

const peerKey = (e: IsakmpEntry) => `${e.connection}\n${e.remote.address}`;

function bump(counts: Map<string, number>, address: string, by: number): void {
  const n = (counts.get(address) ?? 0) + by;
  if (n > 0) counts.set(address, n);
  else counts.delete(address);
}

/** The entry as an 'error' event names it. */
export function scopeOf(entry: IsakmpEntry): { connection: string; remote: Endpoint; cookieI: string; ours: boolean } {
  return { connection: entry.connection, remote: entry.remote, cookieI: entry.key, ours: entry.sa?.initiator ?? entry.phase1?.initiator ?? false };
}
