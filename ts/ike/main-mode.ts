// Main Mode (RFC 2409 section 5, Identity Protection exchange) with pre-shared keys:
//   1 I->R  HDR, SA                    2 R->I  HDR, SA
//   3 I->R  HDR, KE, Ni [, NAT-D x2]   4 R->I  HDR, KE, Nr [, NAT-D x2]
//   5 I->R  HDR*, IDii, HASH_I         6 R->I  HDR*, IDir, HASH_R
import {
  ExchangeType,
  encodeMessage,
  encodePayloadBody,
  findPayload,
  type Payload,
  type ParsedMessage,
  type EncryptedMessage,
} from '../isakmp/index.js';
import { IkeError } from './errors.js';
import type { Phase1, Phase1Policy, StepResult } from './phase1.js';

const MM = ExchangeType.IDENTITY_PROTECTION;

export function mainModeStart(p: Phase1): Buffer {
  return encodeMessage({ header: p.header(MM), payloads: [p.offer(), ...p.vendorIds()] });
}

/** Message 1 at the responder: pick a connection and a proposal, answer with message 2. */
export function mainModeRespond(p: Phase1, candidates: readonly Phase1Policy[], payloads: Payload[]): Buffer {
  const answer = p.acceptOffer(candidates, payloads, `main mode message 1 from ${p.env.remote.address}`);
  return encodeMessage({ header: p.header(MM), payloads: [answer, ...p.vendorIds()] });
}

export async function mainModeHandle(p: Phase1, m: ParsedMessage | EncryptedMessage, now: number): Promise<StepResult | null> {
  const clear = 'payloads' in m ? m.payloads : null;
  switch (p.step) {
    case 'I_MM_SA': {
      // Message 2: the responder's choice.
      if (clear === null || m.header.responderCookie.every((b) => b === 0)) return null;
      const chosen = p.takeAnswer(m.header, clear, `main mode message 2 from ${p.env.remote.address}`);
      const pub = p.makeKeyPair(chosen.group);
      p.gxi = pub instanceof Promise ? await pub : pub;
      p.nonceI = p.makeNonce();
      p.step = 'I_MM_KE';
      return { send: encodeMessage({ header: p.header(MM), payloads: [{ type: 4, data: p.gxi }, { type: 10, data: p.nonceI }, ...p.natdPayloads()] }) };
    }
    case 'R_MM_SA': {
      // Message 3: the initiator's KE and nonce; we answer with ours and have the keys.
      if (clear === null) return null;
      p.gxi = p.checkKe(findPayload(clear, 4)?.data, p.proposal!.group, 'main mode message 3');
      p.nonceI = p.checkNonce(findPayload(clear, 10)?.data, 'main mode message 3');
      const pub = p.makeKeyPair(p.proposal!.group);
      p.gxr = pub instanceof Promise ? await pub : pub;
      p.nonceR = p.makeNonce();
      const derived = p.deriveKeys();
      if (derived) await derived;
      p.detectNat(clear);
      p.step = 'R_MM_KE';
      return { send: encodeMessage({ header: p.header(MM), payloads: [{ type: 4, data: p.gxr }, { type: 10, data: p.nonceR }, ...p.natdPayloads()] }) };
    }
    case 'I_MM_KE': {
      // Message 4: the responder's KE and nonce; we prove ourselves in message 5.
      if (clear === null) return null;
      p.gxr = p.checkKe(findPayload(clear, 4)?.data, p.proposal!.group, 'main mode message 4');
      p.nonceR = p.checkNonce(findPayload(clear, 10)?.data, 'main mode message 4');
      const derived = p.deriveKeys();
      if (derived) await derived;
      p.detectNat(clear);
      const id = p.ourIdPayload();
      const hashI = p.authHash(true, encodePayloadBody(id));
      p.step = 'I_MM_AUTH';
      return { send: p.encrypt(p.header(MM), [id, { type: 8, data: hashI }]) };
    }
    case 'R_MM_KE': {
      // Message 5: the initiator's identity and HASH_I.
      if (clear !== null) return null;
      const { payloads, nextIv } = p.decrypt(m.header, (m as EncryptedMessage).encrypted, 'main mode message 5');
      p.verifyPeer(findPayload(payloads, 5), findPayload(payloads, 8)?.data, 'main mode message 5');
      p.iv = nextIv;
      const id = p.ourIdPayload();
      const hashR = p.authHash(false, encodePayloadBody(id));
      void now;
      return { send: p.encrypt(p.header(MM), [id, { type: 8, data: hashR }]), established: true };
    }
    case 'I_MM_AUTH': {
      // Message 6: the responder's identity and HASH_R.
      if (clear !== null) return null;
      const { payloads, nextIv } = p.decrypt(m.header, (m as EncryptedMessage).encrypted, 'main mode message 6');
      p.verifyPeer(findPayload(payloads, 5), findPayload(payloads, 8)?.data, 'main mode message 6');
      p.iv = nextIv;
      return { established: true };
    }
    default:
      return null;
  }
}
