// Main Mode (RFC 2409 section 5, Identity Protection exchange):
//   1 I->R  HDR, SA                    2 R->I  HDR, SA
//   3 I->R  HDR, KE, Ni [, NAT-D x2]   4 R->I  HDR, KE, Nr [, NAT-D x2]
//   5 I->R  HDR*, IDii, HASH_I         6 R->I  HDR*, IDir, HASH_R
// With signatures (auth-cert.ts) messages 3 and 4 add CERTREQ, 5 and 6 carry [CERT...,] SIG instead of HASH.
// One type per step (strongSwan's MM_SA / MM_KE / MM_AUTH, each side): a state holds what its next message
// needs, handle() reads that message and returns the next state, computed into locals and built only once
// the message has been accepted. A message a state does not expect returns null (ignored).
import type { DhPrivateKey } from '../crypto/index.js';
import { ExchangeType, PayloadType, encodeMessage, findPayload, type Payload } from '../isakmp/index.js';
import { certRequests, ourAuth, peerAuth } from './auth-cert.js';
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
  phase1Header,
  takeAnswer,
  answerVendors,
  vendorIds,
  type Keyed,
  type NatdHashes,
  type Negotiated,
  type Phase1Base,
  type Phase1Message,
  type Phase1Policy,
  type Transition,
} from './phase1-core.js';

const MM = ExchangeType.IDENTITY_PROTECTION;

/** Initiator, message 1 sent: waits for the responder's choice (message 2). */
export class MmSaSent {
  readonly step = 'I_MM_SA' as const;
  constructor(
    readonly c: Phase1Base,
    private readonly saiBody: Buffer,
  ) {}

  async handle(m: Phase1Message): Promise<Transition<MmKeSent> | null> {
    const clear = clearPayloads(m);
    if (clear === null || m.header.responderCookie.every((b) => b === 0)) return null;
    const { env, policy } = this.c;
    const a = takeAnswer(env, policy, m.header, clear, `main mode message 2 from ${env.remote.address}`);
    const pair = makeKeyPair(env.crypto, policy, a.proposal.group);
    const dh = pair instanceof Promise ? await pair : pair;
    const n = negotiated(this.c, policy, a.cookieR, this.saiBody, a);
    const next = new MmKeSent(n, dh, makeNonce(env.crypto), natdHashes(n));
    const send = encodeMessage({
      header: phase1Header(n, MM),
      payloads: [{ type: PayloadType.KE, data: next.gxi }, { type: PayloadType.NONCE, data: next.nonceI }, ...certRequests(policy, n.proposal.authMethod, true), ...natdPayloads(n, next.natd)],
    });
    return { next, send };
  }
}

/** Initiator, message 3 sent: waits for the responder's KE and nonce (message 4), then proves itself. */
export class MmKeSent {
  readonly step = 'I_MM_KE' as const;
  readonly gxi: Buffer;
  constructor(
    readonly c: Negotiated,
    private readonly dh: DhPrivateKey,
    readonly nonceI: Buffer,
    readonly natd: NatdHashes,
  ) {
    this.gxi = dh.publicValue;
  }

  async handle(m: Phase1Message): Promise<Transition<MmAuthSent> | null> {
    const clear = clearPayloads(m);
    if (clear === null) return null;
    const c = this.c;
    const gxr = checkKe(c.env.crypto, findPayload(clear, PayloadType.KE)?.data, c.proposal.group, 'main mode message 4');
    const nonceR = checkNonce(findPayload(clear, PayloadType.NONCE)?.data, 'main mode message 4');
    const d = deriveKeys(c, { dh: this.dh, gxi: this.gxi, gxr, nonceI: this.nonceI, nonceR });
    const { keys, iv } = d instanceof Promise ? await d : d;
    const nat = detectNat(c, this.natd, clear);
    const k = keyed(c, nat, this.gxi, gxr, keys, iv);
    const sent = encrypt(k, iv, phase1Header(k, MM), ourAuth(k));
    return { next: new MmAuthSent(keyed(c, nat, this.gxi, gxr, keys, sent.iv)), send: sent.message };
  }
}

/** Initiator, message 5 sent: waits for the responder's identity and HASH_R (message 6). */
export class MmAuthSent {
  readonly step = 'I_MM_AUTH' as const;
  constructor(readonly c: Keyed) {}

  async handle(m: Phase1Message, now: number): Promise<Transition<Phase1Done> | null> {
    const c = this.c;
    const auth = readAuth(c, m, 'main mode message 6', now);
    if (auth === null) return null;
    return { next: establish(c, auth.nextIv, auth.peerId, c.nat, now) };
  }
}

/** Responder, message 2 sent: waits for the initiator's KE and nonce (message 3). */
export class MmSaReplied {
  readonly step = 'R_MM_SA' as const;
  constructor(readonly c: Negotiated) {}

  async handle(m: Phase1Message): Promise<Transition<MmKeReplied> | null> {
    const clear = clearPayloads(m);
    if (clear === null) return null;
    const c = this.c;
    const crypto = c.env.crypto;
    const gxi = checkKe(crypto, findPayload(clear, PayloadType.KE)?.data, c.proposal.group, 'main mode message 3');
    const nonceI = checkNonce(findPayload(clear, PayloadType.NONCE)?.data, 'main mode message 3');
    const nonceR = makeNonce(crypto);
    const d = responderKeys(c, gxi, nonceI, nonceR);
    const { gxr, keys, iv } = d instanceof Promise ? await d : d;
    const natd = natdHashes(c);
    const k = keyed(c, detectNat(c, natd, clear), gxi, gxr, keys, iv);
    const send = encodeMessage({
      header: phase1Header(k, MM),
      payloads: [{ type: PayloadType.KE, data: gxr }, { type: PayloadType.NONCE, data: nonceR }, ...certRequests(c.policy, c.proposal.authMethod, false), ...natdPayloads(k, natd)],
    });
    return { next: new MmKeReplied(k), send };
  }
}

/** Responder, message 4 sent: waits for the initiator's identity and HASH_I (message 5), answers with message 6. */
export class MmKeReplied {
  readonly step = 'R_MM_KE' as const;
  constructor(readonly c: Keyed) {}

  async handle(m: Phase1Message, now: number): Promise<Transition<Phase1Done> | null> {
    const c = this.c;
    const auth = readAuth(c, m, 'main mode message 5', now);
    if (auth === null) return null;
    const sent = encrypt(c, auth.nextIv, phase1Header(c, MM), ourAuth(c));
    return { next: establish(c, sent.iv, auth.peerId, c.nat, now), send: sent.message };
  }
}

/** Initiator: message 1 and the state that waits for message 2. */
export function mainModeStart(c: Phase1Base): { state: MmSaSent; send: Buffer } {
  const { sa, saiBody } = offer(c.policy);
  return { state: new MmSaSent(c, saiBody), send: encodeMessage({ header: phase1Header(c, MM), payloads: [sa, ...vendorIds(c.policy)] }) };
}

/** Message 1 at the responder: pick a connection and a proposal, answer with message 2. */
export function mainModeRespond(c: Phase1Base, candidates: readonly Phase1Policy[], payloads: readonly Payload[]): { state: MmSaReplied; send: Buffer } {
  const a = acceptOffer(c.env, candidates, payloads, `main mode message 1 from ${c.env.remote.address}`);
  const n = negotiated(c, a.policy, c.cookieR, a.saiBody, a);
  return { state: new MmSaReplied(n), send: encodeMessage({ header: phase1Header(n, MM), payloads: [a.answer, ...answerVendors(a.policy, a.peerVendorIds)] }) };
}

/** Message 5 or 6: decrypted, the peer's ID and its HASH or signature verified (null: it came in clear, not ours to read). */
function readAuth(c: Keyed, m: Phase1Message, where: string, now: number): { peerId: ReturnType<typeof peerAuth>; nextIv: Buffer } | null {
  if (clearPayloads(m) !== null) return null;
  const { payloads, nextIv } = decrypt(c, m.header, (m as { encrypted: Buffer }).encrypted, where);
  return { peerId: peerAuth(c, payloads, findPayload(payloads, PayloadType.ID), where, now), nextIv };
}
