// IKEv1 fragments (ts/ike/fragments.ts): cut and put back in any order with duplicates; every limit (count,
// size, time, exchanges) holds; a flood of random and hostile fragments keeps memory bounded and never throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Reassembly, fragment } from '../../ts/ike/fragments.js';
import { ExchangeType, PayloadType, encodeMessage, parseMessage } from '../../ts/isakmp/index.js';

const cookies = { initiatorCookie: Buffer.from('0102030405060708', 'hex'), responderCookie: Buffer.from('1112131415161718', 'hex') };

/** A real ISAKMP message of about `size` bytes (a CERT payload carries the bulk). */
function bigMessage(size: number): Buffer {
  return encodeMessage({
    header: { ...cookies, nextPayload: 0, version: 0x10, exchangeType: ExchangeType.IDENTITY_PROTECTION, flags: 0, messageId: 0, length: 0 },
    payloads: [{ type: PayloadType.CERT, encoding: 4, data: randomBytes(size) }],
  });
}

test('a 5000-byte message cut at 576 bytes comes back whole from shuffled, duplicated fragments', () => {
  const msg = bigMessage(5000);
  const frags = fragment(msg, cookies, { size: 576, aggressive: false });
  assert.ok(frags.length >= 9);
  for (const f of frags) {
    assert.ok(f.length <= 576);
    const p = parseMessage(f);
    assert.ok(p.ok && 'payloads' in p.value && p.value.header.messageId === 0 && p.value.header.exchangeType === ExchangeType.IDENTITY_PROTECTION);
  }
  const r = new Reassembly();
  const order = [...frags.keys()].reverse();
  order.splice(3, 0, order[0]!); // a duplicate
  let whole: Buffer | undefined;
  for (const i of order) {
    const out = r.add(frags[i]!, '10.0.0.1:500', 0);
    assert.notEqual(out.kind, 'dropped');
    if (out.kind === 'complete') whole = out.message;
  }
  assert.deepEqual(whole, msg);
  assert.equal(r.size, 0, 'nothing kept after completion');
});

test('aggressive mode fragments say AGGRESSIVE; a size too small to carry anything is refused', () => {
  const frags = fragment(bigMessage(800), cookies, { size: 500, aggressive: true });
  const p = parseMessage(frags[0]!);
  assert.ok(p.ok && p.value.header.exchangeType === ExchangeType.AGGRESSIVE);
  assert.throws(() => fragment(bigMessage(100), cookies, { size: 80, aggressive: false }), /less than 64 bytes per fragment/);
});

test('limits: fragment count, message size, two last fragments, and the timeout', () => {
  const msg = bigMessage(3000);
  const frags = fragment(msg, cookies, { size: 300, aggressive: false });
  const few = new Reassembly({ maxFragments: 4 });
  assert.match((few.add(frags[5]!, 'p', 0) as { reason: string }).reason, /fragment number 6/);
  const small = new Reassembly({ maxBytes: 1000 });
  const results = frags.map((f) => small.add(f, 'p', 0).kind);
  assert.ok(results.includes('dropped') && !results.includes('complete'), results.join(' '));
  assert.ok(small.size <= 1, 'what follows the drop starts a new message, which cannot complete either');
  const twoLast = new Reassembly();
  twoLast.add(frags[3]!, 'p', 0);
  const lastAt2 = encodeMessage({ header: { ...cookies, nextPayload: PayloadType.FRAGMENT, version: 0x10, exchangeType: 2, flags: 0, messageId: 0, length: 0 }, payloads: [{ type: PayloadType.FRAGMENT, fragmentId: 1, fragmentNumber: 2, flags: 1, data: Buffer.alloc(10) }] });
  assert.match((twoLast.add(lastAt2, 'p', 0) as { reason: string }).reason, /fragment 4 after the last one \(2\)/);
  assert.equal(twoLast.size, 0);
  const slow = new Reassembly({ timeoutMs: 1000 });
  for (const f of frags.slice(0, -1)) slow.add(f, 'p', 0);
  assert.equal(slow.size, 1);
  assert.equal(slow.add(frags.at(-1)!, 'p', 1500).kind, 'pending', 'the rest expired: the last fragment starts over');
  slow.expire(5000);
  assert.equal(slow.size, 0, 'nothing left after the timeout');
});

test('a flood of random fragments from many peers never throws and never holds more than maxExchanges', () => {
  const r = new Reassembly({ maxExchanges: 32, maxFragments: 16, maxBytes: 4096 });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 1500 }), (peer, number, flags, data) => {
      const f = encodeMessage({
        header: { ...cookies, nextPayload: PayloadType.FRAGMENT, version: 0x10, exchangeType: 2, flags: 0, messageId: 0, length: 0 },
        payloads: [{ type: PayloadType.FRAGMENT, fragmentId: peer & 3, fragmentNumber: number, flags, data: Buffer.from(data) }],
      });
      r.add(f, `10.0.${peer >> 8}.${peer & 255}:500`, peer);
      // and the same bytes cut short or mangled
      r.add(f.subarray(0, Math.max(0, f.length - 3)), 'x', peer);
      assert.ok(r.size <= 32);
    }),
    { numRuns: 3000 },
  );
});
