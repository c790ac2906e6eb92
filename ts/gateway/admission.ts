// Admission of message 1s: which new phase 1 exchanges a responder takes on, decided in O(1) per message
// before anything is parsed or computed. IKEv1 has no cookie exchange (IKEv2's COOKIE notify): the source
// address of a message 1 proves nothing, and Main Mode needs the initiator's SA payload until message 5, so
// every exchange costs a half-open entry. What keeps a flood of forged message 1s from locking peers out:
//
// - a message 1 is cheap: a lookup here, the offer parsed and answered, no DH until message 3 (Main Mode);
// - the half-open table is bounded in total and per source; when full, the oldest exchange whose peer never
//   answered goes (one we started, or whose peer sent message 3, stays);
// - busy mode (strongSwan's block_threshold, Libreswan's DDoS mode): above `busyThreshold` half-open, a
//   source with no established or recent ISAKMP SA gets a smaller per-source limit, its new exchanges share
//   a rate (`busyNewPerSecond`: a flood beyond what the process can answer would otherwise overflow the
//   socket's queue, where the messages 3 and 5 of genuine peers wait behind it), and its Aggressive Mode
//   message 1s (a DH each, by protocol) a smaller one; known sources keep the normal limits;
// - that rate follows the load: when the event loop is saturated (the process cannot keep up, or the host
//   gives it too little CPU), the rate is cut until the queue drains, then grows back to busyNewPerSecond;
// - a genuine initiator repeats an unanswered message 1 with the same cookie, a flood of forged sources
//   does not: a message 1 refused by the busy rate is remembered (source and cookie), and its repeat takes
//   a second rate of its own, which fresh message 1s cannot use up: a peer gets in on its first
//   retransmission even when the flood exceeds the busy rate many times over;
// - retransmissions of a message 1 already admitted match its exchange by cookie and never come here.
// Refusals are counted (status, stats) and never emitted one by one: a flood would flood the log.
import { ExchangeType } from '../isakmp/index.js';
import type { IsakmpEntry, SaTable } from './sa-table.js';

export interface AdmissionLimits {
  /** Half-open phase 1 exchanges in total. */
  maxHalfOpen: number;
  /** Half-open phase 1 exchanges per source address. */
  maxHalfOpenPerPeer: number;
  /** Half-open exchanges from which on the gateway is busy (default: half of maxHalfOpen). */
  busyThreshold: number;
  /** Busy: half-open exchanges per source address with no established or recent ISAKMP SA. */
  busyHalfOpenPerPeer: number;
  /** Busy: new exchanges per second taken from such sources, all together; as many again for their repeats. */
  busyNewPerSecond: number;
  /** Busy: Aggressive Mode message 1s per second taken from such sources, all together (each costs a DH). */
  busyAggressivePerSecond: number;
  /** A source whose ISAKMP SA came up within this many seconds is known (default one hour). */
  recentSeconds: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = {
  maxHalfOpen: 10_000,
  maxHalfOpenPerPeer: 1_000,
  busyThreshold: 5_000,
  busyHalfOpenPerPeer: 2,
  busyNewPerSecond: 2000,
  busyAggressivePerSecond: 20,
  recentSeconds: 3600,
};

/** How often the load is looked at (ms), and the event loop utilisation above which the busy rate is cut. */
const LOAD_PERIOD_MS = 200;
const SATURATED = 0.9;
const RELAXED = 0.7;
const MIN_NEW_PER_SECOND = 20;

/** Sources remembered as recent, and message 1s refused while busy, at most (the oldest forgotten first). */
const MAX_RECENT = 65_536;
const MAX_REFUSED = 65_536;

export type AdmissionRefusal = 'perPeer' | 'full' | 'busyPerPeer' | 'busyRate' | 'busyAggressive';

export interface AdmissionStats {
  busy: boolean;
  /** How often busy mode began. */
  busyEntered: number;
  admitted: number;
  /** Half-open exchanges dropped to make room (their peer had never answered). */
  evicted: number;
  /** Busy: repeats of a refused message 1 admitted by their own rate. */
  repeatsAdmitted: number;
  /** Busy: the rate of new exchanges from unknown sources now (busyNewPerSecond, or less under load). */
  newPerSecond: number;
  refused: Record<AdmissionRefusal, number>;
}

export type Verdict = { admit: true; evict: IsakmpEntry | null } | { admit: false; reason: AdmissionRefusal };

export class Admission {
  readonly limits: AdmissionLimits;
  /** Source address -> until when it counts as recent (ms), oldest first. */
  private readonly recent = new Map<string, number>();
  /** Admitted message 1s whose exchange is still being made (an Aggressive Mode DH): counted as half-open. */
  private pending = 0;
  private readonly pendingBySource = new Map<string, number>();
  private busyNow = false;
  private readonly newExchanges: TokenBucket;
  private readonly repeats: TokenBucket;
  private readonly aggressive: TokenBucket;
  /** Busy: message 1s refused by the rate, by source and initiator cookie, oldest first. */
  private readonly refused = new Map<string, true>();
  private readonly counters: AdmissionStats;
  private loadAt = 0;

  /**
   * `load()`: the event loop's utilisation (0-1) since the last call (the gateway's is performance's
   * eventLoopUtilization); without it the busy rate stays at busyNewPerSecond.
   */
  constructor(
    private readonly table: SaTable,
    limits: Partial<AdmissionLimits> = {},
    private readonly load?: () => number,
  ) {
    const max = limits.maxHalfOpen ?? DEFAULT_ADMISSION.maxHalfOpen;
    this.limits = { ...DEFAULT_ADMISSION, busyThreshold: Math.floor(max / 2), ...limits };
    this.newExchanges = new TokenBucket(this.limits.busyNewPerSecond);
    this.repeats = new TokenBucket(this.limits.busyNewPerSecond);
    this.aggressive = new TokenBucket(this.limits.busyAggressivePerSecond);
    const refused = { perPeer: 0, full: 0, busyPerPeer: 0, busyRate: 0, busyAggressive: 0 };
    this.counters = { busy: false, busyEntered: 0, admitted: 0, evicted: 0, repeatsAdmitted: 0, newPerSecond: this.limits.busyNewPerSecond, refused };
  }

  /**
   * May a message 1 (`message`, its ISAKMP header parsed) from `address` start an exchange? If so, the
   * caller forgets `evict` (if any) and calls `settled(address)` once the exchange is in the table or failed.
   */
  admit(address: string, message: Uint8Array, now: number): Verdict {
    const l = this.limits;
    const total = this.table.halfOpenCount + this.pending;
    const fromSource = this.table.halfOpenFrom(address) + (this.pendingBySource.get(address) ?? 0);
    this.setBusy(total >= l.busyThreshold);
    if (fromSource >= l.maxHalfOpenPerPeer) return this.refuse('perPeer');
    if (this.busyNow && !this.known(address, now)) {
      if (fromSource >= l.busyHalfOpenPerPeer) return this.refuse('busyPerPeer');
      this.followLoad(now);
      const refusal = this.busyRate(address, message, now);
      if (refusal !== null) return this.refuse(refusal);
    }
    let evict: IsakmpEntry | null = null;
    if (total >= l.maxHalfOpen) {
      evict = this.table.oldestUnproven() ?? null;
      if (evict === null) return this.refuse('full');
      this.counters.evicted++;
    }
    this.counters.admitted++;
    this.pending++;
    this.pendingBySource.set(address, (this.pendingBySource.get(address) ?? 0) + 1);
    return { admit: true, evict };
  }

  /** The admitted exchange is in the table (or came to nothing): it no longer counts as pending. */
  settled(address: string): void {
    this.pending--;
    const n = (this.pendingBySource.get(address) ?? 1) - 1;
    if (n > 0) this.pendingBySource.set(address, n);
    else this.pendingBySource.delete(address);
  }

  /** An ISAKMP SA with this source came up: it is known for `recentSeconds`, also after the SA is gone. */
  established(address: string, now: number): void {
    this.recent.delete(address);
    this.recent.set(address, now + this.limits.recentSeconds * 1000);
    if (this.recent.size > MAX_RECENT) this.recent.delete(this.recent.keys().next().value!);
  }

  /** A source with an established ISAKMP SA, or one that had one recently. */
  known(address: string, now: number): boolean {
    if (this.table.upFrom(address) > 0) return true;
    const until = this.recent.get(address);
    return until !== undefined && until > now;
  }

  /** Cuts the busy rate while the event loop is saturated, lets it grow back when it is not (AIMD-like). */
  private followLoad(now: number): void {
    if (this.load === undefined || now - this.loadAt < LOAD_PERIOD_MS) return;
    const first = this.loadAt === 0;
    this.loadAt = now;
    const u = this.load();
    if (first) return; // the first reading covers the time before the flood
    const max = this.limits.busyNewPerSecond;
    let rate = this.counters.newPerSecond;
    if (u > SATURATED) rate = Math.max(Math.min(MIN_NEW_PER_SECOND, max), Math.floor(rate * 0.7));
    else if (u < RELAXED) rate = Math.min(max, Math.ceil(rate * 1.2 + 10));
    if (rate === this.counters.newPerSecond) return;
    this.counters.newPerSecond = rate;
    this.newExchanges.rate = rate;
    this.repeats.rate = rate;
  }

  /** Busy, a source not known: the rates for new exchanges, for repeats of refused ones, for Aggressive Mode. */
  private busyRate(address: string, message: Uint8Array, now: number): AdmissionRefusal | null {
    // the exchange type is octet 18 of the ISAKMP header (RFC 2408 3.1); the initiator cookie octets 0-7
    if (message[18] === ExchangeType.AGGRESSIVE && !this.aggressive.take(now)) return 'busyAggressive';
    const key = `${address} ${cookieWord(message, 0)} ${cookieWord(message, 4)}`;
    if (this.refused.delete(key)) {
      if (this.repeats.take(now)) {
        this.counters.repeatsAdmitted++;
        return null;
      }
    } else if (this.newExchanges.take(now)) return null;
    this.refused.set(key, true);
    if (this.refused.size > MAX_REFUSED) this.refused.delete(this.refused.keys().next().value!);
    return 'busyRate';
  }

  get busy(): boolean {
    return this.busyNow;
  }

  stats(): AdmissionStats {
    return { ...this.counters, busy: this.busyNow, refused: { ...this.counters.refused } };
  }

  private setBusy(busy: boolean): void {
    if (busy && !this.busyNow) this.counters.busyEntered++;
    this.busyNow = busy;
  }

  private refuse(reason: AdmissionRefusal): Verdict {
    this.counters.refused[reason]++;
    return { admit: false, reason };
  }

}

/** Four octets of the initiator cookie as a number (no Buffer view, no hex string: this runs per datagram). */
function cookieWord(m: Uint8Array, at: number): number {
  return ((m[at]! << 24) | (m[at + 1]! << 16) | (m[at + 2]! << 8) | m[at + 3]!) >>> 0;
}

/** `rate` tokens a second, holding at most one second's worth. */
class TokenBucket {
  private tokens: number;
  private at = 0;

  constructor(public rate: number) {
    this.tokens = rate;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
