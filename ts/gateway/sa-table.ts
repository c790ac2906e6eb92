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
  /** Started with `independent` (load testing): never replaces, nor is replaced by, another SA of its connection. */
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
  /**
   * The entries whose phase 1 is not complete, oldest first: the half-open limits look at these alone (a
   * scan of every SA per message 1 would make setting up N SAs cost N^2).
   */
  private readonly halfOpen = new Map<string, IsakmpEntry>();
  /** Inbound child SAs by SPI (hex), for ESP arriving on the NAT-T socket. */
  readonly inbound = new Map<string, { entry: IsakmpEntry; child: Child }>();

  /** Per connection, the last `delete(connection)` (a sequence number): exchanges still being created check it. */
  private readonly deletions = new Map<string, number>();
  private sequence = 0;

  constructor(private readonly limits: { maxHalfOpen: number; maxHalfOpenPerPeer: number }) {}

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

  /** A new half-open exchange; false when its cookie is taken (a repeated message 1 that raced the first). */
  add(entry: IsakmpEntry): boolean {
    if (this.sas.has(entry.key)) return false;
    this.sas.set(entry.key, entry);
    this.halfOpen.set(entry.key, entry);
    return true;
  }

  established(entry: IsakmpEntry): void {
    entry.state = 'established';
    this.halfOpen.delete(entry.key);
  }

  /** Out of the table for good: `closed`, whatever it was. */
  remove(entry: IsakmpEntry): void {
    entry.state = 'closed';
    if (this.sas.get(entry.key) === entry) this.sas.delete(entry.key);
    if (this.halfOpen.get(entry.key) === entry) this.halfOpen.delete(entry.key);
  }

  values(): IterableIterator<IsakmpEntry> {
    return this.sas.values();
  }

  /** Established ISAKMP SAs. */
  *up(): IterableIterator<IsakmpEntry> {
    for (const e of this.sas.values()) if (e.state === 'established') yield e;
  }

  /** The established SAs that share the connection and peer of `entry` (itself included), unless independent. */
  *siblings(entry: IsakmpEntry): IterableIterator<IsakmpEntry> {
    for (const e of this.up()) {
      if (!e.independent && e.connection === entry.connection && e.remote.address === entry.remote.address) yield e;
    }
  }

  /**
   * Half-open limits: a flood of message 1s cannot grow the table without bound; the oldest go first.
   * Returns the entries to drop to make room for one more from `address`.
   */
  evictionsFor(address: string): IsakmpEntry[] {
    const out: IsakmpEntry[] = [];
    // halfOpen is in creation order: the first match is the oldest
    let perPeer = 0;
    let oldestOfPeer: IsakmpEntry | undefined;
    for (const e of this.halfOpen.values()) {
      if (e.remote.address !== address) continue;
      perPeer++;
      oldestOfPeer ??= e;
    }
    if (oldestOfPeer && perPeer >= this.limits.maxHalfOpenPerPeer) out.push(oldestOfPeer);
    let size = this.halfOpen.size - out.length;
    for (const e of this.halfOpen.values()) {
      if (size < this.limits.maxHalfOpen) break;
      if (e === oldestOfPeer && out.length > 0) continue;
      out.push(e);
      size--;
    }
    return out;
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

/** The entry as an 'error' event names it. */
export function scopeOf(entry: IsakmpEntry): { connection: string; remote: Endpoint; cookieI: string } {
  return { connection: entry.connection, remote: entry.remote, cookieI: entry.key };
}
