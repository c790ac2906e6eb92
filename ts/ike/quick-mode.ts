// Quick Mode (RFC 2409 5.5), sans I/O, one exchange per object:
//   Initiator                                Responder
//   HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] -->
//                         <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N(RESPONDER-LIFETIME)]
//   HDR*, HASH(3)                             -->
// Each exchange has its own message ID and IV chain (phase2-crypto.ts); several run at once on one
// ISAKMP SA (IsakmpSaContext routes by message ID). KEYMAT per direction (RFC 2409 5.5):
//   prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), expanded, with SPI = the SPI of the SA the
//   keys are for: our own SPI for the inbound SA, the peer's for the outbound one.
// The commit bit (RFC 2408 3.1) is not supported: a QM1 with it is refused ("commit bit not supported").
import type { CryptoProvider, DhGroupId, DhPrivateKey } from '../crypto/index.js';
import { createEspSa, espKeyLengths, espKeymatViews, isEspAlgorithm, type EspAlgorithm, type EspSa, type EspSaParams } from '../esp/index.js';
import { ExchangeType, Flags, NotifyType, ProtocolId, bytesEqual, type IdPayload, type IsakmpHeader, type Payload, type SaPayload } from '../isakmp/index.js';
import { asIkeError, IkeError, notifyFor } from './errors.js';
import { espProposalName, type EspProposal } from './esp-proposals.js';
import {
  decodeEncapsulationMode,
  decodeLifetimeAttributes,
  describeEspOffer,
  encapsulationMode,
  encodeLifetimeAttributes,
  espOffer,
  espTransformValue,
  sameEsp,
  selectEsp,
  DEFAULT_IPSEC_LIFETIME_SECONDS,
} from './esp-sa-payload.js';
import { informationalMessage } from './informational.js';
import { notifyName, notifyPayload, quickModeNotifyHint } from './notify.js';
import type { ChildSa, EspKeys, IsakmpSa } from './sa-types.js';
import { hash1, hash1Equals, hash2, hash2Equals, hash3, hash3Equals, openProtected, phase2Iv, sealProtected } from './phase2-crypto.js';
import type { SelectionOrder } from './proposals.js';
import { DEFAULT_RETRANSMIT, Retransmitter, type RetransmitPolicy } from './retransmit.js';
import { hostSelector, sameTs, tsContains, tsFromIdPayload, tsIdPayload, tsToString, type TrafficSelector } from './traffic-selectors.js';

/** One CHILD_SA configuration (strongSwan's `children { name { ... } }`). */
export interface Phase2Policy {
  name: string;
  /** ESP proposals in priority order (parseEspProposal). A pfsGroup means PFS with that group. */
  proposals: EspProposal[];
  mode?: 'tunnel' | 'transport';
  /** Our side / the peer's side. Omitted: the endpoint address (and, as initiator, no ID payloads are sent). */
  localTs?: TrafficSelector;
  remoteTs?: TrafficSelector;
  /** Initiator: the lifetime offered. Responder: the longest accepted (a longer offer gets RESPONDER-LIFETIME). Default 3600. */
  lifetimeSeconds?: number;
  lifetimeKilobytes?: number;
  /** Responder: whose priority decides (default 'responder'). */
  selection?: SelectionOrder;
  retransmit?: RetransmitPolicy;
  /** Propose UDP encapsulation when NAT-T was negotiated even if no NAT was detected (strongSwan `encap = yes`). */
  forceEncapsulation?: boolean;
  /** Run PFS DH on the libuv thread pool. */
  asyncDh?: boolean;
}

export const DEFAULT_CHILD_LIFETIME_SECONDS = 3600;

export type { ChildSa, EspKeys } from './sa-types.js';

/** createEspSa parameters for one direction of a child SA (extra: replayWindow, implementation, ...). */
export function espSaParams(child: ChildSa, direction: 'inbound' | 'outbound', extra: Partial<EspSaParams> = {}): EspSaParams {
  const k = direction === 'inbound' ? child.inbound : child.outbound;
  return {
    spi: (direction === 'inbound' ? child.spiIn : child.spiOut).readUInt32BE(0),
    algorithm: child.algorithm,
    direction,
    encryptionKey: k.encryptionKey,
    integrityKey: k.integrityKey,
    salt: k.salt,
    esn: child.esn,
    mode: child.mode,
    udpEncapsulation: child.encapsulation,
    ...extra,
  };
}

/** Both ESP SAs of a child: { inbound, outbound }. */
export function createChildEspSas(child: ChildSa, extra: Partial<EspSaParams> = {}): { inbound: EspSa; outbound: EspSa } {
  return { inbound: createEspSa(espSaParams(child, 'inbound', extra)), outbound: createEspSa(espSaParams(child, 'outbound', extra)) };
}

/** What a Quick Mode exchange needs from its ISAKMP SA (IsakmpSaContext provides it). */
export interface Phase2Host {
  readonly crypto: CryptoProvider;
  readonly sa: IsakmpSa;
  /** A random non-zero message ID not used before on this ISAKMP SA. */
  newMessageId(): number;
}

export interface QuickModeOutput {
  send: Buffer[];
  timer: number | null;
  childSa?: ChildSa;
  /**
   * Responder, on sending QM2: the child SA as it will be (keys, SPIs), before QM3 confirms it. The
   * initiator may send on it as soon as QM2 arrives, before its QM3 reaches us, so the inbound direction
   * should take packets from now on; the outbound waits for `childSa` (same object) after QM3.
   */
  inboundReady?: ChildSa;
  failed?: IkeError;
  /** Why an incoming datagram changed nothing (for logs); never set together with a state change. */
  dropped?: string;
  /** The datagram repeated one already handled: answered from the cache, nothing else changed. */
  repeat?: boolean;
}

type Step = 'I_WAIT_QM2' | 'R_WAIT_QM3' | 'DONE' | 'FAILED';

const NONCE_LENGTH = 32;
const SIT_IDENTITY_ONLY = Buffer.from([0, 0, 0, 1]);

export class QuickMode {
  step: Step;
  /** The IV of the next message of this exchange (sent or received). */
  private iv: Buffer;
  private nonceI: Buffer | null = null;
  private nonceR: Buffer | null = null;
  private dh: DhPrivateKey | null = null;
  private gxy: Buffer | null = null;
  /** Responder: the child SA announced with QM2 (inboundReady), completed by QM3. */
  private early: ChildSa | null = null;
  /** Our SPI (inbound SA) and the peer's (outbound SA). */
  readonly spiOurs: Buffer;
  private spiPeer: Buffer | null = null;
  private chosen: EspProposal | null = null;
  private mode: 'tunnel' | 'transport';
  private udp = false;
  /** Initiator: the proposals as offered (number i+1 = offered[i]) and their encapsulation mode value. */
  private offered: EspProposal[] = [];
  private offeredMode = 0;
  private idsSent = false;
  localTs: TrafficSelector;
  remoteTs: TrafficSelector;
  private lifetimeSeconds: number;
  private lifetimeKilobytes: number | undefined;
  private retransmitter: Retransmitter;
  private lastReceived: Buffer | null = null;
  private lastReply: Buffer | null = null;
  private busy = false;

  private constructor(
    readonly host: Phase2Host,
    public policy: Phase2Policy,
    readonly initiator: boolean,
    readonly messageId: number,
    spi: Buffer,
    /** The responder has already opened QM1 with the first IV: the one after it. */
    iv?: Buffer,
  ) {
    this.step = initiator ? 'I_WAIT_QM2' : 'R_WAIT_QM3';
    this.iv = iv ?? phase2Iv(host.crypto, host.sa, messageId);
    this.spiOurs = spi;
    this.mode = policy.mode ?? 'tunnel';
    this.localTs = policy.localTs ?? hostSelector(host.sa.local.address);
    this.remoteTs = policy.remoteTs ?? hostSelector(host.sa.remote.address);
    this.lifetimeSeconds = policy.lifetimeSeconds ?? DEFAULT_CHILD_LIFETIME_SECONDS;
    this.lifetimeKilobytes = policy.lifetimeKilobytes;
    this.retransmitter = new Retransmitter(policy.retransmit ?? DEFAULT_RETRANSMIT);
  }

  private get crypto(): CryptoProvider {
    return this.host.crypto;
  }

  private get sa(): IsakmpSa {
    return this.host.sa;
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
    const messageId = host.newMessageId();
    const qm = new QuickMode(host, policy, true, messageId, randomSpi(host.crypto));
    const nat = host.sa.nat;
    const udp = nat.version !== null && (nat.localBehindNat || nat.remoteBehindNat || policy.forceEncapsulation === true) ? nat.version : null;
    qm.udp = udp !== null;
    qm.offered = policy.proposals;
    qm.offeredMode = encapsulationMode(qm.mode, udp);
    qm.nonceI = host.crypto.randomBytes(NONCE_LENGTH);
    const rest: Payload[] = [qm.saPayload(), { type: 10, data: qm.nonceI }];
    const group = policy.proposals[0]!.pfsGroup;
    if (group !== undefined) rest.push({ type: 4, data: await qm.makeKeyPair(group) });
    if (policy.localTs !== undefined || policy.remoteTs !== undefined) {
      qm.idsSent = true;
      rest.push(tsIdPayload(qm.localTs), tsIdPayload(qm.remoteTs));
    }
    const sealed = sealProtected(host.crypto, host.sa, ExchangeType.QUICK_MODE, messageId, qm.iv, rest, (b) => hash1(host.crypto, host.sa, messageId, b));
    qm.iv = sealed.nextIv;
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
    const saP = rest.find((p): p is SaPayload => p.type === 1);
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
      if (header.flags & Flags.COMMIT) throw new IkeError('POLICY', `${where}: commit bit not supported`, NotifyType.INVALID_FLAGS);
      if (saP === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no SA payload`);
      if (saP.doi !== 1 || !bytesEqual(saP.situation, SIT_IDENTITY_ONLY)) {
        throw new IkeError('PAYLOAD_MALFORMED', `${where}: SA with DOI ${saP.doi} / situation ${saP.situation.toString('hex')}, expected IPsec / SIT_IDENTITY_ONLY`, NotifyType.SITUATION_NOT_SUPPORTED);
      }
      const nonce = checkNonce(rest, where);
      const ids = rest.filter((p): p is IdPayload => p.type === 5);
      // The selectors of the two endpoints: what the IDs mean when omitted, and a child's default.
      const remoteHost = hostSelector(sa.remote.address);
      const localHost = hostSelector(sa.local.address);
      let peerTs: TrafficSelector;
      let ourTs: TrafficSelector;
      if (ids.length === 0) {
        peerTs = remoteHost;
        ourTs = localHost;
      } else if (ids.length === 2) {
        const a = tsFromIdPayload(ids[0]!);
        const b = tsFromIdPayload(ids[1]!);
        if (a === null || b === null) throw new IkeError('POLICY', `${where}: IDci/IDcr are not address selectors`, NotifyType.INVALID_ID_INFORMATION);
        peerTs = a;
        ourTs = b;
      } else {
        throw new IkeError('PAYLOAD_MALFORMED', `${where}: ${ids.length} ID payloads (0 or 2 expected)`, NotifyType.INVALID_ID_INFORMATION);
      }
      const candidates = policies.filter((p) => tsContains(p.remoteTs ?? remoteHost, peerTs) && tsContains(p.localTs ?? localHost, ourTs));
      if (candidates.length === 0) {
        const allowed = policies.map((p) => `${tsToString(p.remoteTs ?? remoteHost)} <=> ${tsToString(p.localTs ?? localHost)}`).join(', ') || 'nothing (no child configured)';
        throw new IkeError('POLICY', `traffic selectors do not match: peer proposed ${tsToString(peerTs)} <=> ${tsToString(ourTs)}, we allow ${allowed}`, NotifyType.INVALID_ID_INFORMATION);
      }
      let choice: ReturnType<typeof selectEsp> = null;
      let policy: Phase2Policy | null = null;
      for (const p of candidates) {
        const supported = p.proposals.filter((x) => isEspAlgorithm(x.algorithm));
        const mode = p.mode ?? 'tunnel';
        choice = selectEsp(saP.proposals, supported, p.selection ?? 'responder', (m) => modeAcceptable(m, mode, sa.nat.version !== null));
        if (choice) {
          policy = p;
          break;
        }
      }
      if (choice === null || policy === null) throw noProposal(where, saP, candidates, rest.some((p) => p.type === 4));
      const qm = new QuickMode(host, policy, false, mid, randomSpi(crypto), opened.nextIv);
      qm.lastReceived = Buffer.from(message);
      qm.nonceI = nonce;
      qm.spiPeer = Buffer.from(choice.proposal.spi);
      qm.chosen = choice.ours;
      const enc = choice.value.encapsulationMode === undefined ? { mode: qm.mode, udp: false } : decodeEncapsulationMode(choice.value.encapsulationMode)!;
      qm.udp = enc.udp;
      qm.remoteTs = peerTs;
      qm.localTs = ourTs;
      // Lifetime: accept up to ours; a longer offer is answered with RESPONDER-LIFETIME and we both use ours.
      const offeredSecs = choice.value.lifetimeSeconds ?? (choice.value.lifetimeKilobytes === undefined ? DEFAULT_IPSEC_LIFETIME_SECONDS : undefined);
      const maxSecs = policy.lifetimeSeconds ?? DEFAULT_CHILD_LIFETIME_SECONDS;
      const maxKb = policy.lifetimeKilobytes;
      const offeredKb = choice.value.lifetimeKilobytes;
      const shorterSecs = offeredSecs === undefined || offeredSecs > maxSecs;
      const shorterKb = maxKb !== undefined && (offeredKb === undefined || offeredKb > maxKb);
      qm.lifetimeSeconds = shorterSecs ? maxSecs : offeredSecs;
      qm.lifetimeKilobytes = shorterKb ? maxKb : offeredKb;
      qm.nonceR = crypto.randomBytes(NONCE_LENGTH);
      const answer: Payload[] = [
        { type: 1, doi: 1, situation: SIT_IDENTITY_ONLY, proposals: [{ number: choice.proposal.number, protocolId: ProtocolId.IPSEC_ESP, spi: qm.spiOurs, transforms: [choice.transform] }] },
        { type: 10, data: qm.nonceR },
      ];
      if (choice.ours.pfsGroup !== undefined) {
        const ke = rest.find((p) => p.type === 4);
        if (ke === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where}: PFS group ${choice.ours.pfsGroup} offered but no KE payload`, NotifyType.INVALID_KEY_INFORMATION);
        answer.push({ type: 4, data: await qm.makeKeyPair(choice.ours.pfsGroup) });
        await qm.computeGxy(ke.data, where);
      }
      if (ids.length === 2) answer.push(idCopy(ids[0]!), idCopy(ids[1]!));
      if (shorterSecs || shorterKb) {
        answer.push(notifyPayload(NotifyType.RESPONDER_LIFETIME, ProtocolId.IPSEC_ESP, qm.spiOurs, encodeLifetimeAttributes(shorterSecs ? maxSecs : undefined, shorterKb ? maxKb : undefined)));
      }
      const nonceI = nonce;
      const sealed = sealProtected(crypto, sa, ExchangeType.QUICK_MODE, mid, qm.iv, answer, (b) => hash2(crypto, sa, mid, nonceI, b));
      qm.iv = sealed.nextIv;
      qm.lastReply = sealed.message;
      // Retransmit QM2 until QM3 comes (a lost QM3 is only recovered this way).
      qm.retransmitter.arm(sealed.message, now);
      qm.early = qm.childSa(now);
      return { quickMode: qm, out: { send: [sealed.message], timer: qm.retransmitter.deadline, inboundReady: qm.early } };
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
    if (this.step === 'DONE' || this.step === 'FAILED') return this.idle('exchange already complete');
    if (this.busy) return this.idle('busy');
    if ((header.flags & Flags.ENCRYPTION) === 0) return this.idle('unencrypted Quick Mode message');
    const opened = openProtected(this.crypto, this.sa, header, body, this.iv);
    if (!opened.ok) return this.idle(opened.reason);
    this.busy = true;
    try {
      if (this.step === 'I_WAIT_QM2') {
        if (!hash2Equals(this.crypto, this.sa, this.messageId, this.nonceI!, opened.restBytes, opened.hash)) return this.idle('HASH(2) does not verify');
        this.lastReceived = Buffer.from(message);
        this.iv = opened.nextIv;
        return await this.initiatorFinish(opened.rest, now);
      }
      if (!hash3Equals(this.crypto, this.sa, this.messageId, this.nonceI!, this.nonceR!, opened.hash)) return this.idle('HASH(3) does not verify');
      this.lastReceived = Buffer.from(message);
      this.lastReply = null;
      this.retransmitter.clear();
      return { send: [], timer: null, childSa: this.finish(now) };
    } catch (e) {
      return this.fail(asIkeError(e));
    } finally {
      this.busy = false;
    }
  }

  onTimer(now: number): QuickModeOutput {
    const due = this.retransmitter.due(now);
    if (due === null) return { send: [], timer: this.retransmitter.deadline };
    if (due === 'timeout') {
      this.step = 'FAILED';
      this.wipe();
      const what = this.initiator ? 'no answer to Quick Mode message 1' : 'no Quick Mode message 3';
      return { send: [], timer: null, failed: new IkeError('TIMEOUT', `child '${this.policy.name}': ${what} from ${this.sa.remote.address} (M-ID ${this.messageId}) after ${(this.policy.retransmit ?? DEFAULT_RETRANSMIT).tries} retransmissions`) };
    }
    return { send: [due], timer: this.retransmitter.deadline };
  }

  /** The peer refused this exchange with an (authenticated) error notify. */
  peerRefused(notifyType: number): QuickModeOutput {
    if (this.step === 'DONE' || this.step === 'FAILED') return { send: [], timer: null };
    this.step = 'FAILED';
    this.retransmitter.clear();
    this.wipe();
    return { send: [], timer: null, failed: new IkeError('PEER_NOTIFY', `child '${this.policy.name}': peer ${this.sa.remote.address} refused Quick Mode: ${notifyName(notifyType)}${quickModeNotifyHint(notifyType)}`) };
  }

  get deadline(): number | null {
    return this.retransmitter.deadline;
  }

  get pending(): boolean {
    return this.step === 'I_WAIT_QM2' || this.step === 'R_WAIT_QM3';
  }

  // ---- steps ----

  private saPayload(): SaPayload {
    return espOffer(this.offered, this.spiOurs, {
      lifetimeSeconds: this.lifetimeSeconds,
      ...(this.lifetimeKilobytes !== undefined ? { lifetimeKilobytes: this.lifetimeKilobytes } : {}),
      encapsulationMode: this.offeredMode,
    });
  }

  private async initiatorFinish(rest: Payload[], now: number): Promise<QuickModeOutput> {
    const where = `Quick Mode message 2 from ${this.sa.remote.address} (M-ID ${this.messageId})`;
    const saP = rest.find((p): p is SaPayload => p.type === 1);
    if (saP === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no SA payload`);
    const prop = saP.proposals[0];
    if (saP.proposals.length !== 1 || prop === undefined || prop.transforms.length !== 1 || prop.protocolId !== ProtocolId.IPSEC_ESP || prop.spi.length !== 4) {
      throw new IkeError('NO_PROPOSAL_CHOSEN', `${where}: the answer must be one ESP proposal with one transform and a 4-byte SPI`, NotifyType.BAD_PROPOSAL_SYNTAX);
    }
    const ours = this.offered[prop.number - 1];
    const v = espTransformValue(prop.transforms[0]!);
    if (ours === undefined || !sameEsp(ours, v) || v.encapsulationMode !== this.offeredMode) {
      throw new IkeError('NO_PROPOSAL_CHOSEN', `${where}: the responder chose ${describeEspOffer(saP.proposals)}, which we did not offer`);
    }
    this.chosen = ours;
    this.spiPeer = Buffer.from(prop.spi);
    this.nonceR = checkNonce(rest, where);
    if (ours.pfsGroup !== undefined) {
      const ke = rest.find((p) => p.type === 4);
      if (ke === undefined) throw new IkeError('NO_PROPOSAL_CHOSEN', `${where}: PFS (${ours.pfsGroup}) negotiated but the responder sent no KE payload`);
      await this.computeGxy(ke.data, where);
    }
    const ids = rest.filter((p): p is IdPayload => p.type === 5);
    if (this.idsSent) {
      const ci = ids[0] ? tsFromIdPayload(ids[0]) : null;
      const cr = ids[1] ? tsFromIdPayload(ids[1]) : null;
      // The responder may echo our selectors or narrow them; anything outside what we proposed is refused.
      if (ids.length !== 2 || ci === null || cr === null || !tsContains(this.localTs, ci) || !tsContains(this.remoteTs, cr)) {
        const got = ids.length === 2 && ci && cr ? `${tsToString(ci)} <=> ${tsToString(cr)}` : `${ids.length} ID payloads`;
        throw new IkeError('POLICY', `traffic selectors do not match: responder answered ${got}, we proposed ${tsToString(this.localTs)} <=> ${tsToString(this.remoteTs)}`, NotifyType.INVALID_ID_INFORMATION);
      }
      if (!sameTs(ci, this.localTs) || !sameTs(cr, this.remoteTs)) {
        this.localTs = ci;
        this.remoteTs = cr;
      }
    }
    // Lifetimes: the shorter of ours, the transform's and a RESPONDER-LIFETIME notify.
    if (v.lifetimeSeconds !== undefined) this.lifetimeSeconds = Math.min(this.lifetimeSeconds, v.lifetimeSeconds);
    if (v.lifetimeKilobytes !== undefined) this.lifetimeKilobytes = Math.min(this.lifetimeKilobytes ?? Infinity, v.lifetimeKilobytes);
    for (const n of rest) {
      if (n.type === 11 && n.notifyType === NotifyType.RESPONDER_LIFETIME) {
        const l = decodeLifetimeAttributes(n.data);
        if (l.seconds !== undefined) this.lifetimeSeconds = Math.min(this.lifetimeSeconds, l.seconds);
        if (l.kilobytes !== undefined) this.lifetimeKilobytes = Math.min(this.lifetimeKilobytes ?? Infinity, l.kilobytes);
      }
    }
    const mid = this.messageId;
    const sealed = sealProtected(this.crypto, this.sa, ExchangeType.QUICK_MODE, mid, this.iv, [], () => hash3(this.crypto, this.sa, mid, this.nonceI!, this.nonceR!));
    this.iv = sealed.nextIv;
    this.lastReply = sealed.message;
    this.retransmitter.clear();
    return { send: [sealed.message], timer: null, childSa: this.finish(now) };
  }

  private finish(now: number): ChildSa {
    // the responder built it when it sent QM2 (inboundReady); its life counts from now
    const child = this.early ?? this.childSa(now);
    this.early = null;
    child.establishedAt = now;
    child.expiresAt = now + this.lifetimeSeconds * 1000;
    this.step = 'DONE';
    this.wipe();
    return child;
  }

  /** The child SA this exchange agreed on (keys derived now). */
  private childSa(now: number): ChildSa {
    const alg = this.chosen!.algorithm as EspAlgorithm;
    const keys = deriveChildKeys(this.crypto, this.sa, alg, {
      spiIn: this.spiOurs,
      spiOut: this.spiPeer!,
      nonceI: this.nonceI!,
      nonceR: this.nonceR!,
      ...(this.gxy ? { gxy: this.gxy } : {}),
    });
    const child: ChildSa = {
      name: this.policy.name,
      messageId: this.messageId,
      initiator: this.initiator,
      spiIn: this.spiOurs,
      spiOut: this.spiPeer!,
      algorithm: alg,
      proposal: espProposalName(this.chosen!),
      mode: this.mode,
      encapsulation: this.udp,
      inbound: keys.inbound,
      outbound: keys.outbound,
      localTs: this.localTs,
      remoteTs: this.remoteTs,
      lifetimeSeconds: this.lifetimeSeconds,
      esn: this.chosen!.esn,
      establishedAt: now,
      expiresAt: now + this.lifetimeSeconds * 1000,
    };
    if (this.lifetimeKilobytes !== undefined) child.lifetimeKilobytes = this.lifetimeKilobytes;
    if (this.chosen!.pfsGroup !== undefined) child.pfsGroup = this.chosen!.pfsGroup;
    return child;
  }

  private async makeKeyPair(group: DhGroupId): Promise<Buffer> {
    const g = this.crypto.dhGroup(group);
    this.dh = this.policy.asyncDh ? await g.generateKeyPairAsync() : g.generateKeyPair();
    return this.dh.publicValue;
  }

  private async computeGxy(peer: Buffer, where: string): Promise<void> {
    const g = this.crypto.dhGroup(this.dh!.group);
    if (peer.length !== g.publicLength) throw new IkeError('INVALID_KE', `${where}: KE payload of ${peer.length} bytes, DH group ${g.id} needs ${g.publicLength}`);
    try {
      this.gxy = this.policy.asyncDh ? await this.dh!.computeSecretAsync(peer) : this.dh!.computeSecret(peer);
    } catch (e) {
      throw new IkeError('INVALID_KE', `${where}: invalid DH public value (${(e as Error).message})`);
    }
    this.dh = null;
  }

  private fail(err: IkeError): QuickModeOutput {
    this.step = 'FAILED';
    this.retransmitter.clear();
    this.wipe();
    const notify = err.notifyType ?? notifyFor(err.kind);
    const send = notify === undefined ? [] : [informationalMessage(this.crypto, this.sa, this.host.newMessageId(), [notifyPayload(notify, ProtocolId.IPSEC_ESP, this.initiator ? this.spiOurs : this.spiPeer ?? Buffer.alloc(0))])];
    return { send, timer: null, failed: err };
  }

  private idle(dropped: string): QuickModeOutput {
    return { send: [], timer: this.retransmitter.deadline, dropped: `Quick Mode M-ID ${this.messageId}: ${dropped}` };
  }

  private wipe(): void {
    this.gxy?.fill(0);
    this.gxy = null;
    this.dh = null;
    this.early = null;
  }
}

/**
 * ESP keys of both directions (RFC 2409 5.5): KEYMAT = prf(SKEYID_d, [g(qm)^xy |] 3 | SPI | Ni_b | Nr_b)
 * expanded to the transform's key material, where SPI is the SPI of the SA the keys protect: ours (the
 * receiver's choice) for inbound, the peer's for outbound. Split as encryption key | salt | integrity key.
 */
export function deriveChildKeys(
  crypto: CryptoProvider,
  sa: Pick<IsakmpSa, 'skeyidD' | 'proposal'>,
  algorithm: EspAlgorithm,
  p: { spiIn: Buffer; spiOut: Buffer; nonceI: Buffer; nonceR: Buffer; gxy?: Buffer },
): { inbound: EspKeys; outbound: EspKeys } {
  const len = espKeyLengths(algorithm).keymatLength;
  // Both directions' keys in one pool slice, handed out as views: one allocation instead of six copies. What
  // a gateway keeps for the SA's life goes into an allocation of its own (retainChildSa in retained.ts).
  const all = Buffer.allocUnsafe(2 * len);
  const keys = (spi: Buffer, o: number): EspKeys => {
    const params = { protocol: ProtocolId.IPSEC_ESP, spi, nonceI: p.nonceI, nonceR: p.nonceR, ...(p.gxy ? { gxy: p.gxy } : {}) };
    const km = crypto.keymat(sa.proposal.hash, sa.skeyidD, params, len);
    km.copy(all, o);
    km.fill(0);
    return espKeymatViews(algorithm, all.subarray(o, o + len));
  };
  return { inbound: keys(p.spiIn, 0), outbound: keys(p.spiOut, len) };
}

function randomSpi(crypto: CryptoProvider): Buffer {
  // SPIs 0..255 are reserved (RFC 4303 2.1).
  for (;;) {
    const spi = crypto.randomBytes(4);
    if (spi.readUInt32BE(0) >= 256) return spi;
  }
}

function checkNonce(rest: readonly Payload[], where: string): Buffer {
  const n = rest.find((p) => p.type === 10);
  if (n === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no NONCE payload`);
  if (n.data.length < 8 || n.data.length > 256) throw new IkeError('PAYLOAD_MALFORMED', `${where}: nonce of ${n.data.length} bytes (RFC 2409 allows 8-256)`);
  return Buffer.from(n.data);
}

/** An offered encapsulation mode is acceptable when it is our mode, in UDP only if NAT-T was negotiated. */
function modeAcceptable(value: number | undefined, mode: 'tunnel' | 'transport', natt: boolean): boolean {
  if (value === undefined) return true; // RFC 2407 4.5: unspecified, host-dependent: ours
  const d = decodeEncapsulationMode(value);
  return d !== null && d.mode === mode && (!d.udp || natt);
}

/** The most useful reason we can give for "no proposal chosen", including PFS mismatches. */
function noProposal(where: string, saP: SaPayload, candidates: readonly Phase2Policy[], keSent: boolean): IkeError {
  const offer = describeEspOffer(saP.proposals);
  const ours = candidates.flatMap((p) => p.proposals);
  const names = ours.map(espProposalName).join(', ');
  const ourGroups = new Set(ours.map((p) => p.pfsGroup));
  const offeredGroups = new Set(saP.proposals.flatMap((p) => p.transforms.map((t) => espTransformValue(t).group)));
  let pfs = '';
  if (!keSent && ![...ourGroups].includes(undefined)) pfs = ' (PFS mismatch: we require PFS, the peer offered none)';
  else if (keSent && !ourGroups.has(undefined) && ![...offeredGroups].some((g) => ourGroups.has(g as DhGroupId))) pfs = ' (PFS mismatch: different DH groups)';
  else if (keSent && ourGroups.size === 1 && ourGroups.has(undefined)) pfs = ' (PFS mismatch: the peer wants PFS, we do not use it)';
  return new IkeError('NO_PROPOSAL_CHOSEN', `${where}: no matching ESP proposal${pfs}: peer offered ${offer}; we accept ${names || 'nothing'}`);
}

function idCopy(p: IdPayload): IdPayload {
  return { type: 5, idType: p.idType, protocolId: p.protocolId, port: p.port, data: Buffer.from(p.data) };
}
