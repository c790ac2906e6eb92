// Admission of message 1s: which new phase 1 exchanges a responder takes on, decided in O(1) per message
// before anything is parsed or computed. IKEv1 has no cookie exchange (IKEv2's COOKIE notify): the source
// address of a message 1 proves nothing, and Main Mode needs the initiator's SA payload until message 5, so
// every exchange costs a half-open entry. What keeps a flood of forged message 1s from locking peers out:
//
// - a message 1 is cheap: a lookup here, the offer parsed and answered, no DH until message 3 (Main Mode);
// - the half-open table is bounded in total and per source; when full, the oldest exchange whose peer never
//   answered goes (one we started, or whose peer sent message 3, stays);
// - busy mode (strongSwan's block_threshold, Libreswan's DDoS mode): above `busyThreshold` half-open, a
//   source with no established or recent ISAKMP SA gets a smaller per-source limit, and its Aggressive Mode
//   message 1s (a DH each, by protocol) share a small rate; known sources keep the normal limits;
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
  busyAggressivePerSecond: 20,
  recentSeconds: 3600,
};

/** Sources remembered as recent, at most (the oldest forgotten first). */
const MAX_RECENT = 65_536;

export type AdmissionRefusal = 'perPeer' | 'full' | 'busyPerPeer' | 'busyAggressive';

export interface AdmissionStats {
  busy: boolean;
  /** How often busy mode began. */
  busyEntered: number;
  admitted: number;
  /** Half-open exchanges dropped to make room (their peer had never answered). */
  evicted: number;
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
  private tokens: number;
  private tokensAt = 0;
  private readonly counters: AdmissionStats;

  constructor(
    private readonly table: SaTable,
    limits: Partial<AdmissionLimits> = {},
  ) {
    const max = limits.maxHalfOpen ?? DEFAULT_ADMISSION.maxHalfOpen;
    this.limits = { ...DEFAULT_ADMISSION, busyThreshold: Math.floor(max / 2), ...limits };
    this.tokens = this.limits.busyAggressivePerSecond;
    this.counters = { busy: false, busyEntered: 0, admitted: 0, evicted: 0, refused: { perPeer: 0, full: 0, busyPerPeer: 0, busyAggressive: 0 } };
  }

  /**
   * May a message 1 from `address` (of exchange type `exchangeType`) start an exchange? If so, the caller
   * forgets `evict` (if any) and calls `settled(address)` once the exchange is in the table or has failed.
   */
  admit(address: string, exchangeType: number, now: number): Verdict {
    const l = this.limits;
    const total = this.table.halfOpenCount + this.pending;
    const fromSource = this.table.halfOpenFrom(address) + (this.pendingBySource.get(address) ?? 0);
    this.setBusy(total >= l.busyThreshold);
    if (fromSource >= l.maxHalfOpenPerPeer) return this.refuse('perPeer');
    if (this.busyNow && !this.known(address, now)) {
      if (fromSource >= l.busyHalfOpenPerPeer) return this.refuse('busyPerPeer');
      if (exchangeType === ExchangeType.AGGRESSIVE && !this.takeToken(now)) return this.refuse('busyAggressive');
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

  /** A token bucket of busyAggressivePerSecond, holding at most one second's worth. */
  private takeToken(now: number): boolean {
    const rate = this.limits.busyAggressivePerSecond;
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) * rate) / 1000);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
