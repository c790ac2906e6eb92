// What an established SA keeps (ts/ike/retained.ts): its bytes outside Node's shared Buffer pool, shared
// copies of what SAs have in common, and finished Quick Modes only for as long as the peer may repeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultCrypto } from '../../ts/crypto/index.js';
import { DEFAULT_RETRANSMIT, fullChildSa, plainIsakmpSa, retainChildSa, retransmitTotalMs } from '../../ts/ike/index.js';
import { child, Phase2Pair, phase1Pair } from './quick-mode-pair.js';

const crypto = defaultCrypto();

test('an established ISAKMP SA keeps its cookies and keys in one small allocation of its own, not in the 8 KiB pool', async () => {
  const a = await phase1Pair(crypto);
  const b = await phase1Pair(crypto);
  for (const sa of [a.i, a.r]) {
    const parts = [sa.cookieI, sa.cookieR, sa.skeyidD, sa.skeyidA, sa.skeyidE, sa.encryptionKey, sa.lastIv];
    const block = sa.skeyidD.buffer;
    assert.ok(parts.every((p) => p.buffer === block), 'one allocation');
    // a pooled slice would sit in an 8 KiB ArrayBuffer and keep all of it alive
    assert.equal(block.byteLength, parts.reduce((n, p) => n + p.length, 0));
  }
  // both ends derived the same keys (the copies are faithful)
  assert.deepEqual(a.i.skeyidA, a.r.skeyidA);
  assert.deepEqual(a.i.encryptionKey, a.r.encryptionKey);
  assert.deepEqual(a.i.lastIv, a.r.lastIv);
  // what SAs have in common is one frozen object
  assert.equal(a.r.proposal, b.r.proposal);
  assert.equal(a.r.peerVendorIds, b.r.peerVendorIds);
  assert.ok(Object.isFrozen(a.r.proposal) && Object.isFrozen(a.r.nat));
  // no Buffer object per key is kept: each read is a new view on the block (seven kept views cost ~0.5 KiB
  // per SA); plainIsakmpSa gives a plain copy with the keys
  assert.notEqual(a.i.skeyidA, a.i.skeyidA);
  assert.equal(Object.values(a.i).filter((v) => Buffer.isBuffer(v)).length, 1, 'only the block itself');
  const copy = { ...plainIsakmpSa(a.i), name: 'copy' };
  assert.deepEqual([copy.cookieI, copy.cookieR, copy.skeyidD, copy.skeyidA, copy.skeyidE, copy.encryptionKey, copy.lastIv], [a.i.cookieI, a.i.cookieR, a.i.skeyidD, a.i.skeyidA, a.i.skeyidE, a.i.encryptionKey, a.i.lastIv]);
});

test('a retained child SA: SPIs and keys in one block, given back unchanged', async () => {
  const pair = new Phase2Pair(crypto, await phase1Pair(crypto), { r: [child('c', 'aes128-sha256', { lifetimeKilobytes: 1000 })] });
  await pair.initiate(child('c', 'aes128-sha256', { lifetimeKilobytes: 1000 }));
  await pair.run();
  const c = pair.children('r')[0]!;
  const kept = retainChildSa(c);
  assert.equal(kept.spiIn.buffer, kept.keyBlock.buffer);
  assert.equal(kept.keyBlock.buffer.byteLength, 8 + 2 * (16 + 32));
  assert.deepEqual(fullChildSa(kept), c);
  assert.equal('inbound' in kept, false);
  // no optional field appears that the original did not have
  const plain = pair.children('i')[0]!;
  assert.deepEqual(Object.keys(fullChildSa(retainChildSa(plain))).sort(), Object.keys(plain).sort());
});

test('a finished Quick Mode answers a repeat during the retransmission window, then is let go; a late repeat is dropped as a used message ID', async () => {
  const pair = new Phase2Pair(crypto, await phase1Pair(crypto), { r: [child('c', 'aes128-sha1')] });
  await pair.initiate(child('c', 'aes128-sha1'));
  // deliver QM1, QM2, QM3 without running timers
  await pair.run(0);
  assert.equal(pair.children('i').length, 1);
  assert.equal(pair.children('r').length, 1);
  const qm2 = pair.wire.find((w) => w.from === 'r')!.bytes;
  const qm3 = pair.wire.filter((w) => w.from === 'i')[1]!.bytes;
  assert.equal(pair.i.ctx.heldExchanges, 1);
  assert.equal(pair.r.ctx.heldExchanges, 1);
  const window = retransmitTotalMs(DEFAULT_RETRANSMIT);
  assert.equal(pair.i.ctx.deadline, pair.now + window, 'the context asks to be called when the window ends');

  // within the window: the responder repeats QM2 (it never saw QM3), the initiator answers with QM3 again
  const again = await pair.i.ctx.handle(qm2, pair.now + window - 1);
  assert.deepEqual(again.send, [qm3]);

  // the window has passed: both let their exchange go
  for (const side of [pair.i, pair.r]) {
    const out = side.ctx.onTimer(pair.now + window);
    assert.deepEqual(out.send, []);
    assert.equal(side.ctx.heldExchanges, 0);
    assert.equal(side.ctx.deadline, null);
  }
  const late = await pair.i.ctx.handle(qm2, pair.now + window + 1);
  assert.deepEqual(late.send, []);
  assert.match(late.dropped.join(), /used message ID/);
  assert.deepEqual(late.events, []);
});
