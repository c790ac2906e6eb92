// Aggressive Mode (RFC 2409 section 5) with pre-shared keys:
//   1 I->R  HDR, SA, KE, Ni, IDii
//   2 R->I  HDR, SA, KE, Nr, IDir, HASH_R [, NAT-D x2]
//   3 I->R  HDR, [NAT-D x2,] HASH_I      (RFC 2409 sends it in the clear; Cisco and others encrypt: both read)
// With signatures (auth-cert.ts) message 1 adds CERTREQ, message 2 carries [CERT...,] SIG_R and CERTREQ, and
// message 3 [CERT...,] SIG_I.
// The identity travels in the clear, and message 2 lets an eavesdropper check guesses of the pre-shared key
// offline: a responder accepts it only where the connection says so.
// One type per step, as in main-mode.ts: the initiator waits in AmSaSent, the responder in AmSaReplied.
import type { DhPrivateKey } from '../crypto/index.js';
import {
  ExchangeType,
  NotifyType,
  PayloadType,
  encodeIdentity,
  encodeMessage,
  findPayload,
  idToString,
  type IdPayload,
  type Payload,
} from '../isakmp/index.js';
import { certRequests, ourAuth, peerAuth, signsWith } from './auth-cert.js';
import { IkeError } from './errors.js';
import {
  Phase1Done,
  acceptOffer,
  checkKe,
  checkNonce,
  clearPayloads,
  decrypt,
  deriveKeys,
  detectNat,
  encrypt,
  establish,
  keyed,
  makeKeyPair,
  responderKeys,
  makeNonce,
  natdHashes,
  natdPayloads,
  negotiated,
  offer,
  ourIdPayload,
  phase1Header,
  takeAnswer,
  answerVendors,
  vendorIds,
  type Keyed,
  type NatdHashes,
  type Phase1Base,
  type Phase1Message,
  type Phase1Policy,
  type Transition,
} from './phase1-core.js';

const AM = ExchangeType.AGGRESSIVE;

/** Initiator, message 1 sent (with our KE, nonce and identity): waits for message 2. */
export class AmSaSent {
  readonly step = 'I_AM_SA' as const;
  readonly gxi: Buffer;
  constructor(
    readonly c: Phase1Base,
    private readonly saiBody: Buffer,
    private readonly dh: DhPrivateKey,
    private readonly nonceI: Buffer,
  ) {
    this.gxi = dh.publicValue;
  }

  async handle(m: Phase1Message, now: number): Promise<Transition<Phase1Done> | null> {
    const clear = clearPayloads(m);
    if (clear === null || m.header.responderCookie.every((b) => b === 0)) return null;
    const { env, policy } = this.c;
    const where = `aggressive mode message 2 from ${env.remote.address}`;
    const a = takeAnswer(env, policy, m.header, clear, where);
    const gxr = checkKe(env.crypto, findPayload(clear, PayloadType.KE)?.data, a.proposal.group, where);
    const nonceR = checkNonce(findPayload(clear, PayloadType.NONCE)?.data, where);
    const n = negotiated(this.c, policy, a.cookieR, this.saiBody, a);
    const d = deriveKeys(n, { dh: this.dh, gxi: this.gxi, gxr, nonceI: this.nonceI, nonceR });
    const { keys, iv } = d instanceof Promise ? await d : d;
    const k = keyed(n, n.nat, this.gxi, gxr, keys, iv);
    const peerId = peerAuth(k, clear, findPayload(clear, PayloadType.ID), where, now);
    const natd = natdHashes(k);
    const nat = detectNat(k, natd, clear);
    const proof = ourAuth(k).slice(1); // message 3 carries no ID: HASH_I, or the certificates and SIG_I
    // HASH_I last (strongSwan puts it first; any order is read): HASH_I does not cover the NAT-D payloads nor
    // the CBC padding, so with HASH_I first an attacker could replace the last cipher block, the receiver
    // would still verify the message and chain its phase 2 IVs on the forged block. With HASH_I in the last
    // block, any change to that block fails the HASH.
    const payloads: Payload[] = [...natdPayloads(k, natd), ...proof];
    if (policy.encryptAggressiveHash ?? true) {
      const sent = encrypt(k, iv, phase1Header(k, AM), payloads);
      return { next: establish(k, sent.iv, peerId, nat, now), send: sent.message };
    }
    return { next: establish(k, iv, peerId, nat, now), send: encodeMessage({ header: phase1Header(k, AM), payloads }) };
  }
}

/** Responder, message 2 sent: waits for HASH_I (message 3), which authenticates the identity of message 1. */
export class AmSaReplied {
  readonly step = 'R_AM_SA' as const;
  constructor(
    readonly c: Keyed,
    /** The initiator's ID from message 1, verified with HASH_I in message 3. */
    private readonly peerIdPayload: IdPayload,
    private readonly natd: NatdHashes,
  ) {}

  async handle(m: Phase1Message, now: number): Promise<Transition<Phase1Done> | null> {
    const c = this.c;
    const where = `aggressive mode message 3 from ${c.env.remote.address}`;
    let payloads = clearPayloads(m);
    let iv = c.iv;
    if (payloads === null) ({ payloads, nextIv: iv } = decrypt(c, m.header, (m as { encrypted: Buffer }).encrypted, where));
    const peerId = peerAuth(c, payloads, this.peerIdPayload, where, now);
    return { next: establish(c, iv, peerId, detectNat(c, this.natd, payloads), now) };
  }
}

/** Initiator: message 1 and the state that waits for message 2 (a promise: the key pair may come from the pool). */
export async function aggressiveModeStart(c: Phase1Base): Promise<{ state: AmSaSent; send: Buffer }> {
  const { sa, saiBody } = offer(c.policy);
  const pair = makeKeyPair(c.env.crypto, c.policy, c.policy.proposals[0]!.group);
  const dh = pair instanceof Promise ? await pair : pair;
  const nonceI = makeNonce(c.env.crypto);
  const send = encodeMessage({
    header: phase1Header(c, AM),
    payloads: [
      sa,
      { type: PayloadType.KE, data: dh.publicValue },
      { type: PayloadType.NONCE, data: nonceI },
      ourIdPayload(c.policy),
      ...certRequests(c.policy, c.policy.proposals[0]!.authMethod, true),
      ...vendorIds(c.policy),
    ],
  });
  return { state: new AmSaSent(c, saiBody, dh, nonceI), send };
}

/** Message 1 at the responder: pick a connection (by the identity in the clear) and a proposal, answer with message 2. */
export async function aggressiveModeRespond(c: Phase1Base, candidates: readonly Phase1Policy[], payloads: readonly Payload[]): Promise<{ state: AmSaReplied; send: Buffer }> {
  const { env } = c;
  const where = `aggressive mode message 1 from ${env.remote.address}`;
  const sa = findPayload(payloads, PayloadType.SA);
  const id = findPayload(payloads, PayloadType.ID);
  if (sa === undefined || id === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} lacks its ${sa === undefined ? 'SA' : 'ID'} payload`);
  // The identity is in the clear here, so connections that name a remote ID are matched by it.
  const byId = candidates.filter((x) => x.remoteId === undefined || idMatches(x, id));
  if (byId.length === 0) {
    throw new IkeError('AUTHENTICATION_FAILED', `${where}: no connection for identity '${idToString(id)}'`, NotifyType.INVALID_ID_INFORMATION);
  }
  // Signatures leave nothing to guess offline; only a pre-shared key needs the explicit consent.
  const allowed = byId.filter((x) => x.allowAggressivePsk === true || signsWith(x));
  if (allowed.length === 0) {
    throw new IkeError(
      'POLICY',
      `${where} refused: aggressive mode with a pre-shared key is off for connection '${byId[0]!.name}' (set auth.allowAggressivePsk to accept it; message 2 lets an eavesdropper test guesses of the key offline)`,
    );
  }
  const a = acceptOffer(env, allowed, payloads, where);
  const group = a.proposal.group;
  const gxi = checkKe(env.crypto, findPayload(payloads, PayloadType.KE)?.data, group, where);
  const nonceI = checkNonce(findPayload(payloads, PayloadType.NONCE)?.data, where);
  const nonceR = makeNonce(env.crypto);
  const n = negotiated(c, a.policy, c.cookieR, a.saiBody, a);
  const d = responderKeys(n, gxi, nonceI, nonceR);
  const { gxr, keys, iv } = d instanceof Promise ? await d : d;
  const k = keyed(n, n.nat, gxi, gxr, keys, iv);
  const natd = natdHashes(k);
  const send = encodeMessage({
    header: phase1Header(k, AM),
    payloads: [
      a.answer,
      { type: PayloadType.KE, data: gxr },
      { type: PayloadType.NONCE, data: nonceR },
      ...ourAuth(k),
      ...certRequests(a.policy, a.proposal.authMethod, false),
      ...answerVendors(a.policy, a.peerVendorIds),
      ...natdPayloads(k, natd),
    ],
  });
  return { state: new AmSaReplied(k, { ...id, raw: Buffer.from(id.raw!) }, natd), send };
}

function idMatches(c: Phase1Policy, id: { idType: number; data: Buffer }): boolean {
  // Compare the encoded forms: the ID types and bytes the peer would have to send.
  const want = encodeForCompare(c);
  return want !== null && want.idType === id.idType && want.data.equals(id.data);
}

function encodeForCompare(c: Phase1Policy): { idType: number; data: Buffer } | null {
  try {
    return c.remoteId ? encodeIdentity(c.remoteId) : null;
  } catch {
    return null;
  }
}
