// The native EspSa builds its OpenSSL context and HMAC states on its first packet, not at creation
// (native/esp.cc, Warm): whichever call comes first must work, stray or forged packets first must leave the SA
// as good as new, and a build that fails (no memory) must give CRYPTO_ERROR and leave the SA usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { espKeyLengths, ESP_ALGORITHMS, EspStatus, type EspSa } from '../../ts/esp/index.js';
import { prng, saPair, skipFor, testHooks } from './helpers.js';

const rnd = prng(77);
const payload = Buffer.from('first packet of an idle SA: the contexts are built now');

function ivFor(sa: EspSa, seq: bigint): Buffer {
  const g = espKeyLengths(sa.algorithm);
  if (g.kind === 'aead') {
    const iv = Buffer.alloc(8);
    iv.writeBigUInt64BE(seq); // RFC 4106 / 7634: what seal() itself puts there
    return iv;
  }
  return rnd(g.ivLength); // CBC: random (16 for AES, 8 for 3DES); NULL: none
}

function openAll(inb: EspSa, packets: Buffer[]): Uint8Array {
  const input = Buffer.concat(packets);
  const offsets = new Uint32Array(packets.length);
  const lengths = new Uint32Array(packets.map((p) => p.length));
  for (let i = 1; i < packets.length; i++) offsets[i] = offsets[i - 1]! + lengths[i - 1]!;
  const status = new Uint8Array(packets.length);
  inb.openBatch(input, offsets, lengths, Buffer.alloc(input.length), offsets, new Uint32Array(packets.length), new Uint8Array(packets.length), status);
  return status;
}

test('[native] every algorithm: the first call of a fresh SA works, whichever call it is', { skip: skipFor('native') }, () => {
  for (const alg of ESP_ALGORITHMS) {
    // seal() then open() as the first calls
    const a = saPair(alg, { replayWindow: 64 });
    const p1 = a.out.seal(payload, 4);
    const r1 = a.in.open(p1);
    assert.ok(r1.ok, `${alg}: ${!r1.ok && r1.reason}`);
    assert.deepEqual(r1.ok && r1.payload, payload);

    // sealWithIv as the first call; with a fixed IV it must give what a warm SA's seal gives for seq 1
    const b = saPair(alg, { replayWindow: 64 });
    const iv = ivFor(b.out, 1n);
    const p2 = b.out.sealWithIv(payload, 4, 1n, iv);
    if (espKeyLengths(alg).kind === 'aead' || espKeyLengths(alg).ivLength === 0) assert.deepEqual(p2, p1, `${alg}: sealWithIv on a cold SA`);
    assert.equal(b.out.sequence(), 0n); // the test hook does not count
    // openBatch as the first inbound call, several packets at once (a and b share keys and SPI: a.out goes on
    // with sequence numbers 2 and 3)
    const more = [p2, a.out.seal(payload, 41), a.out.seal(Buffer.alloc(0), 59)];
    assert.deepEqual([...openAll(b.in, more)], [0, 0, 0], alg);
    assert.equal(b.in.sequence(), 3n);
  }
});

test('[native] stray, short, replayed and forged packets first: the SA still opens the real one', { skip: skipFor('native') }, () => {
  for (const alg of ESP_ALGORITHMS) {
    const g = espKeyLengths(alg);
    const { out, in: inb } = saPair(alg, { replayWindow: 64 });
    const good = out.seal(payload, 4);
    const wrongSpi = Buffer.from(good);
    wrongSpi.writeUInt32BE(0xdeadbeef, 0);
    const zeroSeq = Buffer.from(good);
    zeroSeq.writeUInt32BE(0, 4);
    const first: [Buffer, number][] = [
      [wrongSpi, EspStatus.WRONG_SPI],
      [good.subarray(0, 8 + g.ivLength + g.icvLength + 1), EspStatus.MALFORMED],
      [zeroSeq, EspStatus.REPLAYED],
    ];
    if (g.icvLength > 0) {
      const forged = Buffer.from(good);
      forged[forged.length - 1]! ^= 0x80;
      first.push([forged, EspStatus.AUTH_FAILED]);
      const garbage = Buffer.concat([good.subarray(0, 8), rnd(good.length - 8)]);
      first.push([garbage, EspStatus.AUTH_FAILED]);
    }
    for (const [p, want] of first) {
      const r = inb.open(p);
      assert.ok(!r.ok && r.status === want, `${alg}: expected ${want}, got ${r.ok ? 'ok' : r.status}`);
    }
    const r = inb.open(good);
    assert.ok(r.ok, `${alg}: ${!r.ok && r.reason}`);
    assert.deepEqual(r.ok && r.payload, payload);
  }
});

test('[native] a context build that fails (no memory) gives CRYPTO_ERROR and the SA works on the next packet', { skip: skipFor('native') }, () => {
  // espFailNextWarms is a hook of the addon's test build and acts on that build's SAs: the pairs come from it.
  const addon = testHooks();
  try {
    for (const alg of ['aes128gcm16', 'chacha20poly1305', 'aes256-sha512', 'null-sha256'] as const) {
      const { out, in: inb } = saPair(alg, { replayWindow: 64, hooks: addon });
      // sealBatch: the first packet fails and uses no sequence number, the second builds and gets seq 1
      addon.espFailNextWarms(1);
      const lengths = new Uint32Array([payload.length, payload.length]);
      const outOffsets = new Uint32Array(2);
      const size = out.sealedLength(payload.length);
      outOffsets[1] = size;
      const output = Buffer.alloc(2 * size);
      const status = new Uint8Array(2);
      const outLengths = new Uint32Array(2);
      const n = out.sealBatch(Buffer.concat([payload, payload]), new Uint32Array([0, payload.length]), lengths, new Uint8Array([4, 4]), output, outOffsets, outLengths, status);
      assert.equal(n, 1, alg);
      assert.deepEqual([...status], [EspStatus.CRYPTO_ERROR, EspStatus.OK], alg);
      assert.equal(outLengths[0], 0);
      assert.equal(out.sequence(), 1n);
      const sealed = output.subarray(size, 2 * size);
      assert.equal(sealed.readUInt32BE(4), 1, `${alg}: the failed packet must not have used a sequence number`);

      // open: the failure leaves the window where it was, so the same packet opens afterwards
      addon.espFailNextWarms(1);
      const r0 = inb.open(sealed);
      assert.ok(!r0.ok && r0.status === EspStatus.CRYPTO_ERROR, alg);
      const r1 = inb.open(sealed);
      assert.ok(r1.ok, `${alg}: ${!r1.ok && r1.reason}`);
      assert.deepEqual(r1.ok && r1.payload, payload);

      // the single-packet and test-hook calls report it as an error, never a crash
      const c = saPair(alg, { hooks: addon });
      addon.espFailNextWarms(2);
      assert.throws(() => c.out.seal(payload, 4), (e: Error & { status?: number }) => e.status === EspStatus.CRYPTO_ERROR);
      assert.throws(() => c.out.sealWithIv(payload, 4, 1n, ivFor(c.out, 1n)), /failed to seal/);
      assert.ok(c.in.open(c.out.seal(payload, 4)).ok);
      assert.deepEqual(inb.stats().authFailures, 0);
    }
  } finally {
    addon.espFailNextWarms(0);
  }
});

test('[native] destroy() before the first packet, and after it: later calls throw, nothing else happens', { skip: skipFor('native') }, () => {
  for (const alg of ['aes128gcm16', 'aes128-sha1'] as const) {
    const cold = saPair(alg);
    cold.out.destroy?.();
    cold.in.destroy?.();
    cold.out.destroy?.(); // twice is fine
    assert.throws(() => cold.out.seal(payload, 4), /destroyed/);
    assert.throws(() => cold.in.open(Buffer.alloc(64)), /destroyed/);
    const warm = saPair(alg);
    const p = warm.out.seal(payload, 4);
    warm.in.destroy?.();
    assert.throws(() => warm.in.open(p), /destroyed/);
    assert.ok(warm.out.seal(payload, 4).length > 0); // its peer is unaffected
    warm.out.destroy?.();
  }
});

test('[native] many cold SAs warmed in an order unrelated to their creation', { skip: skipFor('native') }, () => {
  const pairs = Array.from({ length: 64 }, (_, i) => saPair(ESP_ALGORITHMS[i % ESP_ALGORITHMS.length]!, { spi: 0x10000 + i }));
  const sealed = pairs.map((p, i) => (i % 3 === 0 ? null : p.out.seal(rnd(i * 7), 4)));
  for (let i = pairs.length - 1; i >= 0; i--) {
    const s = sealed[i] ?? pairs[i]!.out.seal(rnd(i * 7), 4);
    const r = pairs[i]!.in.open(s);
    assert.ok(r.ok, `pair ${i} (${pairs[i]!.out.algorithm}): ${!r.ok && r.reason}`);
  }
});
