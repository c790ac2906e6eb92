// Phase 1 (ISAKMP SA) negotiation, sans I/O: bytes and the time come in, bytes to send, a timer deadline
// and at most one result (established or failed) come out. What Main Mode and Aggressive Mode share lives
// here: proposals, DH, nonces, SKEYID and its children, HASH_I / HASH_R, the CBC IV chain, NAT-D, vendor
// IDs, retransmission and duplicate handling. main-mode.ts and aggressive-mode.ts only order the steps.
import { cipherInfo, hashLength, type CryptoProvider, type DhGroupId, type DhPrivateKey, type HashName } from '../crypto/index.js';
import {
  ExchangeType,
  Flags,
  ISAKMP_VERSION,
  NotifyType,
  ProtocolId,
  bytesEqual,
  decodeIdPayload,
  encodeMessage,
  encodePayloadBody,
  encodePayloadsInto,
  idPayload,
  idToString,
  parseMessage,
  parsePayloads,
  payloadsLength,
  type Identity,
  type IdPayload,
  type IsakmpHeader,
  type Payload,
  type SaPayload,
} from '../isakmp/index.js';
import { endpointBytes, ZERO_COOKIE, type CookieGenerator } from './cookie.js';
import { asIkeError, IkeError, notifyFor, type IkeErrorKind } from './errors.js';
import { describeOffer, ikeOffer, ikeProposalName, matchAnswer, selectIkeProposal, type IkeProposal, type SelectionOrder } from './proposals.js';
import { DEFAULT_RETRANSMIT, Retransmitter, type RetransmitPolicy } from './retransmit.js';
import { classifyVendorIds, ourVendorIds, type PeerVendorIds } from './vendor.js';
import { notifyName, notifyPayload, phase1NotifyHint } from './notify.js';
import { compactBlock, intern, internString, RetainedIsakmpSa } from './retained.js';
import { mainModeHandle, mainModeRespond, mainModeStart } from './main-mode.js';
import { aggressiveModeHandle, aggressiveModeRespond, aggressiveModeStart } from './aggressive-mode.js';

import type { Endpoint, IsakmpSa, NatState } from './sa-types.js';

export type { Endpoint, IsakmpSa, NatState } from './sa-types.js';
export { ikev1KeylogLine, natFloat } from './sa-types.js';

/** One connection's phase 1 policy. */
export interface Phase1Policy {
  /** Connection name, carried into events. */
  name: string;
  mode: 'main' | 'aggressive';
  /** Our proposals in priority order (initiator: the offer; responder: what we accept). */
  proposals: IkeProposal[];
  psk?: Buffer;
  localId: Identity;
  /** The identity the peer must show; undefined accepts any (the PSK still has to match). */
  remoteId?: Identity;
  /** Responder: accept aggressive mode with a pre-shared key (see README: offline dictionary attack). */
  allowAggressivePsk?: boolean;
  selection?: SelectionOrder;
  /** Announce NAT-T (RFC 3947) and send NAT-D. Default true. */
  natt?: boolean;
  /**
   * Force UDP encapsulation: our NAT-D for our own address is deliberately wrong, so that both sides
   * believe we are behind a NAT and float to the NAT-T port (what strongSwan's encap=yes does).
   */
  forceEncap?: boolean;
  /** Announce DPD (RFC 3706). Default true. */
  dpd?: boolean;
  retransmit?: RetransmitPolicy;
  /** Full-length DH exponents instead of the default short ones (MODP). */
  fullLengthExponent?: boolean;
  /** Run DH on the libuv thread pool so the event loop stays free. */
  asyncDh?: boolean;
  /** Send AM message 3 encrypted (default true, as strongSwan and Cisco do; RFC 2409 5.4 shows it in the clear). Both are accepted. */
  encryptAggressiveHash?: boolean;
}

export interface Phase1Env {
  crypto: CryptoProvider;
  cookies: CookieGenerator;
  local: Endpoint;
  remote: Endpoint;
}

export interface Phase1Output {
  send: Buffer[];
  /** When the caller must call onTimer next (null: no timer). */
  timer: number | null;
  established?: IsakmpSa;
  failed?: IkeError;
}

const NONCE_LENGTH = 32;
/** Unverifiable messages remembered to recognise the peer's retransmission of one (see handle). */
const MAX_UNVERIFIED = 8;

/** What a silence most likely means, by the step we were waiting in. */
const TIMEOUT_CAUSE: Partial<Record<string, string>> = {
  I_MM_SA: 'peer unreachable: no answer to message 1',
  I_AM_SA: 'peer unreachable: no answer to message 1',
  I_MM_KE: 'no answer to message 3 (the peer may have no pre-shared key for us)',
  I_MM_AUTH: 'no answer to message 5: the peer could not verify us (most often a pre-shared key mismatch, or an identity it does not accept)',
  R_MM_SA: 'the initiator went silent after message 2',
  R_MM_KE: 'the initiator went silent after message 4',
  R_AM_SA: 'no message 3 after our message 2 (the initiator may have rejected our hash: pre-shared key mismatch?)',
};

type Step =
  | 'I_MM_SA' // MM1 sent, waiting for MM2
  | 'I_MM_KE' // MM3 sent, waiting for MM4
  | 'I_MM_AUTH' // MM5 sent, waiting for MM6
  | 'R_MM_SA' // MM2 sent, waiting for MM3
  | 'R_MM_KE' // MM4 sent, waiting for MM5
  | 'I_AM_SA' // AM1 sent, waiting for AM2
  | 'R_AM_SA' // AM2 sent, waiting for AM3
  | 'DONE'
  | 'FAILED';

/**
 * One phase 1 exchange from either side. Create with Phase1.initiate or Phase1.respond; feed it every
 * datagram whose cookies belong to it (handle) and call onTimer at the deadline it asks for. After it is
 * established it keeps answering retransmitted requests from its cache.
 */
export class Phase1 {
  step: Step;
  readonly initiator: boolean;
  cookieI: Buffer;
  cookieR: Buffer = ZERO_COOKIE;
  policy: Phase1Policy;
  proposal: IkeProposal | null = null;
  /** Body of the initiator's SA payload (SAi_b), hashed into HASH_I and HASH_R. */
  saiBody: Buffer | null = null;
  dh: DhPrivateKey | null = null;
  gxi: Buffer | null = null;
  gxr: Buffer | null = null;
  nonceI: Buffer | null = null;
  nonceR: Buffer | null = null;
  skeyid: Buffer | null = null;
  skeyidD: Buffer | null = null;
  skeyidA: Buffer | null = null;
  skeyidE: Buffer | null = null;
  encryptionKey: Buffer | null = null;
  iv: Buffer | null = null;
  peerVendorIds: PeerVendorIds = { natt: null, dpd: false, xauth: false, unity: false, fragmentation: false };
  nat: NatState = { version: null, localBehindNat: false, remoteBehindNat: false };
  peerId: Identity | null = null;
  /** Aggressive mode responder: the initiator's ID from message 1, verified with HASH_I in message 3. */
  pendingPeerId: IdPayload | null = null;
  established: IsakmpSa | null = null;
  private retransmitter: Retransmitter;
  /** The last message we received and our answer to it: a retransmitted request gets the same answer. */
  private lastReceived: Buffer | null = null;
  private lastReply: Buffer | null = null;
  private busy = false;
  /** Messages that failed decryption / HASH verification and were ignored (see handle). */
  private unverified: Buffer[] = [];

  /** The fields a step may set before its HASH is verified. */
  private snapshot() {
    return {
      cookieR: this.cookieR, proposal: this.proposal, dh: this.dh, gxi: this.gxi, gxr: this.gxr, nonceI: this.nonceI, nonceR: this.nonceR,
      skeyid: this.skeyid, skeyidD: this.skeyidD, skeyidA: this.skeyidA, skeyidE: this.skeyidE, encryptionKey: this.encryptionKey, iv: this.iv,
      peerVendorIds: this.peerVendorIds, nat: { ...this.nat }, peerId: this.peerId,
    };
  }

  private restore(s: ReturnType<Phase1['snapshot']>): void {
    Object.assign(this, s);
  }

  private constructor(
    readonly env: Phase1Env,
    policy: Phase1Policy,
    initiator: boolean,
    cookieI: Buffer,
    step: Step,
  ) {
    this.policy = policy;
    this.initiator = initiator;
    this.cookieI = cookieI;
    this.step = step;
    this.retransmitter = new Retransmitter(policy.retransmit ?? DEFAULT_RETRANSMIT);
  }

  /** The responder settles on one of the candidate connections once it has read the offer. */
  usePolicy(policy: Phase1Policy): void {
    this.policy = policy;
    this.retransmitter = new Retransmitter(policy.retransmit ?? DEFAULT_RETRANSMIT);
  }

  get crypto(): CryptoProvider {
    return this.env.crypto;
  }

  /** Starts an exchange as initiator: returns the machine and message 1. */
  static async initiate(env: Phase1Env, policy: Phase1Policy, now: number): Promise<{ phase1: Phase1; out: Phase1Output }> {
    const cookieI = env.cookies.make(now, env.local, env.remote);
    if (policy.mode === 'aggressive') {
      const groups = new Set(policy.proposals.map((p) => p.group));
      if (groups.size !== 1) {
        throw new IkeError(
          'POLICY',
          `connection '${policy.name}': aggressive mode can offer only one DH group (the KE payload travels in message 1), but the proposals use ${[...groups].join(', ')}`,
        );
      }
    }
    if (!policy.psk) throw new IkeError('NO_PSK', `connection '${policy.name}': no pre-shared key configured for peer ${policy.remoteId ? idToString(policy.remoteId) : env.remote.address}`);
    const p = new Phase1(env, policy, true, cookieI, policy.mode === 'main' ? 'I_MM_SA' : 'I_AM_SA');
    const msg = policy.mode === 'main' ? mainModeStart(p) : await aggressiveModeStart(p);
    return { phase1: p, out: p.request(msg, now) };
  }

  /**
   * A message 1 from a peer with no SA yet. `candidates` are the connections whose remote matches the
   * peer's address, in priority order. Returns no machine when the exchange fails at once (nothing is kept);
   * `out` then carries the error and the notify to send.
   */
  static async respond(env: Phase1Env, candidates: readonly Phase1Policy[], message: Buffer, now: number): Promise<{ phase1: Phase1 | null; out: Phase1Output }> {
    const parsed = parseMessage(message);
    if (!parsed.ok) return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `message 1 from ${env.remote.address}: ${parsed.error.message}`)) };
    if ('encrypted' in parsed.value) {
      return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `message 1 from ${env.remote.address} is encrypted`)) };
    }
    const { header, payloads } = parsed.value;
    if (!bytesEqual(header.responderCookie, ZERO_COOKIE) || header.messageId !== 0) {
      return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `message 1 from ${env.remote.address} has a responder cookie or message ID set`)) };
    }
    const mode = header.exchangeType === ExchangeType.IDENTITY_PROTECTION ? 'main' : header.exchangeType === ExchangeType.AGGRESSIVE ? 'aggressive' : null;
    if (mode === null) {
      return { phase1: null, out: failedOut(new IkeError('PAYLOAD_MALFORMED', `exchange type ${header.exchangeType} from ${env.remote.address} does not start a phase 1`)) };
    }
    const usable = candidates.filter((c) => c.mode === mode);
    if (usable.length === 0) {
      const other = candidates.length > 0 ? ` (configured: ${candidates.map((c) => `${c.name}=${c.mode}`).join(', ')})` : '';
      const err = candidates.length === 0
        ? new IkeError('NO_PSK', `no connection (and so no pre-shared key) for peer ${env.remote.address}`, NotifyType.NO_PROPOSAL_CHOSEN)
        : new IkeError('POLICY', `peer ${env.remote.address} started ${mode} mode, but no connection for it uses ${mode} mode${other}`, NotifyType.NO_PROPOSAL_CHOSEN);
      return { phase1: null, out: refuse(env, header, err, now) };
    }
    const p = new Phase1(env, usable[0]!, false, Buffer.from(header.initiatorCookie), mode === 'main' ? 'R_MM_SA' : 'R_AM_SA');
    p.cookieR = env.cookies.make(now, env.local, env.remote, header.initiatorCookie);
    p.lastReceived = Buffer.from(message);
    try {
      const reply = mode === 'main' ? mainModeRespond(p, usable, payloads) : await aggressiveModeRespond(p, usable, payloads, now);
      return { phase1: p, out: p.reply(reply, now) };
    } catch (e) {
      const err = asIkeError(e);
      return { phase1: null, out: refuse(env, header, err, now, p.cookieR) };
    }
  }

  /** A datagram for this exchange (its cookies). */
  async handle(message: Buffer, now: number): Promise<Phase1Output> {
    if (this.step === 'FAILED') return this.idle();
    if (this.lastReceived !== null && message.equals(this.lastReceived)) {
      // A retransmission of what we already answered: same answer, no new computation.
      return { send: this.lastReply ? [this.lastReply] : [], timer: this.retransmitter.deadline };
    }
    if (this.step === 'DONE' || this.busy) return this.idle();
    const parsed = parseMessage(message);
    if (!parsed.ok) return this.idle(); // garbage or a forgery: the genuine message may still come
    const header = parsed.value.header;
    if (!bytesEqual(header.initiatorCookie, this.cookieI)) return this.idle();
    if (header.exchangeType === ExchangeType.INFORMATIONAL) return this.peerNotify(parsed.value);
    if (header.messageId !== 0) return this.idle();
    const expected = this.policy.mode === 'main' ? ExchangeType.IDENTITY_PROTECTION : ExchangeType.AGGRESSIVE;
    if (header.exchangeType !== expected) return this.idle();
    this.busy = true;
    const before = this.snapshot();
    try {
      const r = this.policy.mode === 'main' ? await mainModeHandle(this, parsed.value, now) : await aggressiveModeHandle(this, parsed.value, now);
      if (r === null) return this.idle();
      this.lastReceived = Buffer.from(message);
      return this.advance(r, now);
    } catch (e) {
      const err = asIkeError(e);
      // Until its HASH verifies, a message may be a forgery by anyone who saw the cookies (one that does not
      // decrypt, a bad HASH, a mangled SA or KE): it is ignored, state as before, so that the genuine message
      // can still complete the exchange. The same bytes again are the peer retransmitting its message: then
      // the failure is real (for a bad HASH: "pre-shared key mismatch") and the exchange fails. Failures that
      // only an authenticated message can cause (a wrong identity) fail at once.
      const unauthenticated = err.kind !== 'AUTHENTICATION_FAILED' && err.kind !== 'POLICY' && err.kind !== 'INTERNAL';
      if (unauthenticated && !this.unverified.some((m) => m.equals(message))) {
        if (this.unverified.length >= MAX_UNVERIFIED) this.unverified.shift();
        this.unverified.push(Buffer.from(message));
        this.restore(before);
        return this.idle();
      }
      return this.fail(err, header, now);
    } finally {
      this.busy = false;
    }
  }

  /** The timer the last output asked for has expired. */
  onTimer(now: number): Phase1Output {
    const due = this.retransmitter.due(now);
    if (due === null) return this.idle();
    if (due === 'timeout') {
      const waited = Math.round(this.retransmitter.totalMs() / 1000);
      const what = TIMEOUT_CAUSE[this.step] ?? `no answer in step ${this.step}`;
      this.step = 'FAILED';
      this.wipe();
      return { send: [], timer: null, failed: new IkeError('TIMEOUT', `${this.policy.name}: ${what} from ${this.env.remote.address}:${this.env.remote.port} after ${this.policy.retransmit?.tries ?? DEFAULT_RETRANSMIT.tries} retransmissions (${waited} s)`) };
    }
    return { send: [due], timer: this.retransmitter.deadline };
  }

  // ---- shared building blocks used by the two modes ----

  header(exchangeType: number, flags = 0): IsakmpHeader {
    return {
      initiatorCookie: this.cookieI,
      responderCookie: this.cookieR,
      nextPayload: 0,
      version: ISAKMP_VERSION,
      exchangeType,
      flags,
      messageId: 0,
      length: 0,
    };
  }

  /** Our SA payload offering every configured proposal (initiator). Records SAi_b. */
  offer(): SaPayload {
    const sa: SaPayload = { type: 1, doi: 1, situation: SIT_IDENTITY_ONLY, proposals: [ikeOffer(this.policy.proposals)] };
    this.saiBody = encodePayloadBody(sa);
    return sa;
  }

  /**
   * Responder: settle on the first candidate connection that accepts one of the offered proposals, and
   * return the SA payload that answers with it (the chosen transform, echoed unchanged).
   */
  acceptOffer(candidates: readonly Phase1Policy[], payloads: readonly Payload[], where: string): SaPayload {
    const sa = payloads.find((x): x is SaPayload => x.type === 1);
    if (sa === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no SA payload`);
    for (const c of candidates) {
      const choice = selectIkeProposal(sa.proposals, c.proposals, c.selection ?? 'responder');
      if (choice === null) continue;
      if (!c.psk) throw new IkeError('NO_PSK', `no pre-shared key configured for peer ${this.env.remote.address} (connection '${c.name}')`);
      this.usePolicy(c);
      this.proposal = choice.value;
      this.saiBody = Buffer.from(sa.raw!.subarray(4));
      this.notePeerVendorIds(payloads);
      return { type: 1, doi: sa.doi, situation: sa.situation, proposals: [{ ...choice.proposal, transforms: [choice.transform] }] };
    }
    const ours = candidates.flatMap((c) => c.proposals.map(ikeProposalName)).join(', ');
    throw new IkeError('NO_PROPOSAL_CHOSEN', `no matching phase 1 proposal for ${this.env.remote.address}: peer offered [${describeOffer(sa.proposals)}], we accept [${ours}]`);
  }

  /** Initiator: the responder's answer must be one transform we offered; takes its cookie and vendor IDs. */
  takeAnswer(header: IsakmpHeader, payloads: readonly Payload[], where: string): IkeProposal {
    const sa = payloads.find((x): x is SaPayload => x.type === 1);
    const t = sa?.proposals[0]?.transforms[0];
    if (sa === undefined || t === undefined || sa.proposals.length !== 1 || sa.proposals[0]!.transforms.length !== 1) {
      throw new IkeError('PAYLOAD_MALFORMED', `${where} must carry exactly one chosen transform`);
    }
    const chosen = matchAnswer(t, this.policy.proposals);
    if (chosen === null) throw new IkeError('NO_PROPOSAL_CHOSEN', `responder ${this.env.remote.address} chose a proposal we did not offer [${describeOffer(sa.proposals)}]`);
    this.cookieR = Buffer.from(header.responderCookie);
    this.proposal = chosen;
    this.notePeerVendorIds(payloads);
    return chosen;
  }

  vendorIds(): Payload[] {
    return ourVendorIds({ natt: this.policy.natt ?? true, dpd: this.policy.dpd ?? true });
  }

  notePeerVendorIds(payloads: readonly Payload[]): void {
    this.peerVendorIds = classifyVendorIds(payloads);
    if (this.policy.natt ?? true) this.nat.version = this.peerVendorIds.natt;
  }

  /**
   * Our key pair for the group; returns its public value. A promise only with asyncDh (the pool does the
   * work): callers await only then, so the synchronous path costs no promise and no microtask turn.
   */
  makeKeyPair(group: DhGroupId): Buffer | Promise<Buffer> {
    const g = this.crypto.dhGroup(group);
    const options = { fullLengthExponent: this.policy.fullLengthExponent ?? false };
    if (this.policy.asyncDh) return g.generateKeyPairAsync(options).then((k) => (this.dh = k).publicValue);
    this.dh = g.generateKeyPair(options);
    return this.dh.publicValue;
  }

  makeNonce(): Buffer {
    return this.crypto.randomBytes(NONCE_LENGTH);
  }

  /** Checks a KE payload's length for the group; the value itself is validated in computeSecret. */
  checkKe(data: Buffer | undefined, group: DhGroupId, where: string): Buffer {
    if (data === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no KE payload`);
    const g = this.crypto.dhGroup(group);
    if (data.length !== g.publicLength) {
      throw new IkeError('INVALID_KE', `${where}: KE payload of ${data.length} bytes, DH group ${group} needs ${g.publicLength}`);
    }
    return Buffer.from(data);
  }

  checkNonce(data: Buffer | undefined, where: string): Buffer {
    // RFC 2409 section 5: nonces are 8 to 256 bytes.
    if (data === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no NONCE payload`);
    if (data.length < 8 || data.length > 256) throw new IkeError('PAYLOAD_MALFORMED', `${where}: nonce of ${data.length} bytes (RFC 2409 allows 8-256)`);
    return Buffer.from(data);
  }

  /** g^xy, SKEYID, SKEYID_d/_a/_e, Ka and the phase 1 IV, once both KE and nonces are known (a promise only with asyncDh). */
  deriveKeys(): void | Promise<void> {
    const peer = this.initiator ? this.gxr! : this.gxi!;
    if (this.policy.asyncDh) {
      return this.dh!.computeSecretAsync(peer).then(
        (gxy) => this.deriveFrom(gxy),
        (e) => {
          throw this.invalidKe(e);
        },
      );
    }
    let gxy: Buffer;
    try {
      gxy = this.dh!.computeSecret(peer);
    } catch (e) {
      throw this.invalidKe(e);
    }
    this.deriveFrom(gxy);
  }

  private invalidKe(e: unknown): IkeError {
    return new IkeError('INVALID_KE', `invalid DH public value from ${this.env.remote.address}: ${(e as Error).message}`);
  }

  private deriveFrom(gxy: Buffer): void {
    const p = this.proposal!;
    const info = cipherInfo(p.encryption);
    const k = this.crypto.phase1KeysPsk(
      p.hash,
      { psk: this.policy.psk!, nonceI: this.nonceI!, nonceR: this.nonceR!, gxy, cookieI: this.cookieI, cookieR: this.cookieR, gxi: this.gxi!, gxr: this.gxr! },
      info.keyLength,
      info.blockSize,
    );
    this.skeyid = k.skeyid;
    this.skeyidD = k.skeyidD;
    this.skeyidA = k.skeyidA;
    this.skeyidE = k.skeyidE;
    this.encryptionKey = k.encryptionKey;
    this.iv = k.iv;
    gxy.fill(0);
    this.dh = null;
  }

  /** HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b); HASH_R swaps the pairs and uses IDir_b. */
  authHash(ofInitiator: boolean, idBody: Buffer): Buffer {
    return this.crypto.prf(this.proposal!.hash, this.skeyid!, ...this.authHashInput(ofInitiator, idBody));
  }

  /** Does `got` equal authHash(ofInitiator, idBody)? Compared in constant time, inside the provider. */
  authHashEquals(ofInitiator: boolean, idBody: Buffer, got: Buffer): boolean {
    return this.crypto.prfEqual(this.proposal!.hash, this.skeyid!, got, ...this.authHashInput(ofInitiator, idBody));
  }

  private authHashInput(ofInitiator: boolean, idBody: Buffer): Buffer[] {
    return ofInitiator
      ? [this.gxi!, this.gxr!, this.cookieI, this.cookieR, this.saiBody!, idBody]
      : [this.gxr!, this.gxi!, this.cookieR, this.cookieI, this.saiBody!, idBody];
  }

  ourIdPayload(): IdPayload {
    return idPayload(this.policy.localId);
  }

  /** Verifies the peer's ID (if one is configured) and its HASH, in constant time. */
  verifyPeer(id: IdPayload | undefined, hash: Buffer | undefined, where: string): void {
    if (id === undefined || hash === undefined) {
      throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch: ${where} has no ${id === undefined ? 'ID' : 'HASH'} payload after decryption`);
    }
    if (!this.authHashEquals(!this.initiator, id.raw!.subarray(4), hash)) {
      throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch: HASH_${this.initiator ? 'R' : 'I'} from ${this.env.remote.address} does not verify (connection '${this.policy.name}')`);
    }
    const decoded = decodeIdPayload(id);
    if (!decoded.ok) throw new IkeError('AUTHENTICATION_FAILED', `peer identity: ${decoded.error.message}`, NotifyType.INVALID_ID_INFORMATION);
    if (this.policy.remoteId !== undefined && !sameIdentity(this.policy.remoteId, id)) {
      throw new IkeError(
        'AUTHENTICATION_FAILED',
        `peer ${this.env.remote.address} authenticated as '${idToString(decoded.value)}' but connection '${this.policy.name}' expects '${idToString(this.policy.remoteId)}'`,
        NotifyType.INVALID_ID_INFORMATION,
      );
    }
    this.peerId = decoded.value;
  }

  /** NAT-D payloads: hash(CKY-I | CKY-R | IP | port), first the peer's (destination) endpoint, then ours. */
  natdPayloads(): Payload[] {
    if (this.nat.version === null) return [];
    const type = this.nat.version === 'rfc3947' ? 20 : 130;
    const ours = this.policy.forceEncap ? this.crypto.randomBytes(hashLength(this.proposal!.hash)) : this.natdHash(this.env.local);
    return [
      { type, data: this.natdHash(this.env.remote) },
      { type, data: ours },
    ];
  }

  private natdHash(e: Endpoint): Buffer {
    // Both hashes are needed twice per side (our NAT-D payloads and the check of the peer's), with the same
    // inputs: remember them for the cookies, hash and endpoints they were computed with.
    const h = this.proposal!.hash;
    let c = this.natdCache;
    if (c === null || c.cookieR !== this.cookieR || c.hash !== h || c.local !== this.env.local || c.remote !== this.env.remote) {
      const natd = (x: Endpoint) => this.crypto.hash(h, this.cookieI, this.cookieR, endpointBytes(x));
      c = this.natdCache = { cookieR: this.cookieR, hash: h, local: this.env.local, remote: this.env.remote, ofLocal: natd(this.env.local), ofRemote: natd(this.env.remote) };
    }
    if (e === this.env.local) return c.ofLocal;
    if (e === this.env.remote) return c.ofRemote;
    return this.crypto.hash(h, this.cookieI, this.cookieR, endpointBytes(e));
  }
  private natdCache: { cookieR: Buffer; hash: HashName; local: Endpoint; remote: Endpoint; ofLocal: Buffer; ofRemote: Buffer } | null = null;

  /** Reads the peer's NAT-D payloads (RFC 3947 3.2): the first hashes us as the peer sees us, the rest the peer. */
  detectNat(payloads: readonly Payload[]): void {
    if (this.nat.version === null) return;
    const natd = payloads.filter((p) => p.type === 20 || p.type === 130) as { data: Buffer }[];
    if (natd.length < 2) return;
    const ours = this.natdHash(this.env.local);
    const theirs = this.natdHash(this.env.remote);
    this.nat.localBehindNat = this.policy.forceEncap === true || !bytesEqual(natd[0]!.data, ours);
    this.nat.remoteBehindNat = !natd.slice(1).some((p) => bytesEqual(p.data, theirs));
  }

  /** Encrypts a phase 1 message body with the running IV and advances the chain. */
  encrypt(header: IsakmpHeader, payloads: Payload[]): Buffer {
    const info = cipherInfo(this.proposal!.encryption);
    const length = payloadsLength(payloads);
    const padded = Buffer.allocUnsafe(Math.ceil(length / info.blockSize) * info.blockSize);
    padded.fill(0, encodePayloadsInto(padded, 0, payloads));
    const ct = this.crypto.cbcEncrypt(this.proposal!.encryption, this.encryptionKey!, this.iv!, padded);
    this.iv = Buffer.from(ct.subarray(ct.length - info.blockSize));
    return encodeMessage({ header: { ...header, nextPayload: payloads[0]!.type, flags: header.flags | Flags.ENCRYPTION }, encrypted: ct });
  }

  /**
   * Decrypts a phase 1 body. The IV only advances once the caller commits (a forged message must not
   * break the chain for the genuine one): returns the payloads and the IV to commit.
   */
  decrypt(header: IsakmpHeader, body: Buffer, where: string): { payloads: Payload[]; nextIv: Buffer } {
    const info = cipherInfo(this.proposal!.encryption);
    if (body.length === 0 || body.length % info.blockSize !== 0) {
      throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch or corrupted message: ${where} has ${body.length} encrypted bytes, not a multiple of the ${info.blockSize}-byte block`);
    }
    const plain = this.crypto.cbcDecrypt(this.proposal!.encryption, this.encryptionKey!, this.iv!, body);
    const r = parsePayloads(header.nextPayload, plain, 28, { trailing: 'padding', blockSize: info.blockSize });
    if (!r.ok) throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch: ${where} does not decrypt to valid payloads (${r.error.message})`);
    return { payloads: r.value, nextIv: Buffer.from(body.subarray(body.length - info.blockSize)) };
  }

  /** The phase is complete: build the SA object the rest of the engine uses. */
  finish(now: number): IsakmpSa {
    const p = this.proposal!;
    this.step = 'DONE';
    // The SA lives for hours: its bytes go into one allocation of their own (see retained.ts), the pooled
    // or separately allocated originals are wiped, and the machine uses the compact copies from now on.
    const hashLength = this.skeyidD!.length;
    const keyLength = this.encryptionKey!.length;
    const block = compactBlock([this.cookieI, this.cookieR, this.skeyidD!, this.skeyidA!, this.skeyidE!, this.encryptionKey!, this.iv!]);
    for (const b of [this.skeyidD, this.skeyidA, this.skeyidE, this.encryptionKey, this.iv]) b!.fill(0);
    const nat = this.nat;
    const v = this.peerVendorIds;
    const sa = new RetainedIsakmpSa(
      {
        name: this.policy.name,
        initiator: this.initiator,
        mode: this.policy.mode,
        local: this.env.local,
        remote: this.env.remote,
        localId: this.policy.localId,
        remoteId: this.peerId!,
        // shared by every SA with the same values (frozen: nobody may change what the others see)
        proposal: intern('ikeProposal', `${p.encryption}/${p.hash}/${p.group}/${p.authMethod}/${p.lifetimeSeconds}`, { ...p }),
        algorithms: internString(ikeProposalName(p)),
        nat: intern('nat', `${nat.version}/${nat.localBehindNat}/${nat.remoteBehindNat}`, { ...nat }),
        peerVendorIds: intern('vendorIds', `${v.natt}/${v.dpd}/${v.xauth}/${v.unity}/${v.fragmentation}`, { ...v }),
        establishedAt: now,
        expiresAt: now + p.lifetimeSeconds * 1000,
      },
      block,
      hashLength,
      keyLength,
    );
    this.cookieI = sa.cookieI;
    this.cookieR = sa.cookieR;
    this.skeyidD = sa.skeyidD;
    this.skeyidA = sa.skeyidA;
    this.skeyidE = sa.skeyidE;
    this.encryptionKey = sa.encryptionKey;
    this.iv = sa.lastIv;
    this.established = sa;
    // SKEYID itself is not needed past phase 1; neither are the DH values, nonces and SAi_b (the SA object
    // keeps what phase 2 needs): a gateway holds many established SAs.
    this.skeyid?.fill(0);
    this.skeyid = null;
    this.gxi = this.gxr = this.nonceI = this.nonceR = this.saiBody = null;
    this.natdCache = null;
    this.pendingPeerId = null;
    this.unverified = [];
    return sa;
  }

  // ---- outputs ----

  /** We send a request and wait for the answer (retransmitted until it comes). */
  request(message: Buffer, now: number): Phase1Output {
    this.lastReply = message;
    this.retransmitter.arm(message, now);
    return { send: [message], timer: this.retransmitter.deadline };
  }

  /** We answer a request; a repeat of that request gets this same answer. */
  reply(message: Buffer, now: number, awaitMore = true): Phase1Output {
    this.lastReply = message;
    // The responder also retransmits while it waits, so that a lost last message of the initiator is
    // re-sent (the initiator answers our repeat from its cache).
    if (awaitMore) this.retransmitter.arm(message, now);
    else this.retransmitter.clear();
    return { send: [message], timer: this.retransmitter.deadline };
  }

  private advance(r: StepResult, now: number): Phase1Output {
    if (r.established) {
      const sa = this.finish(now);
      this.lastReply = r.send ?? null;
      this.retransmitter.clear();
      return { send: r.send ? [r.send] : [], timer: null, established: sa };
    }
    if (r.send === undefined) return this.idle();
    return r.expectReply === false ? this.reply(r.send, now, false) : this.initiator ? this.request(r.send, now) : this.reply(r.send, now);
  }

  private idle(): Phase1Output {
    return { send: [], timer: this.retransmitter.deadline };
  }

  private peerNotify(m: { header: IsakmpHeader; payloads?: Payload[] }): Phase1Output {
    // An unauthenticated notify during phase 1. Only error notifies in the clear are read; we stop, since
    // retrying cannot help once the peer refused (strongSwan does the same).
    const payloads = m.payloads ?? [];
    const n = payloads.find((p) => p.type === 11);
    if (n === undefined || n.type !== 11 || n.notifyType >= 8192) return this.idle();
    this.step = 'FAILED';
    this.retransmitter.clear();
    this.wipe();
    return {
      send: [],
      timer: null,
      failed: new IkeError('PEER_NOTIFY', `peer ${this.env.remote.address} refused: ${notifyName(n.notifyType)}${phase1NotifyHint(n.notifyType)}`),
    };
  }

  private fail(err: IkeError, header: IsakmpHeader, now: number): Phase1Output {
    this.step = 'FAILED';
    this.retransmitter.clear();
    this.wipe();
    const out = refuse(this.env, header, err, now, this.cookieR);
    return out;
  }

  private wipe(): void {
    for (const b of [this.skeyid, this.skeyidD, this.skeyidA, this.skeyidE, this.encryptionKey]) b?.fill(0);
    this.dh = null;
  }
}

/** What a mode's step returns: the message to send and whether the exchange is complete. */
export interface StepResult {
  send?: Buffer;
  established?: boolean;
  /** false: this message ends our part (nothing to wait for). */
  expectReply?: boolean;
}

const SIT_IDENTITY_ONLY = Buffer.from([0, 0, 0, 1]);

function sameIdentity(expected: Identity, got: IdPayload): boolean {
  const e = idPayload(expected);
  return e.idType === got.idType && e.data.equals(got.data);
}

function failedOut(err: IkeError): Phase1Output {
  return { send: [], timer: null, failed: err };
}

/**
 * The failure's notify, in an unencrypted Informational exchange (RFC 2408 5.x: errors before the keys are
 * trusted go in the clear), and the error value.
 */
function refuse(env: Phase1Env, header: IsakmpHeader, err: IkeError, now: number, cookieR?: Buffer): Phase1Output {
  void now;
  const notifyType = err.notifyType ?? notifyFor(err.kind as IkeErrorKind);
  if (notifyType === undefined) return failedOut(err);
  const msg = encodeMessage({
    header: {
      initiatorCookie: header.initiatorCookie,
      responderCookie: cookieR ?? header.responderCookie,
      nextPayload: 0,
      version: ISAKMP_VERSION,
      exchangeType: ExchangeType.INFORMATIONAL,
      flags: 0,
      messageId: Number(env.crypto.randomBytes(4).readUInt32BE(0)) || 1,
      length: 0,
    },
    payloads: [notifyPayload(notifyType, ProtocolId.ISAKMP, Buffer.concat([header.initiatorCookie, cookieR ?? header.responderCookie]))],
  });
  return { send: [msg], timer: null, failed: err };
}
