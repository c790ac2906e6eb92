// Everything that runs on one established ISAKMP SA after phase 1: the Quick Modes in flight (routed by
// message ID), Informational messages in and out, DPD, and the set of message IDs already used (ours
// and the peer's; RFC 2408 3.1 wants them unique per SA). Sans I/O like the rest of ts/ike: the caller
// feeds every datagram with this SA's cookies and a non-zero message ID, and calls onTimer at `timer`.
//
// It can exist before phase 1 completes: strongSwan as initiator sends AM3 and QM1 back to back and the
// QM1 may be handled first. Such early messages are kept (a few, bounded) and processed by establish().
import type { CryptoProvider } from '../crypto/index.js';
import { ExchangeType, IkeAttr, NotifyType, ProtocolId, bytesEqual, parseHeader, parseMessage, type Payload } from '../isakmp/index.js';
import { encodeLifetimeAttributes } from './esp-sa-payload.js';
import { notifyPayload } from './notify.js';
import type { IkeError } from './errors.js';
import {
  Dpd,
  deleteEspPayload,
  deleteIsakmpPayload,
  dpdPayload,
  informationalMessage,
  readInformational,
  type DpdPolicy,
  type InformationalEvent,
} from './informational.js';
import { randomMessageId } from './phase2-crypto.js';
import type { ChildSa, IsakmpSa } from './sa-types.js';
import { QuickMode, type Phase2Host, type Phase2Policy, type QuickModeOutput } from './quick-mode.js';
import { DEFAULT_RETRANSMIT, retransmitTotalMs } from './retransmit.js';

export type Phase2Event =
  | { type: 'childSa'; child: ChildSa }
  /**
   * Responder, QM2 sent: the child SA before QM3 confirms it (the same object `childSa` brings later). The
   * initiator starts sending on it when QM2 arrives: take packets on its inbound direction from now on, send
   * on it only after `childSa`. A `childFailed` with its message ID takes it back.
   */
  | { type: 'childInbound'; child: ChildSa }
  | { type: 'childFailed'; name: string; messageId: number; error: IkeError }
  | { type: 'peerDead'; action: DpdPolicy['action']; idleMs: number }
  | InformationalEvent;

export interface Phase2Output {
  send: Buffer[];
  /**
   * Messages to send a moment after `send` (the caller waits a few tens of ms): the Informational that follows
   * our last phase 1 message. A peer that handles datagrams on several threads (strongSwan) may otherwise take
   * it before that message and drop it as malformed, its phase 1 keys not yet in place.
   */
  later?: Buffer[];
  /** When to call onTimer next (null: nothing scheduled). */
  timer: number | null;
  events: Phase2Event[];
  /** Why datagrams were ignored (for debug logs). */
  dropped: string[];
}

export interface IsakmpSaContextOptions {
  /** The children this connection accepts as responder (traffic selectors + ESP proposals). */
  children: readonly Phase2Policy[];
  /** Dead Peer Detection; only when the peer announced DPD support (IsakmpSa.peerVendorIds.dpd) should the caller set it. */
  dpd?: DpdPolicy;
  /** Phase 2 messages kept while phase 1 is incomplete (default 4). */
  maxEarlyMessages?: number;
  /** Finished exchanges kept to answer retransmissions (default 32), each for as long as the peer may retransmit. */
  keepFinished?: number;
}

const MAX_REMEMBERED_IDS = 8192;
const FEW_IDS = 8;

// A gateway holds one context per ISAKMP SA, and most of them see one Quick Mode in their life: the
// tables below exist only while they have something in them.
export class IsakmpSaContext implements Phase2Host {
  private current: IsakmpSa | null = null;
  /** Exchanges by message ID: those in progress, and finished ones until `finished` lets them go. */
  private exchanges: Map<number, QuickMode> | null = null;
  /**
   * Finished exchanges and until when each is kept: its last answer is re-sent to a peer that repeats its
   * message while the peer may still be retransmitting (its retransmission schedule, taken to be ours).
   * After that the message ID stays in usedIds, so a late copy is dropped as a replay.
   */
  private finished: { id: number; until: number }[] | null = null;
  /** Message IDs used on this SA: a small exact-size array while there are few (most SAs), then a Set. */
  private usedIds: number[] | Set<number> | null = null;
  private early: Buffer[] | null = null;
  private dpd: Dpd | null = null;

  constructor(
    readonly crypto: CryptoProvider,
    sa: IsakmpSa | null,
    readonly options: IsakmpSaContextOptions,
    now = 0,
  ) {
    if (sa !== null) this.start(sa, now);
  }

  get sa(): IsakmpSa {
    if (this.current === null) throw new Error('phase 1 is not complete yet');
    return this.current;
  }

  get established(): boolean {
    return this.current !== null;
  }

  newMessageId(): number {
    for (;;) {
      const id = randomMessageId(this.crypto);
      if (!this.isUsed(id)) {
        this.remember(id);
        return id;
      }
    }
  }

  /** Phase 1 completed: start, then process the phase 2 messages that arrived early. */
  async establish(sa: IsakmpSa, now: number): Promise<Phase2Output> {
    this.start(sa, now);
    const out = this.output();
    // Responder with the shorter phase 1 lifetime: tell the peer (RESPONDER-LIFETIME for the ISAKMP SA, SPI =
    // the cookies, RFC 2407 4.6.3.1), in an Informational of its own as Cisco does; we re-key before it ends.
    if (!sa.initiator && sa.proposal.offeredLifetimeSeconds !== undefined) {
      const data = encodeLifetimeAttributes(sa.proposal.lifetimeSeconds, undefined, { lifeType: IkeAttr.LIFE_TYPE, lifeDuration: IkeAttr.LIFE_DURATION });
      out.later = [this.informational([notifyPayload(NotifyType.RESPONDER_LIFETIME, ProtocolId.ISAKMP, Buffer.concat([sa.cookieI, sa.cookieR]), data)])];
    }
    const queued = this.early ?? [];
    this.early = null;
    for (const m of queued) merge(out, await this.handle(m, now));
    out.timer = this.deadline;
    return out;
  }

  /** Starts a Quick Mode for `policy`. Throws IkeError('POLICY') for an unusable policy. */
  async initiate(policy: Phase2Policy, now: number): Promise<{ messageId: number; out: Phase2Output }> {
    const { quickMode, out } = await QuickMode.initiate(this, policy, now);
    this.keep(quickMode, now);
    return { messageId: quickMode.messageId, out: this.collect(quickMode, out) };
  }

  /** A datagram with this SA's cookies and a non-zero message ID (Quick Mode or Informational). */
  async handle(message: Buffer, now: number): Promise<Phase2Output> {
    const out = this.output();
    if (this.current === null) {
      const h = parseHeader(message);
      const max = this.options.maxEarlyMessages ?? 4;
      const early = (this.early ??= []);
      if (h.ok && h.value.messageId !== 0 && (h.value.exchangeType === ExchangeType.QUICK_MODE || h.value.exchangeType === ExchangeType.INFORMATIONAL) && early.length < max) {
        if (!early.some((m) => m.equals(message))) early.push(Buffer.from(message));
        out.dropped.push('phase 1 incomplete: message queued until it completes');
      } else {
        out.dropped.push('phase 1 incomplete: message dropped');
      }
      return out;
    }
    const sa = this.current;
    const parsed = parseMessage(message);
    if (!parsed.ok) return drop(out, `unparsable: ${parsed.error.message}`, this.deadline);
    if (!('encrypted' in parsed.value)) return drop(out, 'unencrypted message after phase 1 (not authenticated)', this.deadline);
    const { header, encrypted } = parsed.value;
    if (!bytesEqual(header.initiatorCookie, sa.cookieI) || !bytesEqual(header.responderCookie, sa.cookieR)) return drop(out, 'cookies of another ISAKMP SA', this.deadline);
    if (header.messageId === 0) return drop(out, 'message ID 0 belongs to phase 1', this.deadline);
    const mid = header.messageId;
    if (header.exchangeType === ExchangeType.QUICK_MODE) {
      const qm = this.exchanges?.get(mid);
      if (qm !== undefined) {
        const r = await qm.handle(header, encrypted, message, now);
        // A repeat of a message already handled (answered from the cache) proves nothing about the peer
        // being alive today: anyone can replay it. Only a message that moved the exchange counts.
        if (r.dropped === undefined && !r.repeat) this.dpd?.activity(now);
        this.noteFinished(qm, now);
        this.collectInto(out, qm, r);
        out.timer = this.deadline;
        return out;
      }
      if (this.isUsed(mid)) return drop(out, `Quick Mode with a used message ID ${mid}`, this.deadline);
      const { quickMode, out: r } = await QuickMode.respond(this, this.options.children, header, encrypted, message, now);
      if (r.dropped !== undefined) return drop(out, r.dropped, this.deadline);
      this.dpd?.activity(now);
      // A refused QM1 leaves nothing behind, not even its message ID: a retransmission is refused again
      // (re-sending a lost notify), and a copy whose unauthenticated header was altered in transit (e.g.
      // its flags) cannot block the genuine message.
      if (quickMode !== null) {
        this.remember(mid);
        this.keep(quickMode, now);
        if (r.inboundReady) out.events.push({ type: 'childInbound', child: r.inboundReady });
      } else if (r.failed) out.events.push({ type: 'childFailed', name: '', messageId: mid, error: r.failed });
      out.send.push(...r.send);
      out.timer = this.deadline;
      return out;
    }
    if (header.exchangeType === ExchangeType.INFORMATIONAL) {
      if (this.isUsed(mid)) return drop(out, `Informational with a used message ID ${mid} (replay?)`, this.deadline);
      const r = readInformational(this.crypto, sa, header, encrypted);
      if (!r.ok) return drop(out, r.reason, this.deadline);
      this.remember(mid);
      this.dpd?.activity(now);
      for (const e of r.events) {
        if (e.type === 'dpdRequest') {
          out.send.push(this.informational([dpdPayload(sa, true, e.sequence)]));
        } else if (e.type === 'dpdAck') {
          this.dpd?.ack(e.sequence, now);
        } else if (e.type === 'notify' && e.error) {
          const qm = this.refusedExchange(e.spi);
          if (qm) {
            const f = qm.peerRefused(e.notifyType);
            this.noteFinished(qm, now);
            if (f.failed) out.events.push({ type: 'childFailed', name: qm.policy.name, messageId: qm.messageId, error: f.failed });
          }
        }
        out.events.push(e);
      }
      out.timer = this.deadline;
      return out;
    }
    return drop(out, `exchange type ${header.exchangeType} not handled after phase 1`, this.deadline);
  }

  /** Retransmissions, exchange timeouts and DPD. */
  onTimer(now: number): Phase2Output {
    const out = this.output();
    if (this.exchanges !== null) {
      for (const qm of this.exchanges.values()) {
        const d = qm.deadline;
        if (d !== null && d <= now) {
          this.collectInto(out, qm, qm.onTimer(now));
          this.noteFinished(qm, now);
        }
      }
    }
    this.dropFinished(now);
    if (this.dpd !== null && this.current !== null) {
      const d = this.dpd.deadline;
      if (d !== null && d <= now) {
        const step = this.dpd.poll(now);
        if (step.kind === 'probe') out.send.push(this.informational([dpdPayload(this.current, false, step.sequence)]));
        else if (step.kind === 'dead') out.events.push({ type: 'peerDead', action: step.action, idleMs: step.idleMs });
      }
    }
    out.timer = this.deadline;
    return out;
  }

  /** Authenticated traffic from the peer outside IKE (ESP on one of its SAs): DPD need not ask. */
  activity(now: number): void {
    this.dpd?.activity(now);
  }

  /** An encrypted Informational with these payloads (fresh message ID). */
  informational(payloads: readonly Payload[]): Buffer {
    return informationalMessage(this.crypto, this.sa, this.newMessageId(), payloads);
  }

  /** Delete for our inbound ESP SAs (the SPIs we chose). */
  deleteChildren(spisIn: readonly Buffer[]): Buffer {
    return this.informational([deleteEspPayload(spisIn)]);
  }

  /** Delete for this ISAKMP SA. */
  deleteIsakmp(): Buffer {
    return this.informational([deleteIsakmpPayload(this.sa)]);
  }

  get deadline(): number | null {
    let t: number | null = null;
    for (const qm of this.exchanges?.values() ?? []) {
      const d = qm.deadline;
      if (d !== null && (t === null || d < t)) t = d;
    }
    for (const f of this.finished ?? []) if (t === null || f.until < t) t = f.until;
    const d = this.dpd?.deadline ?? null;
    if (d !== null && (t === null || d < t)) t = d;
    return t;
  }

  /** Quick Modes still waiting for a message. */
  get pendingExchanges(): number {
    let n = 0;
    for (const qm of this.exchanges?.values() ?? []) if (qm.pending) n++;
    return n;
  }

  /** Exchanges held: in progress, or finished and still answering repeats (for tests and status). */
  get heldExchanges(): number {
    return this.exchanges?.size ?? 0;
  }

  // ---- internals ----

  private start(sa: IsakmpSa, now: number): void {
    this.current = sa;
    if (this.options.dpd) this.dpd = new Dpd(this.options.dpd, now, this.crypto.randomBytes(4).readUInt32BE(0));
  }

  private isUsed(id: number): boolean {
    const u = this.usedIds;
    return u !== null && (Array.isArray(u) ? u.includes(id) : u.has(id));
  }

  private remember(id: number): void {
    const u = this.usedIds;
    if (u === null || (Array.isArray(u) && u.length < FEW_IDS)) {
      this.usedIds = u === null ? [id] : [...u, id];
      return;
    }
    const used = Array.isArray(u) ? (this.usedIds = new Set(u)) : u;
    used.add(id);
    if (used.size > MAX_REMEMBERED_IDS) used.delete(used.values().next().value!);
  }

  private keep(qm: QuickMode, now: number): void {
    const exchanges = (this.exchanges ??= new Map());
    exchanges.set(qm.messageId, qm);
    this.noteFinished(qm, now);
    const keep = this.options.keepFinished ?? 32;
    let finished = 0;
    for (const q of exchanges.values()) if (!q.pending) finished++;
    for (const [id, q] of exchanges) {
      if (finished <= keep) break;
      if (!q.pending) {
        exchanges.delete(id);
        finished--;
      }
    }
  }

  /** An exchange that has just finished (done or failed) is kept for its peer's retransmission window. */
  private noteFinished(qm: QuickMode, now: number): void {
    if (qm.pending) return;
    const finished = (this.finished ??= []);
    if (finished.some((f) => f.id === qm.messageId)) return;
    finished.push({ id: qm.messageId, until: now + retransmitTotalMs(qm.policy.retransmit ?? DEFAULT_RETRANSMIT) });
  }

  /** Lets go of the finished exchanges whose window has passed (and of the tables once empty). */
  private dropFinished(now: number): void {
    if (this.finished === null) return;
    this.finished = this.finished.filter((f) => {
      if (f.until > now) return true;
      const qm = this.exchanges?.get(f.id);
      if (qm !== undefined && !qm.pending) this.exchanges!.delete(f.id);
      return false;
    });
    if (this.finished.length === 0) this.finished = null;
    if (this.exchanges?.size === 0) this.exchanges = null;
  }

  /** The initiator exchange an error notify refers to: by our SPI, or the only one pending. */
  private refusedExchange(spi: Buffer): QuickMode | undefined {
    const pending = [...(this.exchanges?.values() ?? [])].filter((q) => q.pending && q.initiator);
    return pending.find((q) => spi.length === 4 && q.spiOurs.equals(spi)) ?? (pending.length === 1 && spi.length !== 4 ? pending[0] : undefined);
  }

  private output(): Phase2Output {
    return { send: [], timer: null, events: [], dropped: [] };
  }

  private collect(qm: QuickMode, r: QuickModeOutput): Phase2Output {
    const out = this.output();
    this.collectInto(out, qm, r);
    out.timer = this.deadline;
    return out;
  }

  private collectInto(out: Phase2Output, qm: QuickMode, r: QuickModeOutput): void {
    out.send.push(...r.send);
    if (r.childSa) out.events.push({ type: 'childSa', child: r.childSa });
    if (r.failed) out.events.push({ type: 'childFailed', name: qm.policy.name, messageId: qm.messageId, error: r.failed });
    if (r.dropped) out.dropped.push(r.dropped);
  }
}

function merge(into: Phase2Output, r: Phase2Output): void {
  into.send.push(...r.send);
  into.events.push(...r.events);
  into.dropped.push(...r.dropped);
}

function drop(out: Phase2Output, reason: string, timer: number | null): Phase2Output {
  out.dropped.push(reason);
  out.timer = timer;
  return out;
}

