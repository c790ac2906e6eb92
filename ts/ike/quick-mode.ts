// Quick Mode (RFC 2409 5.5), sans I/O, one exchange per object:
//   Initiator                                Responder
//   HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] -->
//                         <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N(RESPONDER-LIFETIME)]
//   HDR*, HASH(3)                             -->
// Each exchange has its own message ID and IV chain (phase2-crypto.ts); several run at once on one
// ISAKMP SA (IsakmpSaContext routes by message ID). KEYMAT per direction (RFC 2409 5.5):
//   prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), expanded, with SPI = the SPI of the SA the
//   keys are for: our own SPI for the inbound SA, the peer's for the outbound one.
// The commit bit (RFC 2408 3.1): a peer that sets it sends a fourth message after QM3, HDR*(Quick Mode, same
// M-ID), HASH(4) = prf(SKEYID_a, M-ID | N), N(CONNECTED), on the exchange's IV chain (racoon; IBM z/OS always
// does as responder). We accept the bit and that message, never set the bit ourselves, and do not hold
// traffic for CONNECTED: the child is up at QM3, as strongSwan and Libreswan do (they ignore the bit).
import type { CryptoProvider, DhPrivateKey } from '../crypto/index.js';
import { isEspAlgorithm } from '../esp/index.js';
import { ExchangeType, Flags, NotifyType, PayloadType, ProtocolId, bytesEqual, findPayload, findPayloads, type IsakmpHeader, type Payload } from '../isakmp/index.js';
import { asIkeError, IkeError, notifyFor } from './errors.js';
import type { EspProposal } from './esp-proposals.js';
import {
  decodeEncapsulationMode,
  decodeLifetimeAttributes,
  describeEspOffer,
  encapsulationMode,
  encodeLifetimeAttributes,
  espOffer,
  espTransformValue,
  sameEsp,
} from './esp-sa-payload.js';
import { informationalMessage } from './informational.js';
import { notifyName, notifyPayload, quickModeNotifyHint } from './notify.js';
import type { ChildSa, IsakmpSa } from './sa-types.js';
import { hash1, hash1Equals, hash2, hash2Equals, hash3, hash3Equals, openProtected, phase2Iv, sealProtected } from './phase2-crypto.js';
import { DEFAULT_RETRANSMIT, Retransmitter } from './retransmit.js';
import {
  answerLifetime,
  checkNonce,
  childSa,
  chooseChild,
  computeGxy,
  createChildEspSas,
  DEFAULT_CHILD_LIFETIME_SECONDS,
  deriveChildKeys,
  espSaParams,
  idCopy,
  makeKeyPair,
  natOaOf,
  natOaPayloads,
  NONCE_LENGTH,
  qm1Selectors,
  randomSpi,
  responderGxy,
  SIT_IDENTITY_ONLY,
  type Opened,
  type Phase2Host,
  type Phase2Policy,
  type QmCommon,
  type QuickModeOutput,
  type Step,
} from './quick-mode-core.js';
import { hostSelector, sameTs, tsContains, tsFromIdPayload, tsIdPayload, tsToString, type TrafficSelector } from './traffic-selectors.js';

export { createChildEspSas, DEFAULT_CHILD_LIFETIME_SECONDS, deriveChildKeys, espSaParams };
export type { Phase2Host, Phase2Policy, QuickModeOutput };
export type { ChildSa, EspKeys } from './sa-types.js';

/** What the initiator offered in QM1 and needs to read QM2. */
interface Offer {
  /** The IV of QM2 (the one after QM1). */
  readonly iv: Buffer;
  readonly nonceI: Buffer;
  /** PFS: our key pair (null without PFS). */
  readonly dh: DhPrivateKey | null;
  /** The proposals as offered (number i+1 = offered[i]) and their encapsulation mode value. */
  readonly offered: readonly EspProposal[];
  readonly offeredMode: number;
  readonly udp: boolean;
  readonly mode: 'tunnel' | 'transport';
  /** We sent IDci/IDcr: the answer must carry them too. */
  readonly idsSent: boolean;
  readonly localTs: TrafficSelector;
  readonly remoteTs: TrafficSelector;
  readonly lifetimeSeconds: number;
  readonly lifetimeKilobytes: number | undefined;
}

/** Initiator, QM1 sent: waits for the responder's choice (QM2), answers with HASH(3) and has the child SA. */
class QmOffered {
  readonly step = 'I_WAIT_QM2' as const;
  constructor(
    readonly c: QmCommon,
    readonly o: Offer,
  ) {}

  get iv(): Buffer {
    return this.o.iv;
  }

  async handle(opened: Opened, now: number): Promise<Step<QmDone>> {
    const { c, o } = this;
    const { crypto, sa } = c.host;
    const mid = c.messageId;
    if (!hash2Equals(crypto, sa, mid, o.nonceI, opened.restBytes, opened.hash)) return { dropped: 'HASH(2) does not verify' };
    const rest = opened.rest;
    const where = `Quick Mode message 2 from ${sa.remote.address} (M-ID ${mid})`;
    const saP = findPayload(rest, PayloadType.SA);
    if (saP === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no SA payload`);
    const prop = saP.proposals[0];
    if (saP.proposals.length !== 1 || prop === undefined || prop.transforms.length !== 1 || prop.protocolId !== ProtocolId.IPSEC_ESP || prop.spi.length !== 4) {
      throw new IkeError('NO_PROPOSAL_CHOSEN', `${where}: the answer must be one ESP proposal with one transform and a 4-byte SPI`, NotifyType.BAD_PROPOSAL_SYNTAX);
    }
    const chosen = o.offered[prop.number - 1];
    const v = espTransformValue(prop.transforms[0]!);
    if (chosen === undefined || !sameEsp(chosen, v) || v.encapsulationMode !== o.offeredMode) {
      throw new IkeError('NO_PROPOSAL_CHOSEN', `${where}: the responder chose ${describeEspOffer(saP.proposals)}, which we did not offer`);
    }
    const spiPeer = Buffer.from(prop.spi);
    const nonceR = checkNonce(rest, where);
    let gxy: Buffer | undefined;
    if (chosen.pfsGroup !== undefined) {
      const ke = findPayload(rest, PayloadType.KE);
      if (ke === undefined) throw new IkeError('NO_PROPOSAL_CHOSEN', `${where}: PFS (${chosen.pfsGroup}) negotiated but the responder sent no KE payload`);
      gxy = await computeGxy(crypto, c.policy, o.dh!, ke.data, where);
    }
    let { localTs, remoteTs } = o;
    if (o.idsSent) {
      const ids = findPayloads(rest, PayloadType.ID);
      const ci = ids[0] ? tsFromIdPayload(ids[0]) : null;
      const cr = ids[1] ? tsFromIdPayload(ids[1]) : null;
      // The responder may echo our selectors or narrow them; anything outside what we proposed is refused.
      if (ids.length !== 2 || ci === null || cr === null || !tsContains(localTs, ci) || !tsContains(remoteTs, cr)) {
        const got = ids.length === 2 && ci && cr ? `${tsToString(ci)} <=> ${tsToString(cr)}` : `${ids.length} ID payloads`;
        throw new IkeError('POLICY', `traffic selectors do not match: responder answered ${got}, we proposed ${tsToString(localTs)} <=> ${tsToString(remoteTs)}`, NotifyType.INVALID_ID_INFORMATION);
      }
      if (!sameTs(ci, localTs) || !sameTs(cr, remoteTs)) {
        localTs = ci;
        remoteTs = cr;
      }
    }
    // Lifetimes: the shorter of ours, the transform's and a RESPONDER-LIFETIME notify.
    let { lifetimeSeconds, lifetimeKilobytes } = o;
    if (v.lifetimeSeconds !== undefined) lifetimeSeconds = Math.min(lifetimeSeconds, v.lifetimeSeconds);
    if (v.lifetimeKilobytes !== undefined) lifetimeKilobytes = Math.min(lifetimeKilobytes ?? Infinity, v.lifetimeKilobytes);
    for (const n of rest) {
      if (n.type === PayloadType.NOTIFICATION && n.notifyType === NotifyType.RESPONDER_LIFETIME) {
        const l = decodeLifetimeAttributes(n.data);
        if (l.seconds !== undefined) lifetimeSeconds = Math.min(lifetimeSeconds, l.seconds);
        if (l.kilobytes !== undefined) lifetimeKilobytes = Math.min(lifetimeKilobytes ?? Infinity, l.kilobytes);
      }
    }
    const natOa = natOaOf(rest, where);
    const sealed = sealProtected(crypto, sa, ExchangeType.QUICK_MODE, mid, opened.nextIv, [], () => hash3(crypto, sa, mid, o.nonceI, nonceR));
    const child = childSa(c, true, now, {
      ...(natOa ? { natOa } : {}),
      chosen,
      spiPeer,
      nonceI: o.nonceI,
      nonceR,
      ...(gxy ? { gxy } : {}),
      mode: o.mode,
      udp: o.udp,
      localTs,
      remoteTs,
      lifetimeSeconds,
      lifetimeKilobytes });
    gxy?.fill(0);
    return { next: new QmDone(c, child, sealed.nextIv), send: sealed.message };
  }
}

/** Responder, QM2 sent: waits for HASH(3) (QM3), which confirms the child SA announced with QM2. */
class QmAnswered {
  readonly step = 'R_WAIT_QM3' as const;
  constructor(
    readonly c: QmCommon,
    /** The IV of QM3 (the one after QM2). */
    readonly iv: Buffer,
    private readonly nonceI: Buffer,
    private readonly nonceR: Buffer,
    /** The child SA as announced with QM2 (inboundReady). */
    readonly early: ChildSa,
  ) {}

  async handle(opened: Opened, now: number): Promise<Step<QmDone>> {
    const { crypto, sa } = this.c.host;
    if (!hash3Equals(crypto, sa, this.c.messageId, this.nonceI, this.nonceR, opened.hash)) return { dropped: 'HASH(3) does not verify' };
    // the same object as inboundReady; its life counts from now
    const child = this.early;
    child.establishedAt = now;
    child.expiresAt = now + child.lifetimeSeconds * 1000;
    return { next: new QmDone(this.c, child, opened.nextIv) };
  }
}

class QmDone {
  readonly step = 'DONE' as const;
  constructor(
    readonly c: QmCommon,
    readonly child: ChildSa,
    /** The IV after QM3: a commit-bit peer's CONNECTED message (the fourth) continues the chain with it. */
    readonly iv: Buffer,
  ) {}
}

class QmFailed {
  readonly step = 'FAILED' as const;
  constructor(
    readonly c: QmCommon,
    readonly localTs: TrafficSelector,
    readonly remoteTs: TrafficSelector,
  ) {}
}

type QmState = QmOffered | QmAnswered | QmDone | QmFailed;

/** The step types, for code that reasons about the chain (tests): a QuickMode holds one at a time. */
export type { QmOffered, QmAnswered, QmDone, QmFailed };

/**
 * One Quick Mode exchange from either side: the facade IsakmpSaContext drives. It holds the current step
 * (QmOffered or QmAnswered while waiting, then QmDone or QmFailed) and what does not depend on it:
 * retransmission, the answer to a repeated message, failure.
 */
export class QuickMode {
  private state: QmState;
  private readonly retransmitter: Retransmitter;
  private lastReceived: Buffer | null = null;
  private lastReply: Buffer | null = null;
  private busy = false;

  private constructor(
    state: QmOffered | QmAnswered,
    readonly initiator: boolean,
  ) {
    this.state = state;
    this.retransmitter = new Retransmitter(state.c.policy.retransmit ?? DEFAULT_RETRANSMIT);
  }

  get step(): QmState['step'] {
    return this.state.step;
  }

  get host(): Phase2Host {
    return this.state.c.host;
  }

  get policy(): Phase2Policy {
    return this.state.c.policy;
  }

  get messageId(): number {
    return this.state.c.messageId;
  }

  /** Our SPI (the inbound SA). */
  get spiOurs(): Buffer {
    return this.state.c.spiOurs;
  }

  get localTs(): TrafficSelector {
    const s = this.state;
    return s instanceof QmOffered ? s.o.localTs : s instanceof QmFailed ? s.localTs : s instanceof QmAnswered ? s.early.localTs : s.child.localTs;
  }

  get remoteTs(): TrafficSelector {
    const s = this.state;
    return s instanceof QmOffered ? s.o.remoteTs : s instanceof QmFailed ? s.remoteTs : s instanceof QmAnswered ? s.early.remoteTs : s.child.remoteTs;
  }

  private get crypto(): CryptoProvider {
    return this.state.c.host.crypto;
  }

  private get sa(): IsakmpSa {
    return this.state.c.host.sa;
  }

  /** Starts a Quick Mode as initiator. Throws IkeError('POLICY') for a policy that cannot be offered. */
  static async initiate(host: Phase2Host, policy: Phase2Policy, now: number): Promise<{ quickMode: QuickMode; out: QuickModeOutput }> {
    if (policy.proposals.length === 0) throw new IkeError('POLICY', `child '${policy.name}': no ESP proposal configured`);
    const bad = policy.proposals.find((p) => !isEspAlgorithm(p.algorithm));
    if (bad) throw new IkeError('POLICY', `child '${policy.name}': ESP algorithm ${bad.algorithm} is not supported by the ESP data path`);
    const groups = new Set(policy.proposals.map((p) => p.pfsGroup));
    if (groups.size !== 1) {
      throw new IkeError('POLICY', `child '${policy.name}': all ESP proposals must use the same PFS group (one KE payload), got ${[...groups].map((g) => g ?? 'none').join(', ')}`);
    }
    const { crypto, sa } = host;
    const messageId = host.newMessageId();
    const c: QmCommon = { host, policy, messageId, spiOurs: randomSpi(crypto) };
    const nat = sa.nat;
    const udp = nat.version !== null && (nat.localBehindNat || nat.remoteBehindNat || policy.forceEncapsulation === true) ? nat.version : null;
    const mode = policy.mode ?? 'tunnel';
    const offeredMode = encapsulationMode(mode, udp);
    const lifetimeSeconds = policy.lifetimeSeconds ?? DEFAULT_CHILD_LIFETIME_SECONDS;
    const lifetimeKilobytes = policy.lifetimeKilobytes;
    const nonceI = crypto.randomBytes(NONCE_LENGTH);
    const offer = espOffer(policy.proposals, c.spiOurs, {
      lifetimeSeconds,
      ...(lifetimeKilobytes !== undefined ? { lifetimeKilobytes } : {}),
      encapsulationMode: offeredMode });
    const rest: Payload[] = [offer, { type: PayloadType.NONCE, data: nonceI }];
    const group = policy.proposals[0]!.pfsGroup;
    let dh: DhPrivateKey | null = null;
    if (group !== undefined) {
      dh = await makeKeyPair(crypto, policy, group);
      rest.push({ type: PayloadType.KE, data: dh.publicValue });
    }
    const localTs = policy.localTs ?? hostSelector(sa.local.address);
    const remoteTs = policy.remoteTs ?? hostSelector(sa.remote.address);
    const idsSent = policy.localTs !== undefined || policy.remoteTs !== undefined;
    if (idsSent) rest.push(tsIdPayload(localTs), tsIdPayload(remoteTs));
    rest.push(...natOaPayloads(sa, true, mode, udp !== null));
    const sealed = sealProtected(crypto, sa, ExchangeType.QUICK_MODE, messageId, phase2Iv(crypto, sa, messageId), rest, (b) => hash1(crypto, sa, messageId, b));
    const state = new QmOffered(c, {
      iv: sealed.nextIv,
      nonceI,
      dh,
      offered: policy.proposals,
      offeredMode,
      udp: udp !== null,
      mode,
      idsSent,
      localTs,
      remoteTs,
      lifetimeSeconds,
      lifetimeKilobytes });
    const qm = new QuickMode(state, true);
    qm.lastReply = sealed.message;
    qm.retransmitter.arm(sealed.message, now);
    return { quickMode: qm, out: { send: [sealed.message], timer: qm.retransmitter.deadline } };
  }

  /**
   * A QM1 for a message ID we do not know. `policies` are the children configured for this connection.
   * Returns no machine when the message does not authenticate (nothing changes) or the exchange fails at
   * once (`out.failed`, with the encrypted notify in `out.send`).
   */
  static async respond(host: Phase2Host, policies: readonly Phase2Policy[], header: IsakmpHeader, body: Buffer, message: Buffer, now: number): Promise<{ quickMode: QuickMode | null; out: QuickModeOutput }> {
    const { crypto, sa } = host;
    const mid = header.messageId;
    const opened = openProtected(crypto, sa, header, body, phase2Iv(crypto, sa, mid));
    if (!opened.ok) return { quickMode: null, out: { send: [], timer: null, dropped: `Quick Mode message 1 (M-ID ${mid}): ${opened.reason}` } };
    if (!hash1Equals(crypto, sa, mid, opened.restBytes, opened.hash)) {
      return { quickMode: null, out: { send: [], timer: null, dropped: `Quick Mode message 1 (M-ID ${mid}): HASH(1) does not verify` } };
    }
    const rest = opened.rest;
    const saP = findPayload(rest, PayloadType.SA);
    const peerSpi = saP?.proposals.find((p) => p.spi.length === 4)?.spi;
    const refuse = (err: IkeError): { quickMode: null; out: QuickModeOutput } => {
      const notify = err.notifyType ?? notifyFor(err.kind);
      const send =
        notify === undefined
          ? []
          : [informationalMessage(crypto, sa, host.newMessageId(), [notifyPayload(notify, ProtocolId.IPSEC_ESP, peerSpi ? Buffer.from(peerSpi) : Buffer.alloc(0))])];
      return { quickMode: null, out: { send, timer: null, failed: err } };
    };
    const where = `Quick Mode from ${sa.remote.address} (M-ID ${mid})`;
    try {
      if (saP === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no SA payload`);
      if (saP.doi !== 1 || !bytesEqual(saP.situation, SIT_IDENTITY_ONLY)) {
        throw new IkeError('PAYLOAD_MALFORMED', `${where}: SA with DOI ${saP.doi} / situation ${saP.situation.toString('hex')}, expected IPsec / SIT_IDENTITY_ONLY`, NotifyType.SITUATION_NOT_SUPPORTED);
      }
      const nonceI = checkNonce(rest, where);
      const { ids, peerTs, ourTs } = qm1Selectors(rest, sa, where);
      const ke = findPayload(rest, PayloadType.KE);
      const { policy, choice, ...seen } = chooseChild(policies, saP, { peerTs, ourTs }, sa, where, ke !== undefined);
      const c: QmCommon = { host, policy, messageId: mid, spiOurs: randomSpi(crypto) };
      const enc = choice.value.encapsulationMode === undefined ? { mode: policy.mode ?? 'tunnel', udp: false } : decodeEncapsulationMode(choice.value.encapsulationMode)!;
      const lifetime = answerLifetime(choice.value, policy);
      const nonceR = crypto.randomBytes(NONCE_LENGTH);
      const answer: Payload[] = [
        {
          type: PayloadType.SA,
          doi: 1,
          situation: SIT_IDENTITY_ONLY,
          proposals: [{ number: choice.proposal.number, protocolId: ProtocolId.IPSEC_ESP, spi: c.spiOurs, transforms: [choice.transform] }] },
        { type: PayloadType.NONCE, data: nonceR },
      ];
      let gxy: Buffer | undefined;
      if (choice.ours.pfsGroup !== undefined) {
        if (ke === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where}: PFS group ${choice.ours.pfsGroup} offered but no KE payload`, NotifyType.INVALID_KEY_INFORMATION);
        const dh = await responderGxy(crypto, policy, choice.ours.pfsGroup, ke.data, where);
        answer.push({ type: PayloadType.KE, data: dh.publicValue });
        gxy = dh.gxy;
      }
      // the IDs as proposed (byte for byte), or the selectors we narrowed them to
      if (ids.length === 2) answer.push(...(seen.narrowed ? [tsIdPayload(seen.peerTs), tsIdPayload(seen.ourTs)] : [idCopy(ids[0]!), idCopy(ids[1]!)]));
      answer.push(...natOaPayloads(sa, false, enc.mode, enc.udp));
      const natOa = natOaOf(rest, where);
      if (lifetime.notify) answer.push(notifyPayload(NotifyType.RESPONDER_LIFETIME, ProtocolId.IPSEC_ESP, c.spiOurs, encodeLifetimeAttributes(lifetime.notify.seconds, lifetime.notify.kilobytes)));
      const sealed = sealProtected(crypto, sa, ExchangeType.QUICK_MODE, mid, opened.nextIv, answer, (b) => hash2(crypto, sa, mid, nonceI, b));
      const early = childSa(c, false, now, {
        ...(natOa ? { natOa } : {}),
        chosen: choice.ours,
        spiPeer: Buffer.from(choice.proposal.spi),
        nonceI,
        nonceR,
        ...(gxy ? { gxy } : {}),
        mode: enc.mode,
        udp: enc.udp,
        localTs: seen.ourTs,
        remoteTs: seen.peerTs,
        lifetimeSeconds: lifetime.seconds,
        lifetimeKilobytes: lifetime.kilobytes });
      gxy?.fill(0);
      if (lifetime.notify?.seconds !== undefined) early.shorterThanPeer = true;
      const qm = new QuickMode(new QmAnswered(c, sealed.nextIv, nonceI, nonceR, early), false);
      qm.lastReceived = Buffer.from(message);
      qm.lastReply = sealed.message;
      // Retransmit QM2 until QM3 comes (a lost QM3 is only recovered this way).
      qm.retransmitter.arm(sealed.message, now);
      return { quickMode: qm, out: { send: [sealed.message], timer: qm.retransmitter.deadline, inboundReady: early } };
    } catch (e) {
      return refuse(asIkeError(e));
    }
  }

  /** A datagram of this exchange (same cookies and message ID), already split by parseMessage. */
  async handle(header: IsakmpHeader, body: Buffer, message: Buffer, now: number): Promise<QuickModeOutput> {
    if (this.lastReceived !== null && message.equals(this.lastReceived)) {
      // The peer did not get our answer: the same bytes again, nothing recomputed.
      return { send: this.lastReply ? [this.lastReply] : [], timer: this.retransmitter.deadline, repeat: true };
    }
    const state = this.state;
    if (state instanceof QmDone) return this.connected(header, body, message, state);
    if (state instanceof QmFailed) return this.idle('exchange already complete');
    if (this.busy) return this.idle('busy');
    if ((header.flags & Flags.ENCRYPTION) === 0) return this.idle('unencrypted Quick Mode message');
    const opened = openProtected(this.crypto, this.sa, header, body, state.iv);
    if (!opened.ok) return this.idle(opened.reason);
    this.busy = true;
    try {
      // Nothing changes until the message's HASH has verified; after that a failure ends the exchange.
      const r = await state.handle(opened, now);
      if ('dropped' in r) return this.idle(r.dropped);
      if (this.state !== state) return this.idle('exchange ended while this message was being handled');
      this.state = r.next;
      this.lastReceived = Buffer.from(message);
      this.lastReply = r.send ?? null;
      this.retransmitter.clear();
      return { send: r.send ? [r.send] : [], timer: null, childSa: r.next.child };
    } catch (e) {
      if (this.state !== state) return this.idle('exchange ended while this message was being handled');
      // The message authenticated: it is the peer's, and it answers what we cannot accept.
      this.lastReceived = Buffer.from(message);
      return this.fail(asIkeError(e));
    } finally {
      this.busy = false;
    }
  }

  /**
   * After QM3: the CONNECTED message of a peer that set the commit bit (see the top of this file). It confirms
   * what QM3 did, so it is taken quietly, and a copy of it as a repeat; anything else is dropped.
   */
  private connected(header: IsakmpHeader, body: Buffer, message: Buffer, state: QmDone): QuickModeOutput {
    if ((header.flags & Flags.ENCRYPTION) === 0) return this.idle('exchange already complete');
    const opened = openProtected(this.crypto, this.sa, header, body, state.iv);
    if (!opened.ok || !hash1Equals(this.crypto, this.sa, this.messageId, opened.restBytes, opened.hash)) return this.idle('exchange already complete');
    const [n, more] = opened.rest;
    if (more !== undefined || n?.type !== PayloadType.NOTIFICATION || n.notifyType !== NotifyType.CONNECTED) return this.idle('exchange already complete');
    this.lastReceived = Buffer.from(message);
    this.lastReply = null;
    return { send: [], timer: null };
  }

  onTimer(now: number): QuickModeOutput {
    const due = this.retransmitter.due(now);
    if (due === null) return { send: [], timer: this.retransmitter.deadline };
    if (due === 'timeout') {
      this.toFailed();
      const what = this.initiator ? 'no answer to Quick Mode message 1' : 'no Quick Mode message 3';
      return { send: [], timer: null, failed: new IkeError('TIMEOUT', `child '${this.policy.name}': ${what} from ${this.sa.remote.address} (M-ID ${this.messageId}) after ${(this.policy.retransmit ?? DEFAULT_RETRANSMIT).tries} retransmissions`) };
    }
    return { send: [due], timer: this.retransmitter.deadline };
  }

  /** The peer refused this exchange with an (authenticated) error notify. */
  peerRefused(notifyType: number): QuickModeOutput {
    if (!this.pending) return { send: [], timer: null };
    this.retransmitter.clear();
    this.toFailed();
    return { send: [], timer: null, failed: new IkeError('PEER_NOTIFY', `child '${this.policy.name}': peer ${this.sa.remote.address} refused Quick Mode: ${notifyName(notifyType)}${quickModeNotifyHint(notifyType)}`) };
  }

  get deadline(): number | null {
    return this.retransmitter.deadline;
  }

  get pending(): boolean {
    return this.state instanceof QmOffered || this.state instanceof QmAnswered;
  }

  private fail(err: IkeError): QuickModeOutput {
    // The SPI the notify names: ours as initiator (what we offered), the peer's as responder.
    const s = this.state;
    const spi = this.initiator ? this.spiOurs : s instanceof QmAnswered ? s.early.spiOut : Buffer.alloc(0);
    this.retransmitter.clear();
    this.toFailed();
    const notify = err.notifyType ?? notifyFor(err.kind);
    const send = notify === undefined ? [] : [informationalMessage(this.crypto, this.sa, this.host.newMessageId(), [notifyPayload(notify, ProtocolId.IPSEC_ESP, spi)])];
    return { send, timer: null, failed: err };
  }

  /** Ends the exchange; what the waiting step held (a PFS key pair, the announced child SA) is dropped. */
  private toFailed(): void {
    const s = this.state;
    if (s instanceof QmFailed) return;
    this.state = new QmFailed(s.c, this.localTs, this.remoteTs);
  }

  private idle(dropped: string): QuickModeOutput {
    return { send: [], timer: this.retransmitter.deadline, dropped: `Quick Mode M-ID ${this.messageId}: ${dropped}` };
  }
}
