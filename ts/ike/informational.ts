// The Informational exchange after phase 1 (RFC 2408 4.8, RFC 2409 5.7): one encrypted message
//   HDR*, HASH(1), N/D      HASH(1) = prf(SKEYID_a, M-ID | N/D)
// with its own message ID and IV. Carries Delete (ISAKMP or ESP SAs), notifies (errors,
// INITIAL-CONTACT) and Dead Peer Detection (RFC 3706: R-U-THERE / R-U-THERE-ACK). Nothing here keeps
// state; `Dpd` is the small timer/sequence-number helper for RFC 3706.
import type { CryptoProvider } from '../crypto/index.js';
import { ExchangeType, Flags, NotifyType, PayloadType, ProtocolId, type DeletePayload, type IsakmpHeader, type NotifyPayload, type Payload } from '../isakmp/index.js';
import { notifyName, notifyPayload } from './notify.js';
import { hash1, hash1Equals, openProtected, phase2Iv, sealProtected } from './phase2-crypto.js';
import type { Phase2Keys } from './sa-types.js';

export { notifyName, notifyPayload } from './notify.js';

export type InformationalEvent =
  /** The peer deleted SAs: protocol 1 = the ISAKMP SA itself (spis = [CKY-I | CKY-R]), 3 = ESP SAs (their inbound SPIs, our outbound). */
  | { type: 'delete'; protocol: number; spis: Buffer[] }
  /** RFC 2407 4.6.3.3: the peer has just (re)started; it holds no other SA with us. */
  | { type: 'initialContact' }
  /** R-U-THERE: answer with dpdAckMessage(sequence) (IsakmpSaContext does it). */
  | { type: 'dpdRequest'; sequence: number }
  | { type: 'dpdAck'; sequence: number }
  /** Any other notify; `error` for types below 8192 (RFC 2408 3.14.1). */
  | { type: 'notify'; notifyType: number; name: string; error: boolean; protocolId: number; spi: Buffer; data: Buffer };

/** Builds one Informational message with a fresh message ID the caller chose (unique on the ISAKMP SA). */
export function informationalMessage(crypto: CryptoProvider, sa: Phase2Keys, messageId: number, payloads: readonly Payload[]): Buffer {
  const iv = phase2Iv(crypto, sa, messageId);
  return sealProtected(crypto, sa, ExchangeType.INFORMATIONAL, messageId, iv, payloads, (rest) => hash1(crypto, sa, messageId, rest)).message;
}

function isakmpSpi(sa: Pick<Phase2Keys, 'cookieI' | 'cookieR'>): Buffer {
  return Buffer.concat([sa.cookieI, sa.cookieR]);
}

/** Delete of the ISAKMP SA itself: protocol ISAKMP, SPI size 16, SPI = CKY-I | CKY-R. */
export function deleteIsakmpPayload(sa: Pick<Phase2Keys, 'cookieI' | 'cookieR'>): DeletePayload {
  return { type: PayloadType.DELETE, doi: 1, protocolId: ProtocolId.ISAKMP, spiSize: 16, spis: [isakmpSpi(sa)] };
}

/** Delete of ESP SAs: the SPIs are our INBOUND SPIs (the ones the peer sends to), RFC 2408 3.15. */
export function deleteEspPayload(spis: readonly Buffer[]): DeletePayload {
  for (const s of spis) if (s.length !== 4) throw new RangeError('an ESP SPI is 4 bytes');
  return { type: PayloadType.DELETE, doi: 1, protocolId: ProtocolId.IPSEC_ESP, spiSize: 4, spis: [...spis] };
}

export function initialContactPayload(sa: Pick<Phase2Keys, 'cookieI' | 'cookieR'>): NotifyPayload {
  return notifyPayload(NotifyType.INITIAL_CONTACT, ProtocolId.ISAKMP, isakmpSpi(sa));
}

/** R-U-THERE / R-U-THERE-ACK (RFC 3706 5): protocol ISAKMP, SPI = CKY-I | CKY-R, data = 32-bit sequence number. */
export function dpdPayload(sa: Pick<Phase2Keys, 'cookieI' | 'cookieR'>, ack: boolean, sequence: number): NotifyPayload {
  const data = Buffer.allocUnsafe(4);
  data.writeUInt32BE(sequence >>> 0, 0);
  return notifyPayload(ack ? NotifyType.R_U_THERE_ACK : NotifyType.R_U_THERE, ProtocolId.ISAKMP, isakmpSpi(sa), data);
}

export type ReadInformational = { ok: true; events: InformationalEvent[] } | { ok: false; reason: string };

/**
 * Authenticates and reads an Informational message (already split by parseMessage). A message that is not
 * encrypted, has other cookies, or whose HASH(1) does not verify gives { ok: false } and no event: an
 * unauthenticated notify or delete must change nothing.
 */
export function readInformational(crypto: CryptoProvider, sa: Phase2Keys, header: IsakmpHeader, body: Buffer): ReadInformational {
  if (header.exchangeType !== ExchangeType.INFORMATIONAL) return { ok: false, reason: 'not an Informational exchange' };
  if (!header.initiatorCookie.equals(sa.cookieI) || !header.responderCookie.equals(sa.cookieR)) return { ok: false, reason: 'cookies of another ISAKMP SA' };
  if ((header.flags & Flags.ENCRYPTION) === 0) return { ok: false, reason: 'unencrypted Informational after phase 1 (ignored: not authenticated)' };
  if (header.messageId === 0) return { ok: false, reason: 'Informational with message ID 0' };
  const o = openProtected(crypto, sa, header, body, phase2Iv(crypto, sa, header.messageId));
  if (!o.ok) return { ok: false, reason: `Informational ${o.reason}` };
  if (!hash1Equals(crypto, sa, header.messageId, o.restBytes, o.hash)) {
    return { ok: false, reason: 'Informational HASH(1) does not verify' };
  }
  // An Informational carries Notify and Delete payloads (RFC 2408 4.8); anything else is another exchange
  // relabelled in the unauthenticated header (HASH(1) is computed the same way for a Quick Mode message 1), and
  // accepting it would burn that exchange's message ID.
  const other = o.rest.find((p) => p.type !== PayloadType.NOTIFICATION && p.type !== PayloadType.DELETE);
  if (other !== undefined) return { ok: false, reason: `Informational carrying a payload of type ${other.type} (not Notify or Delete)` };
  const events: InformationalEvent[] = [];
  const ours = isakmpSpi(sa);
  for (const p of o.rest) {
    if (p.type === PayloadType.DELETE) {
      if (p.protocolId === ProtocolId.ISAKMP) {
        // Only a delete naming this very SA counts (a stray one for another SA is ignored).
        if (p.spiSize === 16 && p.spis.some((s) => s.equals(ours))) events.push({ type: 'delete', protocol: ProtocolId.ISAKMP, spis: [Buffer.from(ours)] });
      } else if ((p.protocolId === ProtocolId.IPSEC_ESP || p.protocolId === ProtocolId.IPSEC_AH) && p.spiSize === 4 && p.spis.length > 0) {
        events.push({ type: 'delete', protocol: p.protocolId, spis: p.spis.map((s) => Buffer.from(s)) });
      }
    } else if (p.type === PayloadType.NOTIFICATION) {
      if (p.notifyType === NotifyType.R_U_THERE || p.notifyType === NotifyType.R_U_THERE_ACK) {
        // RFC 3706 5.3: the SPI is the cookie pair, the data the sequence number; anything else is ignored.
        if (p.data.length !== 4 || (p.spi.length === 16 && !p.spi.equals(ours))) continue;
        const sequence = p.data.readUInt32BE(0);
        events.push(p.notifyType === NotifyType.R_U_THERE ? { type: 'dpdRequest', sequence } : { type: 'dpdAck', sequence });
      } else if (p.notifyType === NotifyType.INITIAL_CONTACT) {
        events.push({ type: 'initialContact' });
      } else {
        events.push({
          type: 'notify',
          notifyType: p.notifyType,
          name: notifyName(p.notifyType),
          error: p.notifyType < 8192,
          protocolId: p.protocolId,
          spi: Buffer.from(p.spi),
          data: Buffer.from(p.data),
        });
      }
    }
  }
  return { ok: true, events };
}

// ---- Dead Peer Detection (RFC 3706) ----

export interface DpdPolicy {
  /** Idle time after which we ask R-U-THERE (strongSwan dpd_delay, default 30 s), and the interval between probes. */
  delayMs: number;
  /** No sign of life for this long while probing: the peer is dead (strongSwan dpd_timeout, default 150 s). */
  timeoutMs: number;
  /** What the caller should do with a dead peer's SAs (reported in the event; the caller acts). */
  action: 'clear' | 'restart' | 'hold';
}

export type DpdStep =
  | { kind: 'probe'; sequence: number }
  | { kind: 'dead'; action: DpdPolicy['action']; idleMs: number }
  | { kind: 'none' };

/**
 * RFC 3706 in "on idle" style: only when the peer has been silent for `delayMs` do we send R-U-THERE,
 * then one more every `delayMs` (each with the next sequence number, 5.5); an ACK or any authenticated
 * traffic ends the probing. Silence for `timeoutMs` while probing declares the peer dead, once.
 */
export class Dpd {
  private lastActivity: number;
  private sequence: number;
  /** Sequence numbers of the probes that are still unanswered. */
  private outstanding: number[] = [];
  private nextProbeAt: number;
  private dead = false;

  constructor(
    readonly policy: DpdPolicy,
    now: number,
    /** Initial sequence number; RFC 3706 5.5 suggests a random one (the caller draws it). */
    initialSequence: number,
  ) {
    this.lastActivity = now;
    this.sequence = (initialSequence >>> 0) & 0x7fffffff; // leaves room to count up without wrapping soon
    this.nextProbeAt = now + policy.delayMs;
  }

  /** Authenticated traffic from the peer (an IKE message, or ESP on one of its SAs). */
  activity(now: number): void {
    if (this.dead) return;
    this.lastActivity = Math.max(this.lastActivity, now);
    this.outstanding = [];
    this.nextProbeAt = this.lastActivity + this.policy.delayMs;
  }

  /** An R-U-THERE-ACK arrived: true if it answers one of our probes (then it counts as activity). */
  ack(sequence: number, now: number): boolean {
    if (!this.outstanding.includes(sequence >>> 0)) return false;
    this.activity(now);
    return true;
  }

  /** What to do at `now`; call it at `deadline`. */
  poll(now: number): DpdStep {
    if (this.dead) return { kind: 'none' };
    if (this.outstanding.length > 0 && now - this.lastActivity >= this.policy.timeoutMs) {
      this.dead = true;
      return { kind: 'dead', action: this.policy.action, idleMs: now - this.lastActivity };
    }
    if (now < this.nextProbeAt) return { kind: 'none' };
    this.sequence = (this.sequence + 1) >>> 0;
    this.outstanding.push(this.sequence);
    if (this.outstanding.length > 16) this.outstanding.shift();
    this.nextProbeAt = now + this.policy.delayMs;
    return { kind: 'probe', sequence: this.sequence };
  }

  get deadline(): number | null {
    if (this.dead) return null;
    return this.outstanding.length > 0 ? Math.min(this.nextProbeAt, this.lastActivity + this.policy.timeoutMs) : this.nextProbeAt;
  }

  get isDead(): boolean {
    return this.dead;
  }
}
