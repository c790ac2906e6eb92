// Every algorithm, every padding length, both implementations in both directions, single and batch calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESP_ALGORITHMS, EspStatus, espKeyLengths, layoutSealBatch, type EspSa } from '../../ts/esp/index.js';
import { IMPLS, prng, saPair, skipFor } from './helpers.js';

const LENGTHS = [...Array.from({ length: 65 }, (_, i) => i), 100, 255, 1400, 1500, 8000, 65000];

for (const impl of IMPLS) {
  test(`[${impl}] every algorithm, payload lengths 0..64 and large: seal -> open, exact length and padding`, { skip: skipFor(impl) }, () => {
    const rnd = prng(1);
    for (const alg of ESP_ALGORITHMS) {
      for (const esn of [false, true]) {
        const { out, in: inb } = saPair(alg, { esn, outImpl: impl, inImpl: impl });
        const g = espKeyLengths(alg);
        for (const n of LENGTHS) {
          const payload = rnd(n);
          const pkt = out.seal(payload, 41);
          // SPI | seq | IV | ciphertext aligned to the block | ICV
          const ct = pkt.length - 8 - g.ivLength - g.icvLength;
          assert.equal(ct % g.blockSize, 0, `${alg} n=${n}`);
          assert.ok(ct - n - 2 < g.blockSize && ct >= n + 2);
          assert.equal(pkt.length, out.sealedLength(n));
          assert.equal(pkt.readUInt32BE(0), 0xc0ffee01);
          const r = inb.open(pkt);
          assert.ok(r.ok, `${alg} esn=${esn} n=${n}: ${JSON.stringify(r)}`);
          assert.deepEqual(r.payload, payload);
          assert.equal(r.nextHeader, 41);
        }
        assert.equal(out.sequence(), BigInt(LENGTHS.length));
        const total = LENGTHS.reduce((a, b) => a + b, 0);
        assert.deepEqual(inb.stats(), { packets: LENGTHS.length, bytes: total, authFailures: 0, replays: 0, malformed: 0, wrongSpi: 0 });
        assert.equal(out.stats().packets, LENGTHS.length);
        assert.equal(out.stats().bytes, total);
      }
    }
  });

  const other = impl === 'native' ? 'node' : 'native';
  test(`[${impl} -> ${other}] packets sealed by one implementation open in the other`, { skip: skipFor('native') }, () => {
    const rnd = prng(2);
    for (const alg of ESP_ALGORITHMS) {
      const { out, in: inb } = saPair(alg, { esn: true, outImpl: impl, inImpl: other });
      for (const n of [0, 1, 13, 14, 15, 16, 17, 300]) {
        const payload = rnd(n);
        const r = inb.open(out.seal(payload, 4));
        assert.ok(r.ok && r.payload.equals(payload), `${alg} n=${n}`);
      }
    }
  });

  test(`[${impl}] batch seal and open over one buffer, with headroom, and in place`, { skip: skipFor(impl) }, () => {
    const rnd = prng(3);
    for (const alg of ['aes128gcm16', 'aes256-sha256', 'chacha20poly1305', 'null-sha1'] as const) {
      const { out, in: inb } = saPair(alg, { outImpl: impl, inImpl: impl });
      const count = 40;
      const lengths = new Uint32Array(count).map((_, i) => (i * 97) % 1500);
      const offsets = new Uint32Array(count);
      let pos = 0;
      for (let i = 0; i < count; i++) {
        offsets[i] = pos;
        pos += lengths[i]!;
      }
      const input = rnd(pos);
      const nh = new Uint8Array(count).map((_, i) => i);
      const outOffsets = new Uint32Array(count);
      const total = layoutSealBatch(out, lengths, outOffsets, 8); // 8 octets free before each packet
      const output = Buffer.alloc(total);
      const outLengths = new Uint32Array(count);
      const status = new Uint8Array(count);
      assert.equal(out.sealBatch(input, offsets, lengths, nh, output, outOffsets, outLengths, status), count);
      assert.ok(status.every((s) => s === 0));
      // Open them in place: plaintext lands where the ciphertext was.
      const iv = espKeyLengths(alg).ivLength;
      const plainOffsets = outOffsets.map((o) => o + 8 + iv);
      const plainLengths = new Uint32Array(count);
      const nhOut = new Uint8Array(count);
      const st2 = new Uint8Array(count);
      assert.equal(inb.openBatch(output, outOffsets, outLengths, output, plainOffsets, plainLengths, nhOut, st2), count);
      for (let i = 0; i < count; i++) {
        assert.equal(st2[i], 0);
        assert.equal(nhOut[i], i);
        assert.deepEqual(
          output.subarray(plainOffsets[i], plainOffsets[i]! + plainLengths[i]!),
          input.subarray(offsets[i], offsets[i]! + lengths[i]!),
        );
      }
      // Seal in place: payloads placed at outOffset + 8 + IV.
      const buf = Buffer.alloc(total);
      const inOff = outOffsets.map((o) => o + 8 + iv);
      for (let i = 0; i < count; i++) input.copy(buf, inOff[i], offsets[i], offsets[i]! + lengths[i]!);
      assert.equal(out.sealBatch(buf, inOff, lengths, nh, buf, outOffsets, outLengths, status), count);
      assert.equal(inb.openBatch(buf, outOffsets, outLengths, Buffer.alloc(total), outOffsets, plainLengths, nhOut, st2), count);
    }
  });

  test(`[${impl}] one bad packet never fails the batch; count argument limits the work`, { skip: skipFor(impl) }, () => {
    const { out, in: inb } = saPair('aes128gcm16', { outImpl: impl, inImpl: impl });
    const pkts = [0, 1, 2, 3, 4].map((i) => out.seal(Buffer.alloc(100, i), 4));
    pkts[1]![50]! ^= 0x80; // forged
    pkts[3]!.writeUInt32BE(0xdeadbeef, 0); // another SA's SPI
    const input = Buffer.concat([...pkts, Buffer.from(pkts[2]!)]); // last one a replay of #2
    const n = 6;
    const lengths = new Uint32Array(n).fill(pkts[0]!.length);
    const offsets = lengths.map((l, i) => l * i);
    const output = Buffer.alloc(n * 200);
    const outOffsets = new Uint32Array(n).map((_, i) => i * 200);
    const outLengths = new Uint32Array(n);
    const nh = new Uint8Array(n);
    const status = new Uint8Array(n);
    assert.equal(inb.openBatch(input, offsets, lengths, output, outOffsets, outLengths, nh, status, 2), 1);
    assert.deepEqual([...status], [0, EspStatus.AUTH_FAILED, 0, 0, 0, 0]);
    status.fill(0xff);
    assert.equal(inb.openBatch(input, offsets, lengths, output, outOffsets, outLengths, nh, status), 2);
    assert.deepEqual([...status], [EspStatus.REPLAYED, EspStatus.AUTH_FAILED, 0, EspStatus.WRONG_SPI, 0, EspStatus.REPLAYED]);
    assert.deepEqual([...outLengths], [0, 0, 100, 0, 100, 0]);
    assert.deepEqual(inb.stats(), { packets: 3, bytes: 300, authFailures: 2, replays: 2, malformed: 0, wrongSpi: 1 });
  });

  test(`[${impl}] sequence number overflow: SEQ_OVERFLOW status, RangeError on seal, never a wrap`, { skip: skipFor(impl) }, () => {
    for (const esn of [false, true]) {
      const last = esn ? 0xffffffffffffffffn : 0xffffffffn;
      const { out, in: inb } = saPair('aes128-sha1', { esn, outImpl: impl, inImpl: impl, initialSequence: last - 1n });
      const a = out.seal(Buffer.from('a'), 4);
      const b = out.seal(Buffer.from('b'), 4); // the last usable number
      assert.equal(out.sequence(), last);
      assert.throws(() => out.seal(Buffer.from('c'), 4), (e: unknown) => e instanceof RangeError && (e as { status?: number }).status === EspStatus.SEQ_OVERFLOW);
      const status = new Uint8Array(2);
      const n = out.sealBatch(Buffer.alloc(10), new Uint32Array(2), new Uint32Array([5, 5]), new Uint8Array(2),
        Buffer.alloc(200), new Uint32Array([0, 100]), new Uint32Array(2), status);
      assert.equal(n, 0);
      assert.deepEqual([...status], [EspStatus.SEQ_OVERFLOW, EspStatus.SEQ_OVERFLOW]);
      assert.equal(out.sequence(), last);
      const inb2 = saPair('aes128-sha1', { esn, inImpl: impl, initialSequence: last - 1n }).in;
      void inb;
      assert.ok(inb2.open(a).ok && inb2.open(b).ok);
    }
  });

  test(`[${impl}] AEAD explicit IV is the sequence number; CBC IVs are random and distinct`, { skip: skipFor(impl) }, () => {
    const gcm = saPair('aes128gcm16', { outImpl: impl }).out;
    for (let i = 1; i <= 3; i++) assert.equal(gcm.seal(Buffer.alloc(10), 4).readBigUInt64BE(8), BigInt(i));
    const cbc = saPair('aes128-sha1', { outImpl: impl }).out;
    const ivs = new Set<string>();
    for (let i = 0; i < 600; i++) ivs.add(cbc.seal(Buffer.alloc(10), 4).subarray(8, 24).toString('hex'));
    assert.equal(ivs.size, 600);
  });

  test(`[${impl}] destroy() wipes the SA: later calls throw`, { skip: skipFor(impl) }, () => {
    const { out }: { out: EspSa } = saPair('aes128gcm16', { outImpl: impl });
    out.destroy();
    assert.throws(() => out.seal(Buffer.alloc(1), 4), /destroyed/);
  });
}
