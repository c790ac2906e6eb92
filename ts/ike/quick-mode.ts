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
import {
  ExchangeType,
  Flags,
  NotifyType,
  PayloadType,
  ProtocolId,
  bytesEqual,
  findPayload,
  findPayloads,
  type IdPayload,
  type IsakmpHeader,
  type Payload,
  type SaPayload,
} from '../isakmp/index.js';
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

const NONCE_LENGTH = 32;
const SIT_IDENTITY_ONLY = Buffer.from([0, 0, 0, 1]);

/** What every step of one Quick Mode knows. */
interface QmCommon {
  readonly host: Phase2Host;
  readonly policy: Phase2Policy;
  readonly messageId: number;
  /** Our SPI: the SA we receive on. */
  readonly spiOurs: Buffer;
}

/** The authenticated content of a message of this exchange (openProtected, HASH not yet checked). */
type Opened = Extract<ReturnType<typeof openProtected>, { ok: true }>;

/** What a waiting state answers: a rejected message (nothing changed), or the next state and what to send. */
type Step<S> = { dropped: string } | { next: S; send?: Buffer };

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
    const sealed = sealProtected(crypto, sa, ExchangeType.QUICK_MODE, mid, opened.nextIv, [], () => hash3(crypto, sa, mid, o.nonceI, nonceR));
    const child = childSa(c, true, now, {
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
      lifetimeKilobytes,
    });
    gxy?.fill(0);
    return { next: new QmDone(c, child), send: sealed.message };
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
    return { next: new QmDone(this.c, child) };
  }
}

class QmDone {
  readonly step = 'DONE' as const;
  constructor(
    readonly c: QmCommon,
    readonly child: ChildSa,
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
      encapsulationMode: offeredMode,
    });
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
      lifetimeKilobytes,
    });
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
      if (header.flags & Flags.COMMIT) throw new IkeError('POLICY', `${where}: commit bit not supported`, NotifyType.INVALID_FLAGS);
      if (saP === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no SA payload`);
      if (saP.doi !== 1 || !bytesEqual(saP.situation, SIT_IDENTITY_ONLY)) {
        throw new IkeError('PAYLOAD_MALFORMED', `${where}: SA with DOI ${saP.doi} / situation ${saP.situation.toString('hex')}, expected IPsec / SIT_IDENTITY_ONLY`, NotifyType.SITUATION_NOT_SUPPORTED);
      }
      const nonceI = checkNonce(rest, where);
      const ids = findPayloads(rest, PayloadType.ID);
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
      if (choice === null || policy === null) throw noProposal(where, saP, candidates, findPayload(rest, PayloadType.KE) !== undefined);
      const c: QmCommon = { host, policy, messageId: mid, spiOurs: randomSpi(crypto) };
      const mode = policy.mode ?? 'tunnel';
      const enc = choice.value.encapsulationMode === undefined ? { mode, udp: false } : decodeEncapsulationMode(choice.value.encapsulationMode)!;
      // Lifetime: accept up to ours; a longer offer is answered with RESPONDER-LIFETIME and we both use ours.
      const offeredSecs = choice.value.lifetimeSeconds ?? (choice.value.lifetimeKilobytes === undefined ? DEFAULT_IPSEC_LIFETIME_SECONDS : undefined);
      const maxSecs = policy.lifetimeSeconds ?? DEFAULT_CHILD_LIFETIME_SECONDS;
      const maxKb = policy.lifetimeKilobytes;
      const offeredKb = choice.value.lifetimeKilobytes;
      const shorterSecs = offeredSecs === undefined || offeredSecs > maxSecs;
      const shorterKb = maxKb !== undefined && (offeredKb === undefined || offeredKb > maxKb);
      const nonceR = crypto.randomBytes(NONCE_LENGTH);
      const answer: Payload[] = [
        {
          type: PayloadType.SA,
          doi: 1,
          situation: SIT_IDENTITY_ONLY,
          proposals: [{ number: choice.proposal.number, protocolId: ProtocolId.IPSEC_ESP, spi: c.spiOurs, transforms: [choice.transform] }],
        },
        { type: PayloadType.NONCE, data: nonceR },
      ];
      let gxy: Buffer | undefined;
      if (choice.ours.pfsGroup !== undefined) {
        const ke = findPayload(rest, PayloadType.KE);
        if (ke === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where}: PFS group ${choice.ours.pfsGroup} offered but no KE payload`, NotifyType.INVALID_KEY_INFORMATION);
        const dh = await makeKeyPair(crypto, policy, choice.ours.pfsGroup);
        answer.push({ type: PayloadType.KE, data: dh.publicValue });
        gxy = await computeGxy(crypto, policy, dh, ke.data, where);
      }
      if (ids.length === 2) answer.push(idCopy(ids[0]!), idCopy(ids[1]!));
      if (shorterSecs || shorterKb) {
        answer.push(notifyPayload(NotifyType.RESPONDER_LIFETIME, ProtocolId.IPSEC_ESP, c.spiOurs, encodeLifetimeAttributes(shorterSecs ? maxSecs : undefined, shorterKb ? maxKb : undefined)));
      }
      const sealed = sealProtected(crypto, sa, ExchangeType.QUICK_MODE, mid, opened.nextIv, answer, (b) => hash2(crypto, sa, mid, nonceI, b));
      const early = childSa(c, false, now, {
        chosen: choice.ours,
        spiPeer: Buffer.from(choice.proposal.spi),
        nonceI,
        nonceR,
        ...(gxy ? { gxy } : {}),
        mode: enc.mode,
        udp: enc.udp,
        localTs: ourTs,
        remoteTs: peerTs,
        lifetimeSeconds: shorterSecs ? maxSecs : offeredSecs,
        lifetimeKilobytes: shorterKb ? maxKb : offeredKb,
      });
      gxy?.fill(0);
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
    if (state instanceof QmDone || state instanceof QmFailed) return this.idle('exchange already complete');
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

/** What a Quick Mode agreed on, from which the child SA and its keys follow. */
interface Agreed {
  chosen: EspProposal;
  spiPeer: Buffer;
  nonceI: Buffer;
  nonceR: Buffer;
  gxy?: Buffer;
  mode: 'tunnel' | 'transport';
  udp: boolean;
  localTs: TrafficSelector;
  remoteTs: TrafficSelector;
  lifetimeSeconds: number;
  lifetimeKilobytes: number | undefined;
}

/** The child SA an exchange agreed on (keys derived now). */
function childSa(c: QmCommon, initiator: boolean, now: number, a: Agreed): ChildSa {
  const alg = a.chosen.algorithm as EspAlgorithm;
  const keys = deriveChildKeys(c.host.crypto, c.host.sa, alg, {
    spiIn: c.spiOurs,
    spiOut: a.spiPeer,
    nonceI: a.nonceI,
    nonceR: a.nonceR,
    ...(a.gxy ? { gxy: a.gxy } : {}),
  });
  const child: ChildSa = {
    name: c.policy.name,
    messageId: c.messageId,
    initiator,
    spiIn: c.spiOurs,
    spiOut: a.spiPeer,
    algorithm: alg,
    proposal: espProposalName(a.chosen),
    mode: a.mode,
    encapsulation: a.udp,
    inbound: keys.inbound,
    outbound: keys.outbound,
    localTs: a.localTs,
    remoteTs: a.remoteTs,
    lifetimeSeconds: a.lifetimeSeconds,
    esn: a.chosen.esn,
    establishedAt: now,
    expiresAt: now + a.lifetimeSeconds * 1000,
  };
  if (a.lifetimeKilobytes !== undefined) child.lifetimeKilobytes = a.lifetimeKilobytes;
  if (a.chosen.pfsGroup !== undefined) child.pfsGroup = a.chosen.pfsGroup;
  return child;
}

function makeKeyPair(crypto: CryptoProvider, policy: Phase2Policy, group: DhGroupId): DhPrivateKey | Promise<DhPrivateKey> {
  const g = crypto.dhGroup(group);
  return policy.asyncDh ? g.generateKeyPairAsync() : g.generateKeyPair();
}

/** g(qm)^xy for PFS (a promise only with asyncDh). */
async function computeGxy(crypto: CryptoProvider, policy: Phase2Policy, dh: DhPrivateKey, peer: Buffer, where: string): Promise<Buffer> {
  const g = crypto.dhGroup(dh.group);
  if (peer.length !== g.publicLength) throw new IkeError('INVALID_KE', `${where}: KE payload of ${peer.length} bytes, DH group ${g.id} needs ${g.publicLength}`);
  try {
    return policy.asyncDh ? await dh.computeSecretAsync(peer) : dh.computeSecret(peer);
  } catch (e) {
    throw new IkeError('INVALID_KE', `${where}: invalid DH public value (${(e as Error).message})`);
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
  const n = findPayload(rest, PayloadType.NONCE);
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
  return { type: PayloadType.ID, idType: p.idType, protocolId: p.protocolId, port: p.port, data: Buffer.from(p.data) };
}
