// A message 1 from a source that never answers (a forged source address): what the responder sends to that
// address over the whole life of the exchange stays within what the message 1s carried (amplification <= 1x),
// and a genuine peer whose message 2 was lost still gets in (it repeats message 1; the repeat is answered).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto } from '../../ts/crypto/index.js';
import { CookieGenerator, ikeOffer, parseIkeProposal, Phase1, type Phase1Output } from '../../ts/ike/index.js';
import { encodeMessage, ExchangeType, ISAKMP_VERSION, type Payload } from '../../ts/isakmp/index.js';
import { A, B, policy, runPhase1, type Channel } from '../ike/pair.js';

const crypto = nativeCrypto ?? nodeCrypto;
const proposals = (() => {
  const p = parseIkeProposal('aes128-sha256-modp2048');
  assert.ok(p.ok);
  return p.value;
})();

/** A message 1: the bare minimum (one transform), or with vendor IDs as strongSwan sends them (~200 bytes). */
function message1(vendorIds = 0): Buffer {
  return encodeMessage({
    header: { initiatorCookie: Buffer.from('0123456789abcdef', 'hex'), responderCookie: Buffer.alloc(8), nextPayload: 0, version: ISAKMP_VERSION, exchangeType: ExchangeType.IDENTITY_PROTECTION, flags: 0, messageId: 0, length: 0 },
    payloads: [
      { type: 1, doi: 1, situation: Buffer.from([0, 0, 0, 1]), proposals: [ikeOffer(proposals)] },
      ...Array.from({ length: vendorIds }, (_, k) => ({ type: 13, data: Buffer.alloc(16, k + 1) }) as Payload),
    ],
  });
}

/** Runs the responder's timers until the exchange gives up; every byte it sends is counted. */
async function silentPeer(repeats: number, vendorIds: number): Promise<{ received: number; sent: number; answer: number; failed: string }> {
  const env = { crypto, cookies: new CookieGenerator(crypto), local: B, remote: A };
  const m1 = message1(vendorIds);
  let now = 1_000_000;
  const { phase1, out } = await Phase1.respond(env, [policy({ proposals, remoteId: { kind: 'ipv4', address: A.address } })], m1, now);
  assert.ok(phase1, out.failed?.message);
  let received = m1.length;
  let sent = 0;
  let last: Phase1Output = out;
  for (;;) {
    sent += last.send.reduce((n, m) => n + m.length, 0);
    if (last.failed) return { received, sent, answer: out.send[0]!.length, failed: last.failed.kind };
    if (last.timer === null) assert.fail('no deadline and no failure');
    now = last.timer;
    if (repeats-- > 0) {
      received += m1.length;
      const r = await phase1.handle(m1, now - 1);
      sent += r.send.reduce((n, m) => n + m.length, 0);
    }
    last = phase1.onTimer(now);
  }
}

test('a message 1 whose source never answers: message 2 once, no retransmission it did not pay for, then a timeout', async () => {
  const bare = await silentPeer(0, 0);
  assert.equal(bare.failed, 'TIMEOUT');
  // the answer itself can exceed a bare message 1 by our vendor IDs; nothing more goes
  assert.equal(bare.sent, bare.answer, `sent ${bare.sent} bytes for ${bare.received} received (answer ${bare.answer})`);
  const usual = await silentPeer(0, 4);
  assert.equal(usual.failed, 'TIMEOUT');
  assert.ok(usual.sent <= usual.received, `sent ${usual.sent} bytes for ${usual.received} received`);
});

test('repeats of message 1 are each answered once; timer retransmissions still keep within the bytes received', async () => {
  const r = await silentPeer(3, 4);
  assert.equal(r.failed, 'TIMEOUT');
  assert.ok(r.sent <= r.received, `sent ${r.sent} bytes for ${r.received} received`);
  assert.ok(r.sent >= 4 * r.answer, `four answers went out (${r.sent} bytes)`);
});

test('Main Mode message 1: no DH, no key derivation at the responder (nothing beyond the cookie\'s prf)', async () => {
  const calls: string[] = [];
  // the real provider, with every call recorded by name
  const counting = new Proxy(crypto, {
    get(target, name, receiver) {
      const v = Reflect.get(target, name, receiver);
      return typeof v === 'function' ? (...args: unknown[]) => (calls.push(String(name)), v.apply(target, args)) : v;
    },
  });
  const env = { crypto: counting, cookies: new CookieGenerator(counting), local: B, remote: A };
  const { phase1, out } = await Phase1.respond(env, [policy({ proposals, remoteId: { kind: 'ipv4', address: A.address } })], message1(4), 1_000_000);
  assert.ok(phase1, out.failed?.message);
  assert.equal(out.send.length, 1, 'message 2 answered');
  assert.ok(calls.includes('prf'), `the recording works: the responder cookie is a prf (${calls.join(', ')})`);
  assert.deepEqual([...new Set(calls)].filter((c) => c !== 'prf' && c !== 'randomBytes' && c !== 'hash'), [], `crypto used for message 1: ${calls.join(', ')}`);
  assert.ok(!calls.includes('dhGroup'), 'no DH group touched');
});

test('message 2 lost twice: the initiator repeats message 1 and the exchange completes', async () => {
  let lost = 0;
  const lossy: Channel = (b, from) => (from === 'r' && b[18] === ExchangeType.IDENTITY_PROTECTION && b[16] === 1 && lost++ < 2 ? [] : [b]);
  const idA = { kind: 'ipv4', address: A.address } as const;
  const idB = { kind: 'ipv4', address: B.address } as const;
  const res = await runPhase1(crypto, policy({ proposals, localId: idA, remoteId: idB }), [policy({ proposals, localId: idB, remoteId: idA })], lossy);
  assert.equal(lost, 3, 'two message 2s dropped, the third (the answer to the second repeat) delivered');
  assert.ok(res.initiator.sa, res.initiator.error?.message);
  assert.ok(res.responder.sa, res.responder.error?.message);
});
