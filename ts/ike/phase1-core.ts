// What Main Mode and Aggressive Mode share (strongSwan's phase1.c): the policy and environment types, and
// the steps both exchanges take in a different order: proposals, DH, nonces, SKEYID and its children,
// HASH_I / HASH_R, the CBC IV chain, NAT-D, vendor IDs and the finished SA. Everything here is a function of
// its arguments that returns what it computed; nothing is stored. A state (main-mode.ts, aggressive-mode.ts)
// computes its successor's fields into locals with these and builds the next state only once the message
// has verified, so a forged message leaves the current state as it was.
import type { KeyObject } from 'node:crypto';
import { cipherInfo, hashLength, type CryptoProvider, type DhGroupId, type DhPrivateKey, type HashName } from '../crypto/index.js';
import {
  Flags,
  ISAKMP_VERSION,
  NotifyType,
  PayloadType,
  bytesEqual,
  decodeIdPayload,
  encodeMessage,
  encodePayloadBody,
  encodePayloadsInto,
  findPayload,
  idPayload,
  idToString,
  parsePayloads,
  payloadsLength,
  type EncryptedMessage,
  type Identity,
  type IdPayload,
  type IsakmpHeader,
  type NatDPayload,
  type ParsedMessage,
  type Payload,
  type SaPayload,
} from '../isakmp/index.js';
import { endpointBytes, type CookieGenerator } from './cookie.js';
import { IkeError } from './errors.js';
import { describeOffer, ikeOffer, ikeProposalName, matchAnswer, selectIkeProposal, type IkeProposal, type SelectionOrder } from './proposals.js';
import { compactBlock, intern, internString, RetainedIsakmpSa } from './retained.js';
import type { RetransmitPolicy } from './retransmit.js';
import type { Endpoint, IsakmpSa, NatState } from './sa-types.js';
import { answerVendorIds, classifyVendorIds, ourVendorIds, type PeerVendorIds } from './vendor.js';
import { authHashAlgorithm, usesPsk, weSign } from './signatures.js';
import type { ParsedCert, TrustStore } from './certificates.js';

/** A connection's certificate authentication: what we sign with and send, and what we trust in the peer. */
export interface CertAuth {
  /** Our certificate, the intermediate CA certificates sent after it, and its private key (absent: a hybrid client). */
  readonly cert?: ParsedCert;
  readonly chain: readonly ParsedCert[];
  readonly key?: KeyObject;
  readonly trust: TrustStore;
}

/** One connection's phase 1 policy. */
export interface Phase1Policy {
  /** Connection name, carried into events. */
  name: string;
  mode: 'main' | 'aggressive';
  /** Our proposals in priority order (initiator: the offer; responder: what we accept). */
  proposals: IkeProposal[];
  psk?: Buffer;
  /** Certificates and keys for the signature methods (auth-cert.ts); absent for a PSK-only connection. */
  certs?: CertAuth;
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
  /** Announce IKE fragmentation (the FRAGMENTATION vendor ID); the gateway cuts and reassembles. Default false. */
  fragmentation?: boolean;
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

/** A phase 1 message as a state receives it: parsed, its cookies and exchange type already checked. */
export type Phase1Message = ParsedMessage | EncryptedMessage;

/**
 * What a state's handle returns for a message it accepted: the next state and what to send. `expectReply`
 * false: this message ends our part (nothing to wait for). A state whose message completes the exchange
 * returns a Phase1Done.
 */
export interface Transition<S> {
  next: S;
  send?: Buffer;
  expectReply?: boolean;
}

/** What every step of an exchange knows. */
export interface Phase1Base {
  readonly env: Phase1Env;
  readonly policy: Phase1Policy;
  readonly initiator: boolean;
  readonly cookieI: Buffer;
  /** Zeros until the initiator has read message 2. */
  readonly cookieR: Buffer;
}

/** After the SA payloads: one proposal agreed on. */
export interface Negotiated extends Phase1Base {
  readonly proposal: IkeProposal;
  /** Body of the initiator's SA payload (SAi_b), hashed into HASH_I and HASH_R. */
  readonly saiBody: Buffer;
  readonly peerVendorIds: PeerVendorIds;
  /** NAT-T version from the vendor IDs; the behind-NAT flags once NAT-D has been read. */
  readonly nat: NatState;
}

/**
 * The context once the SA payloads are read (message 1 at the responder, message 2 at the initiator): our
 * side from `c`, the agreed rest from the exchange. One literal, so every exchange's context has one shape.
 */
export function negotiated(
  c: Phase1Base,
  policy: Phase1Policy,
  cookieR: Buffer,
  saiBody: Buffer,
  agreed: { proposal: IkeProposal; peerVendorIds: PeerVendorIds; nat: NatState },
): Negotiated {
  return {
    env: c.env,
    policy,
    initiator: c.initiator,
    cookieI: c.cookieI,
    cookieR,
    proposal: agreed.proposal,
    saiBody,
    peerVendorIds: agreed.peerVendorIds,
    nat: agreed.nat,
  };
}

/** SKEYID and what derives from it. */
export interface Phase1Keys {
  readonly skeyid: Buffer;
  readonly skeyidD: Buffer;
  readonly skeyidA: Buffer;
  readonly skeyidE: Buffer;
  readonly encryptionKey: Buffer;
}

/** After KE and nonces: the keys, and the DH public values HASH_I / HASH_R cover. */
export interface Keyed extends Negotiated {
  readonly gxi: Buffer;
  readonly gxr: Buffer;
  readonly keys: Phase1Keys;
  /** The CBC IV of the next encrypted message (sent or received). */
  readonly iv: Buffer;
}

/**
 * The keyed context after KE: built field by field (not by spreading the negotiated one), so that every
 * Keyed has one shape and building it stays cheap.
 */
export function keyed(n: Negotiated, nat: NatState, gxi: Buffer, gxr: Buffer, keys: Phase1Keys, iv: Buffer): Keyed {
  return {
    env: n.env,
    policy: n.policy,
    initiator: n.initiator,
    cookieI: n.cookieI,
    cookieR: n.cookieR,
    proposal: n.proposal,
    saiBody: n.saiBody,
    peerVendorIds: n.peerVendorIds,
    nat,
    gxi,
    gxr,
    keys,
    iv,
  };
}

/** The exchange is complete: the SA, and what the facade still answers retransmissions with. */
export class Phase1Done {
  readonly step = 'DONE' as const;
  constructor(
    readonly sa: IsakmpSa,
    readonly policy: Phase1Policy,
  ) {}
  get cookieI(): Buffer {
    return this.sa.cookieI;
  }
  get cookieR(): Buffer {
    return this.sa.cookieR;
  }
  get nat(): NatState {
    return this.sa.nat;
  }
}

const NONCE_LENGTH = 32;
const SIT_IDENTITY_ONLY = Buffer.from([0, 0, 0, 1]);

export function phase1Header(b: Pick<Phase1Base, 'cookieI' | 'cookieR'>, exchangeType: number, flags = 0): IsakmpHeader {
  return { initiatorCookie: b.cookieI, responderCookie: b.cookieR, nextPayload: 0, version: ISAKMP_VERSION, exchangeType, flags, messageId: 0, length: 0 };
}

/** Our SA payload offering every configured proposal (initiator), and its body SAi_b. */
export function offer(policy: Phase1Policy): { sa: SaPayload; saiBody: Buffer } {
  const sa: SaPayload = { type: PayloadType.SA, doi: 1, situation: SIT_IDENTITY_ONLY, proposals: [ikeOffer(policy.proposals)] };
  return { sa, saiBody: encodePayloadBody(sa) };
}

export function vendorIds(policy: Phase1Policy): Payload[] {
  return ourVendorIds(vendorOptions(policy));
}

/** The responder's vendor IDs: what the peer's own announce calls for (answerVendorIds). */
export function answerVendors(policy: Phase1Policy, peer: PeerVendorIds): Payload[] {
  return answerVendorIds(vendorOptions(policy), peer);
}

function vendorOptions(policy: Phase1Policy): { natt: boolean; dpd: boolean; fragmentation: boolean } {
  return { natt: policy.natt ?? true, dpd: policy.dpd ?? true, fragmentation: policy.fragmentation ?? false };
}

/** The peer's vendor IDs, and the NAT-T version they agree on (no NAT seen yet). */
function peerVendors(policy: Phase1Policy, payloads: readonly Payload[]): { peerVendorIds: PeerVendorIds; nat: NatState } {
  const peerVendorIds = classifyVendorIds(payloads);
  return { peerVendorIds, nat: { version: (policy.natt ?? true) ? peerVendorIds.natt : null, localBehindNat: false, remoteBehindNat: false } };
}

/**
 * Responder: settle on the first candidate connection that accepts one of the offered proposals, and
 * the SA payload that answers with it (the chosen transform, echoed unchanged).
 */
export function acceptOffer(
  env: Phase1Env,
  candidates: readonly Phase1Policy[],
  payloads: readonly Payload[],
  where: string,
): { policy: Phase1Policy; proposal: IkeProposal; saiBody: Buffer; answer: SaPayload; peerVendorIds: PeerVendorIds; nat: NatState } {
  const sa = findPayload(payloads, PayloadType.SA);
  if (sa === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no SA payload`);
  for (const c of candidates) {
    const choice = selectIkeProposal(sa.proposals, c.proposals, c.selection ?? 'responder');
    if (choice === null) continue;
    const method = choice.value.authMethod;
    if (usesPsk(method) && !c.psk) throw new IkeError('NO_PSK', `no pre-shared key configured for peer ${env.remote.address} (connection '${c.name}')`);
    if (weSign(method, false) && !c.certs?.cert) throw new IkeError('POLICY', `connection '${c.name}' has no certificate for signature authentication (method ${method})`);
    const { peerVendorIds, nat } = peerVendors(c, payloads);
    return {
      policy: c,
      proposal: choice.value,
      saiBody: Buffer.from(sa.raw!.subarray(4)),
      answer: { type: PayloadType.SA, doi: sa.doi, situation: sa.situation, proposals: [{ ...choice.proposal, transforms: [choice.transform] }] },
      peerVendorIds,
      nat,
    };
  }
  const ours = candidates.flatMap((c) => c.proposals.map(ikeProposalName)).join(', ');
  throw new IkeError('NO_PROPOSAL_CHOSEN', `no matching phase 1 proposal for ${env.remote.address}: peer offered [${describeOffer(sa.proposals)}], we accept [${ours}]`);
}

/** Initiator: the responder's answer must be one transform we offered; gives its cookie and vendor IDs. */
export function takeAnswer(
  env: Phase1Env,
  policy: Phase1Policy,
  header: IsakmpHeader,
  payloads: readonly Payload[],
  where: string,
): { cookieR: Buffer; proposal: IkeProposal; peerVendorIds: PeerVendorIds; nat: NatState } {
  const sa = findPayload(payloads, PayloadType.SA);
  const t = sa?.proposals[0]?.transforms[0];
  if (sa === undefined || t === undefined || sa.proposals.length !== 1 || sa.proposals[0]!.transforms.length !== 1) {
    throw new IkeError('PAYLOAD_MALFORMED', `${where} must carry exactly one chosen transform`);
  }
  const chosen = matchAnswer(t, policy.proposals);
  if (chosen === null) throw new IkeError('NO_PROPOSAL_CHOSEN', `responder ${env.remote.address} chose a proposal we did not offer [${describeOffer(sa.proposals)}]`);
  const { peerVendorIds, nat } = peerVendors(policy, payloads);
  return { cookieR: Buffer.from(header.responderCookie), proposal: chosen, peerVendorIds, nat };
}

/**
 * Our key pair for the group. A promise only with asyncDh (the pool does the work): callers await only
 * then, so the synchronous path costs no promise and no microtask turn.
 */
export function makeKeyPair(crypto: CryptoProvider, policy: Phase1Policy, group: DhGroupId): DhPrivateKey | Promise<DhPrivateKey> {
  const g = crypto.dhGroup(group);
  const options = { fullLengthExponent: policy.fullLengthExponent ?? false };
  return policy.asyncDh ? g.generateKeyPairAsync(options) : g.generateKeyPair(options);
}

export function makeNonce(crypto: CryptoProvider): Buffer {
  return crypto.randomBytes(NONCE_LENGTH);
}

/** Checks a KE payload's length for the group; the value itself is validated when the secret is computed. */
export function checkKe(crypto: CryptoProvider, data: Buffer | undefined, group: DhGroupId, where: string): Buffer {
  if (data === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no KE payload`);
  const g = crypto.dhGroup(group);
  if (data.length !== g.publicLength) {
    throw new IkeError('INVALID_KE', `${where}: KE payload of ${data.length} bytes, DH group ${group} needs ${g.publicLength}`);
  }
  return Buffer.from(data);
}

export function checkNonce(data: Buffer | undefined, where: string): Buffer {
  // RFC 2409 section 5: nonces are 8 to 256 bytes.
  if (data === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} has no NONCE payload`);
  if (data.length < 8 || data.length > 256) throw new IkeError('PAYLOAD_MALFORMED', `${where}: nonce of ${data.length} bytes (RFC 2409 allows 8-256)`);
  return Buffer.from(data);
}

/** What key derivation takes besides the negotiated proposal and cookies. */
export interface KeyInputs {
  dh: DhPrivateKey;
  gxi: Buffer;
  gxr: Buffer;
  nonceI: Buffer;
  nonceR: Buffer;
}

/** g^xy, SKEYID, SKEYID_d/_a/_e, Ka and the phase 1 IV (a promise only with asyncDh). */
export function deriveKeys(n: Omit<Negotiated, 'peerVendorIds' | 'nat'>, k: KeyInputs): { keys: Phase1Keys; iv: Buffer } | Promise<{ keys: Phase1Keys; iv: Buffer }> {
  const peer = n.initiator ? k.gxr : k.gxi;
  const invalidKe = (e: unknown) => invalidPeerValue(n, e);
  if (n.policy.asyncDh) {
    return k.dh.computeSecretAsync(peer).then(
      (gxy) => deriveFrom(n, k, gxy),
      (e) => {
        throw invalidKe(e);
      },
    );
  }
  let gxy: Buffer;
  try {
    gxy = k.dh.computeSecret(peer);
  } catch (e) {
    throw invalidKe(e);
  }
  return deriveFrom(n, k, gxy);
}

type ResponderKeys = { gxr: Buffer; keys: Phase1Keys; iv: Buffer };

/**
 * Responder (MM3, AM1): our key pair, g^xy with the initiator's value and everything derived from it. With
 * asyncDh the key pair and g^xy are one job on the thread pool (the initiator's value is known before ours
 * is made): one trip instead of two, each a thread wake-up and a promise. A promise only with asyncDh.
 */
export function responderKeys(n: Omit<Negotiated, 'peerVendorIds' | 'nat'>, gxi: Buffer, nonceI: Buffer, nonceR: Buffer): ResponderKeys | Promise<ResponderKeys> {
  const g = n.env.crypto.dhGroup(n.proposal.group);
  const options = { fullLengthExponent: n.policy.fullLengthExponent ?? false };
  if (!n.policy.asyncDh) {
    const dh = g.generateKeyPair(options);
    const gxr = dh.publicValue;
    const d = deriveKeys(n, { dh, gxi, gxr, nonceI, nonceR }) as { keys: Phase1Keys; iv: Buffer };
    return { gxr, keys: d.keys, iv: d.iv };
  }
  return g.generateAndComputeAsync(gxi, options).then(
    ({ key, secret }) => {
      const gxr = key.publicValue;
      const d = deriveFrom(n, { dh: key, gxi, gxr, nonceI, nonceR }, secret);
      return { gxr, keys: d.keys, iv: d.iv };
    },
    (e) => {
      throw invalidPeerValue(n, e);
    },
  );
}

function invalidPeerValue(n: Omit<Negotiated, 'peerVendorIds' | 'nat'>, e: unknown): IkeError {
  return new IkeError('INVALID_KE', `invalid DH public value from ${n.env.remote.address}: ${(e as Error).message}`);
}

function deriveFrom(n: Omit<Negotiated, 'peerVendorIds' | 'nat'>, k: KeyInputs, gxy: Buffer): { keys: Phase1Keys; iv: Buffer } {
  const p = n.proposal;
  const info = cipherInfo(p.encryption);
  if (!usesPsk(p.authMethod)) return deriveSig(n, k, gxy);
  const d = n.env.crypto.phase1KeysPsk(
    p.hash,
    { psk: n.policy.psk!, nonceI: k.nonceI, nonceR: k.nonceR, gxy, cookieI: n.cookieI, cookieR: n.cookieR, gxi: k.gxi, gxr: k.gxr },
    info.keyLength,
    info.blockSize,
  );
  gxy.fill(0);
  return { keys: { skeyid: d.skeyid, skeyidD: d.skeyidD, skeyidA: d.skeyidA, skeyidE: d.skeyidE, encryptionKey: d.encryptionKey }, iv: d.iv };
}

/** Signature methods: SKEYID = prf(Ni_b | Nr_b, g^xy) (RFC 2409 5), then the same children, Ka and IV. */
function deriveSig(n: Omit<Negotiated, 'peerVendorIds' | 'nat'>, k: KeyInputs, gxy: Buffer): { keys: Phase1Keys; iv: Buffer } {
  const { crypto } = n.env;
  const { hash, encryption } = n.proposal;
  const info = cipherInfo(encryption);
  const skeyid = crypto.skeyidSig(hash, k.nonceI, k.nonceR, gxy);
  const d = crypto.phase1Keys(hash, skeyid, gxy, n.cookieI, n.cookieR);
  gxy.fill(0);
  const encryptionKey = crypto.encryptionKey(hash, d.skeyidE, info.keyLength);
  return { keys: { skeyid: d.skeyid, skeyidD: d.skeyidD, skeyidA: d.skeyidA, skeyidE: d.skeyidE, encryptionKey }, iv: crypto.phase1Iv(hash, k.gxi, k.gxr, info.blockSize) };
}

export function wipeKeys(k: Phase1Keys): void {
  for (const b of [k.skeyid, k.skeyidD, k.skeyidA, k.skeyidE, k.encryptionKey]) b.fill(0);
}

/** HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b); HASH_R swaps the pairs and uses IDir_b. */
export function authHash(k: Keyed, ofInitiator: boolean, idBody: Buffer): Buffer {
  return k.env.crypto.prf(authHashAlgorithm(k.proposal.authMethod, k.proposal.hash), k.keys.skeyid, ...authHashInput(k, ofInitiator, idBody));
}

function authHashInput(k: Keyed, ofInitiator: boolean, idBody: Buffer): Buffer[] {
  return ofInitiator ? [k.gxi, k.gxr, k.cookieI, k.cookieR, k.saiBody, idBody] : [k.gxr, k.gxi, k.cookieR, k.cookieI, k.saiBody, idBody];
}

export function ourIdPayload(policy: Phase1Policy): IdPayload {
  return idPayload(policy.localId);
}

/** Our ID payload and the HASH that proves it (HASH_I as initiator, HASH_R as responder). */
export function ourProof(k: Keyed): [IdPayload, Payload] {
  const id = ourIdPayload(k.policy);
  return [id, { type: PayloadType.HASH, data: authHash(k, k.initiator, encodePayloadBody(id)) }];
}

/** Verifies the peer's HASH (in constant time, inside the provider) and its ID if one is configured; returns the identity. */
export function verifyPeer(k: Keyed, id: IdPayload | undefined, hash: Buffer | undefined, where: string): Identity {
  if (id === undefined || hash === undefined) {
    throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch: ${where} has no ${id === undefined ? 'ID' : 'HASH'} payload after decryption`);
  }
  if (!k.env.crypto.prfEqual(k.proposal.hash, k.keys.skeyid, hash, ...authHashInput(k, !k.initiator, id.raw!.subarray(4)))) {
    throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch: HASH_${k.initiator ? 'R' : 'I'} from ${k.env.remote.address} does not verify (connection '${k.policy.name}')`);
  }
  const decoded = decodeIdPayload(id);
  if (!decoded.ok) throw new IkeError('AUTHENTICATION_FAILED', `peer identity: ${decoded.error.message}`, NotifyType.INVALID_ID_INFORMATION);
  if (k.policy.remoteId !== undefined && !sameIdentity(k.policy.remoteId, id)) {
    throw new IkeError(
      'AUTHENTICATION_FAILED',
      `peer ${k.env.remote.address} authenticated as '${idToString(decoded.value)}' but connection '${k.policy.name}' expects '${idToString(k.policy.remoteId)}'`,
      NotifyType.INVALID_ID_INFORMATION,
    );
  }
  return decoded.value;
}

function sameIdentity(expected: Identity, got: IdPayload): boolean {
  const e = idPayload(expected);
  return e.idType === got.idType && e.data.equals(got.data);
}

/**
 * NAT-D hashes, hash(CKY-I | CKY-R | IP | port), of our endpoint and the peer's. Each side needs both twice
 * (its NAT-D payloads and the check of the peer's): a state computes them once and hands them on.
 */
export interface NatdHashes {
  readonly ofLocal: Buffer;
  readonly ofRemote: Buffer;
}

export function natdHashes(n: Pick<Negotiated, 'env' | 'cookieI' | 'cookieR' | 'proposal'>): NatdHashes {
  const h: HashName = n.proposal.hash;
  const natd = (x: Endpoint) => n.env.crypto.hash(h, n.cookieI, n.cookieR, endpointBytes(x));
  return { ofLocal: natd(n.env.local), ofRemote: natd(n.env.remote) };
}

/** NAT-D payloads: first the peer's (destination) endpoint, then ours. None without NAT-T. */
export function natdPayloads(n: Pick<Negotiated, 'env' | 'policy' | 'proposal' | 'nat'>, hashes: NatdHashes): Payload[] {
  if (n.nat.version === null) return [];
  const type = n.nat.version === 'rfc3947' ? PayloadType.NAT_D : PayloadType.NAT_D_DRAFT;
  const ours = n.policy.forceEncap ? n.env.crypto.randomBytes(hashLength(n.proposal.hash)) : hashes.ofLocal;
  return [
    { type, data: hashes.ofRemote },
    { type, data: ours },
  ];
}

/** Reads the peer's NAT-D payloads (RFC 3947 3.2): the first hashes us as the peer sees us, the rest the peer. */
export function detectNat(n: Pick<Negotiated, 'policy' | 'nat'>, hashes: NatdHashes, payloads: readonly Payload[]): NatState {
  if (n.nat.version === null) return n.nat;
  const natd = payloads.filter((p): p is NatDPayload => p.type === PayloadType.NAT_D || p.type === PayloadType.NAT_D_DRAFT);
  if (natd.length < 2) return n.nat;
  // The peer's hash of us is honest even when ours is not (forced encapsulation), so a real NAT still shows.
  const nat: NatState = {
    version: n.nat.version,
    localBehindNat: !bytesEqual(natd[0]!.data, hashes.ofLocal),
    remoteBehindNat: !natd.slice(1).some((p) => bytesEqual(p.data, hashes.ofRemote)),
  };
  if (n.policy.forceEncap === true) nat.encapForced = true;
  return nat;
}

/** Encrypts a phase 1 message body with the running IV; returns the message and the IV after it. */
export function encrypt(k: Keyed, iv: Buffer, header: IsakmpHeader, payloads: Payload[]): { message: Buffer; iv: Buffer } {
  const info = cipherInfo(k.proposal.encryption);
  const length = payloadsLength(payloads);
  const padded = Buffer.allocUnsafe(Math.ceil(length / info.blockSize) * info.blockSize);
  padded.fill(0, encodePayloadsInto(padded, 0, payloads));
  const ct = k.env.crypto.cbcEncrypt(k.proposal.encryption, k.keys.encryptionKey, iv, padded);
  const message = encodeMessage({ header: { ...header, nextPayload: payloads[0]!.type, flags: header.flags | Flags.ENCRYPTION }, encrypted: ct });
  return { message, iv: Buffer.from(ct.subarray(ct.length - info.blockSize)) };
}

/** Decrypts a phase 1 body with the state's IV: the payloads and the IV that follows (the caller commits it). */
export function decrypt(k: Keyed, header: IsakmpHeader, body: Buffer, where: string): { payloads: Payload[]; nextIv: Buffer } {
  const info = cipherInfo(k.proposal.encryption);
  if (body.length === 0 || body.length % info.blockSize !== 0) {
    throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch or corrupted message: ${where} has ${body.length} encrypted bytes, not a multiple of the ${info.blockSize}-byte block`);
  }
  const plain = k.env.crypto.cbcDecrypt(k.proposal.encryption, k.keys.encryptionKey, k.iv, body);
  const r = parsePayloads(header.nextPayload, plain, 28, { trailing: 'padding', blockSize: info.blockSize });
  if (!r.ok) throw new IkeError('PSK_MISMATCH', `pre-shared key mismatch: ${where} does not decrypt to valid payloads (${r.error.message})`);
  return { payloads: r.value, nextIv: Buffer.from(body.subarray(body.length - info.blockSize)) };
}

/**
 * The exchange is complete: the SA object the rest of the engine uses. The SA lives for hours: its bytes go
 * into one allocation of their own (see retained.ts) and the originals are wiped; SKEYID, the DH values,
 * nonces and SAi_b are not needed past phase 1 and are not kept (a gateway holds many established SAs).
 */
export function establish(k: Keyed, lastIv: Buffer, peerId: Identity, nat: NatState, now: number): Phase1Done {
  const p = k.proposal;
  const { keys } = k;
  const block = compactBlock([k.cookieI, k.cookieR, keys.skeyidD, keys.skeyidA, keys.skeyidE, keys.encryptionKey, lastIv]);
  const hashLen = keys.skeyidD.length;
  const keyLength = keys.encryptionKey.length;
  wipeKeys(keys);
  lastIv.fill(0);
  const v = k.peerVendorIds;
  const sa = new RetainedIsakmpSa(
    {
      name: k.policy.name,
      initiator: k.initiator,
      mode: k.policy.mode,
      local: k.env.local,
      remote: k.env.remote,
      localId: k.policy.localId,
      remoteId: peerId,
      // shared by every SA with the same values (frozen: nobody may change what the others see)
      proposal: intern('ikeProposal', `${p.encryption}/${p.hash}/${p.group}/${p.authMethod}/${p.lifetimeSeconds}/${p.offeredLifetimeSeconds ?? ''}`, { ...p }),
      algorithms: internString(ikeProposalName(p)),
      nat: intern('nat', `${nat.version}/${nat.localBehindNat}/${nat.remoteBehindNat}/${nat.encapForced === true}`, { ...nat }),
      peerVendorIds: intern('vendorIds', `${v.natt}/${v.dpd}/${v.xauth}/${v.unity}/${v.fragmentation}`, { ...v }),
      establishedAt: now,
      expiresAt: now + p.lifetimeSeconds * 1000,
    },
    block,
    hashLen,
    keyLength,
  );
  return new Phase1Done(sa, k.policy);
}

/** The payloads of a message a state expects in the clear, or null for an encrypted one. */
export function clearPayloads(m: Phase1Message): Payload[] | null {
  return 'payloads' in m ? m.payloads : null;
}
