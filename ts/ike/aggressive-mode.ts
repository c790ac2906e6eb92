// Aggressive Mode (RFC 2409 section 5) with pre-shared keys:
//   1 I->R  HDR, SA, KE, Ni, IDii
//   2 R->I  HDR, SA, KE, Nr, IDir, HASH_R [, NAT-D x2]
//   3 I->R  HDR, [NAT-D x2,] HASH_I      (RFC 2409 sends it in the clear; Cisco and others encrypt: both read)
// The identity travels in the clear, and message 2 lets an eavesdropper check guesses of the pre-shared key
// offline: a responder accepts it only where the connection says so.
import {
  ExchangeType,
  encodeMessage,
  encodePayloadBody,
  findPayload,
  type EncryptedMessage,
  type ParsedMessage,
  type Payload,
  idToString,
  encodeIdentity,
  NotifyType,
} from '../isakmp/index.js';
import { IkeError } from './errors.js';
import type { Phase1, Phase1Policy, StepResult } from './phase1.js';

const AM = ExchangeType.AGGRESSIVE;

export async function aggressiveModeStart(p: Phase1): Promise<Buffer> {
  const sa = p.offer();
  p.gxi = await p.makeKeyPair(p.policy.proposals[0]!.group);
  p.nonceI = p.makeNonce();
  return encodeMessage({
    header: p.header(AM),
    payloads: [sa, { type: 4, data: p.gxi }, { type: 10, data: p.nonceI }, p.ourIdPayload(), ...p.vendorIds()],
  });
}

export async function aggressiveModeRespond(p: Phase1, candidates: readonly Phase1Policy[], payloads: Payload[], now: number): Promise<Buffer> {
  void now;
  const where = `aggressive mode message 1 from ${p.env.remote.address}`;
  const sa = findPayload(payloads, 1);
  const id = findPayload(payloads, 5);
  if (sa === undefined || id === undefined) throw new IkeError('PAYLOAD_MALFORMED', `${where} lacks its ${sa === undefined ? 'SA' : 'ID'} payload`);
  // The identity is in the clear here, so connections that name a remote ID are matched by it.
  const byId = candidates.filter((c) => c.remoteId === undefined || idMatches(c, id));
  if (byId.length === 0) {
    throw new IkeError('AUTHENTICATION_FAILED', `${where}: no connection for identity '${idToString(id)}'`, NotifyType.INVALID_ID_INFORMATION);
  }
  const allowed = byId.filter((c) => c.allowAggressivePsk === true);
  if (allowed.length === 0) {
    throw new IkeError(
      'POLICY',
      `${where} refused: aggressive mode with a pre-shared key is off for connection '${byId[0]!.name}' (set auth.allowAggressivePsk to accept it; message 2 lets an eavesdropper test guesses of the key offline)`,
    );
  }
  const answer = p.acceptOffer(allowed, payloads, where);
  const group = p.proposal!.group;
  p.gxi = p.checkKe(findPayload(payloads, 4)?.data, group, where);
  p.nonceI = p.checkNonce(findPayload(payloads, 10)?.data, where);
  p.pendingPeerId = { ...id, raw: Buffer.from(id.raw!) };
  p.gxr = await p.makeKeyPair(group);
  p.nonceR = p.makeNonce();
  await p.deriveKeys();
  const ourId = p.ourIdPayload();
  const hashR = p.authHash(false, encodePayloadBody(ourId));
  return encodeMessage({
    header: p.header(AM),
    payloads: [answer, { type: 4, data: p.gxr }, { type: 10, data: p.nonceR }, ourId, { type: 8, data: hashR }, ...p.vendorIds(), ...p.natdPayloads()],
  });
}

export async function aggressiveModeHandle(p: Phase1, m: ParsedMessage | EncryptedMessage, now: number): Promise<StepResult | null> {
  void now;
  switch (p.step) {
    case 'I_AM_SA': {
      if (!('payloads' in m) || m.header.responderCookie.every((b) => b === 0)) return null;
      const where = `aggressive mode message 2 from ${p.env.remote.address}`;
      const chosen = p.takeAnswer(m.header, m.payloads, where);
      p.gxr = p.checkKe(findPayload(m.payloads, 4)?.data, chosen.group, where);
      p.nonceR = p.checkNonce(findPayload(m.payloads, 10)?.data, where);
      await p.deriveKeys();
      p.verifyPeer(findPayload(m.payloads, 5), findPayload(m.payloads, 8)?.data, where);
      p.detectNat(m.payloads);
      const hashI = p.authHash(true, encodePayloadBody(p.ourIdPayload()));
      // HASH_I last (strongSwan puts it first; any order is read): HASH_I does not cover the NAT-D payloads nor
      // the CBC padding, so with HASH_I first an attacker could replace the last cipher block, the receiver
      // would still verify the message and chain its phase 2 IVs on the forged block. With HASH_I in the last
      // block, any change to that block fails the HASH.
      const payloads: Payload[] = [...p.natdPayloads(), { type: 8, data: hashI }];
      const send = (p.policy.encryptAggressiveHash ?? true) ? p.encrypt(p.header(AM), payloads) : encodeMessage({ header: p.header(AM), payloads });
      return { send, established: true };
    }
    case 'R_AM_SA': {
      const where = `aggressive mode message 3 from ${p.env.remote.address}`;
      let payloads: Payload[];
      let nextIv: Buffer | null = null;
      if ('payloads' in m) payloads = m.payloads;
      else ({ payloads, nextIv } = p.decrypt(m.header, m.encrypted, where));
      p.verifyPeer(p.pendingPeerId!, findPayload(payloads, 8)?.data, where);
      if (nextIv !== null) p.iv = nextIv;
      p.detectNat(payloads);
      return { established: true };
    }
    default:
      return null;
  }
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
