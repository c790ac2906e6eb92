// The two crypto engines of the native addon against each other (native/esp_mb.cc over intel-ipsec-mb,
// native/esp.cc over OpenSSL EVP): every algorithm intel-ipsec-mb runs, random payload sizes 0-9000 and batch
// sizes 1-256, byte-identical packets, identical statuses / outputs / statistics when opening (forgeries,
// replays inside one batch, wrong SPIs and truncations included), the published vectors through the
// intel-ipsec-mb engine, and an explicit count of lost or duplicated packets over many batches.
//
// IKE_ESP_LOSS_PACKETS sets that count (default 300,000, a few seconds; the report's 10M run set it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DataPlane } from '../../ts/gateway/dataplane.js';
import { createEspSa, espKeyLengths, layoutSealBatch, type EspAlgorithm, type EspSa, type EspSaParams } from '../../ts/esp/index.js';
import { nativeAddon } from '../../ts/native.js';
import { hex, loadVector, prng } from './helpers.js';

/** The algorithms of the intel-ipsec-mb engine (EVP covers the rest: NULL, integrity-less test transforms). */
const MB_ALGS: EspAlgorithm[] = [
  'aes128gcm16', 'aes192gcm16', 'aes256gcm16', 'chacha20poly1305',
  'aes128-sha1', 'aes192-sha1', 'aes256-sha1', 'aes128-sha256', 'aes256-sha256',
  'aes128-sha384', 'aes256-sha384', 'aes128-sha512', 'aes256-sha512',
];
const SPI = 0x5eed0001;

function mbSkip(): string | false {
  const a = nativeAddon();
  if (process.env.IKE_NO_NATIVE === '1') return 'IKE_NO_NATIVE=1: native addon disabled';
  if (a === null) throw new Error('native addon did not load');
  if (a.espIpsecMb) return false;
  // CI installs libipsec-mb-dev (scripts/install-interop-deps.sh): there the engine must be present.
  if (process.env.IKE_REQUIRE_IPSEC_MB === '1') throw new Error(`IKE_REQUIRE_IPSEC_MB=1 but ${a.espEngineInfo}`);
  return `the ipsec-mb engine is not available here: ${a.espEngineInfo}`;
}

function sa(alg: EspAlgorithm, direction: 'outbound' | 'inbound', engine: 'evp' | 'ipsec-mb', keymat: Buffer, extra: Partial<EspSaParams> = {}): EspSa {
  const s = createEspSa({ spi: SPI, algorithm: alg, direction, keymat, engine, implementation: 'native', allowInsecureForTests: true, ...extra });
  assert.equal(s.engine, engine);
  return s;
}

interface Sealed {
  buf: Buffer;
  offsets: Uint32Array;
  lengths: Uint32Array;
  status: Uint8Array;
}

function sealBatch(s: EspSa, payloads: Buffer[]): Sealed {
  const n = payloads.length;
  const lengths = Uint32Array.from(payloads, (p) => p.length);
  const offsets = new Uint32Array(n);
  let pos = 0;
  for (let i = 0; i < n; i++) (offsets[i] = pos), (pos += lengths[i]!);
  const input = Buffer.concat(payloads);
  const outOffsets = new Uint32Array(n);
  const buf = Buffer.alloc(layoutSealBatch(s, lengths, outOffsets, 3)); // 3: odd alignment on purpose
  const outLengths = new Uint32Array(n);
  const status = new Uint8Array(n);
  const nh = Uint8Array.from(payloads, (_, i) => i & 0xff);
  assert.equal(s.sealBatch(input, offsets, lengths, nh, buf, outOffsets, outLengths, status), n);
  return { buf, offsets: outOffsets, lengths: outLengths, status };
}

function openBatch(s: EspSa, buf: Buffer, offsets: Uint32Array, lengths: Uint32Array) {
  const n = offsets.length;
  const outOffsets = new Uint32Array(n);
  let pos = 0;
  for (let i = 0; i < n; i++) (outOffsets[i] = pos), (pos += s.openedCapacity(lengths[i]!));
  const out = Buffer.alloc(pos + 1);
  const outLengths = new Uint32Array(n);
  const nh = new Uint8Array(n);
  const status = new Uint8Array(n);
  const ok = s.openBatch(buf, offsets, lengths, out, outOffsets, outLengths, nh, status);
  const payloads = Array.from({ length: n }, (_, i) => (status[i] === 0 ? Buffer.from(out.subarray(outOffsets[i], outOffsets[i]! + outLengths[i]!)) : null));
  return { ok, status: Array.from(status), nh: Array.from(nh), payloads };
}

function randomPayloads(rnd: (n: number) => Buffer, count: number, maxSize: number): Buffer[] {
  return Array.from({ length: count }, () => rnd(rnd(2).readUInt16BE() % (maxSize + 1)));
}

test('the ipsec-mb engine is chosen per SA: AEAD and CBC+HMAC yes; ESN, NULL, integrity-less and sha256_96 transforms on EVP', { skip: mbSkip() }, () => {
  const km = (a: EspAlgorithm) => Buffer.alloc(espKeyLengths(a).keymatLength, 1);
  const mk = (a: EspAlgorithm, extra: Partial<EspSaParams> = {}) =>
    createEspSa({ spi: SPI, algorithm: a, direction: 'outbound', keymat: km(a), implementation: 'native', allowInsecureForTests: true, engine: 'auto', ...extra });
  for (const a of MB_ALGS) assert.equal(mk(a).engine, 'ipsec-mb', a);
  assert.equal(mk('aes128gcm16', { esn: true }).engine, 'evp');
  assert.equal(mk('null-sha256').engine, 'evp');
  assert.equal(mk('aes128-none').engine, 'evp');
  // the library takes only RFC 4868's 16-octet ICV for HMAC-SHA-256: the 96-bit variant runs on EVP
  assert.equal(mk('aes128-sha256_96').engine, 'evp');
  assert.throws(() => mk('aes256-sha256_96', { engine: 'ipsec-mb' }), /ipsec-mb engine cannot run aes256-sha256_96: not supported/);
  assert.equal(mk('aes128-sha1', { engine: 'evp' }).engine, 'evp');
  assert.throws(() => mk('aes128gcm16', { esn: true, engine: 'ipsec-mb' }), /ipsec-mb engine cannot run aes128gcm16 with ESN/);
  assert.throws(() => mk('aes128gcm16', { engine: 'fast' as never }), RangeError);
  const saved = process.env.IKE_ESP_ENGINE;
  try {
    process.env.IKE_ESP_ENGINE = 'evp';
    assert.equal(mk('aes128gcm16', { engine: undefined }).engine, 'evp');
    process.env.IKE_ESP_ENGINE = 'bogus';
    assert.throws(() => mk('aes128gcm16', { engine: undefined }), /from IKE_ESP_ENGINE/);
  } finally {
    if (saved === undefined) delete process.env.IKE_ESP_ENGINE;
    else process.env.IKE_ESP_ENGINE = saved;
  }
  assert.equal(createEspSa({ spi: SPI, algorithm: 'aes128gcm16', direction: 'outbound', keymat: km('aes128gcm16'), implementation: 'node' }).engine, 'node:crypto');
});

test('attached to the data plane, which seals and opens a burst per SA in one batch call, AES-CBC and AEAD SAs stay on ipsec-mb', { skip: mbSkip() }, () => {
  // A FIFO stands in for the TUN fd (no data, so the worker only waits); no root needed (as in dataplane.test.ts).
  const dir = mkdtempSync(path.join(tmpdir(), 'mbesp-'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  const fifo = openSync(path.join(dir, 'fifo'), 'r+');
  const dp = new DataPlane({ tunFd: fifo, address: '127.0.0.1', port: 0 });
  try {
    const peer = { address: '127.0.0.1', port: 4500 };
    const cbc = sa('aes128-sha1', 'outbound', 'ipsec-mb', Buffer.alloc(36, 2));
    const gcm = sa('aes128gcm16', 'outbound', 'ipsec-mb', Buffer.alloc(20, 2), { spi: SPI + 1 });
    dp.addOutbound({ spi: SPI, sa: cbc, localTs: ['10.0.0.0/8'], remoteTs: ['10.1.0.0/16'], peer });
    dp.addOutbound({ spi: SPI + 1, sa: gcm, localTs: ['10.2.0.0/16'], remoteTs: ['10.3.0.0/16'], peer });
    assert.equal(cbc.engine, 'ipsec-mb');
    assert.equal(gcm.engine, 'ipsec-mb');
    dp.close();
    // Given back: both still seal, on the engine they ended with.
    assert.equal(cbc.seal(Buffer.alloc(20), 4).length, cbc.sealedLength(20));
    assert.equal(gcm.seal(Buffer.alloc(20), 4).length, gcm.sealedLength(20));
  } finally {
    dp.close();
    closeSync(fifo);
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const alg of MB_ALGS) {
  test(`${alg}: batches sealed by ipsec-mb equal EVP byte for byte (random sizes 0-9000, batches 1-256)`, { skip: mbSkip() }, () => {
    const rnd = prng(alg.length * 7919 + alg.charCodeAt(4));
    const keymat = rnd(espKeyLengths(alg).keymatLength);
    const mbOut = sa(alg, 'outbound', 'ipsec-mb', keymat);
    const evpOut = sa(alg, 'outbound', 'evp', keymat);
    const evpIn = sa(alg, 'inbound', 'evp', keymat, { replayWindow: 4096 });
    const aead = espKeyLengths(alg).integKeyLength === 0;
    let seq = 0n;
    for (const count of [1, 2, 17, 64, 65, 200, 256]) {
      const payloads = randomPayloads(rnd, count, count > 64 ? 1500 : 9000);
      const mb = sealBatch(mbOut, payloads);
      const evp = sealBatch(evpOut, payloads);
      for (let i = 0; i < count; i++) {
        seq++;
        assert.equal(mb.status[i], 0);
        const pm = mb.buf.subarray(mb.offsets[i], mb.offsets[i]! + mb.lengths[i]!);
        const pe = evp.buf.subarray(evp.offsets[i], evp.offsets[i]! + evp.lengths[i]!);
        // AEAD: IV = sequence number, so the two engines' packets must be equal. CBC: random IVs, so EVP re-seals
        // with the IV the ipsec-mb packet carries.
        const expect = aead ? pe : evpOut.sealWithIv(payloads[i]!, i & 0xff, seq, pm.subarray(8, 24));
        assert.ok(pm.equals(expect), `${alg} batch ${count} packet ${i} (${payloads[i]!.length} B) differs`);
      }
      const opened = openBatch(evpIn, mb.buf, mb.offsets, mb.lengths);
      assert.equal(opened.ok, count);
      opened.payloads.forEach((p, i) => assert.ok(p!.equals(payloads[i]!)));
    }
  });

  test(`${alg}: ipsec-mb opens exactly as EVP (statuses, payloads, window, stats) with forgeries, in-batch replays, bad SPIs`, { skip: mbSkip() }, () => {
    const rnd = prng(alg.length * 104729 + 3);
    const keymat = rnd(espKeyLengths(alg).keymatLength);
    const out = sa(alg, 'outbound', 'evp', keymat);
    const mbIn = sa(alg, 'inbound', 'ipsec-mb', keymat, { replayWindow: 32 });
    const evpIn = sa(alg, 'inbound', 'evp', keymat, { replayWindow: 32 });
    for (const count of [1, 3, 64, 130, 256]) {
      const s = sealBatch(out, randomPayloads(rnd, count, count > 64 ? 1200 : 9000));
      const offsets = Array.from(s.offsets);
      const lengths = Array.from(s.lengths);
      for (let k = 0; k < Math.ceil(count / 8); k++) {
        const i = rnd(2).readUInt16BE() % count;
        const kind = k % 4;
        if (kind === 0) s.buf[s.offsets[i]! + lengths[i]! - 1]! ^= 0x40; // ICV
        else if (kind === 1) s.buf[s.offsets[i]! + 30]! ^= 1; // ciphertext (or IV)
        else if (kind === 2) (offsets.push(offsets[i]!), lengths.push(lengths[i]!)); // the same packet again
        else lengths[i] = Math.max(0, lengths[i]! - 1 - (k % 20)); // truncated
      }
      offsets.push(s.offsets[0]!);
      lengths.push(lengths[0]!);
      const o = Uint32Array.from(offsets);
      const l = Uint32Array.from(lengths);
      const m = openBatch(mbIn, s.buf, o, l);
      const e = openBatch(evpIn, s.buf, o, l);
      assert.deepEqual(m.status, e.status, `${alg} batch ${count}: statuses`);
      assert.deepEqual(m.nh, e.nh);
      m.payloads.forEach((p, i) => assert.ok(p === null ? e.payloads[i] === null : p.equals(e.payloads[i]!), `payload ${i}`));
      assert.ok(m.status.some((x) => x !== 0), 'the batch had bad packets');
    }
    assert.deepEqual(mbIn.stats(), evpIn.stats());
    assert.equal(mbIn.sequence(), evpIn.sequence());
    // Wrong SPI: both refuse it the same way.
    const p = out.seal(Buffer.alloc(40, 1), 4);
    p.writeUInt32BE(SPI + 1, 0);
    assert.deepEqual(mbIn.open(p), evpIn.open(p));
  });
}

test('published vectors through the ipsec-mb engine: draft-mcgrew-gcm-test-01 (no ESN) and RFC 7634 Appendix A', { skip: mbSkip() }, () => {
  const mcgrew = loadVector('aes_gcm_esp_mcgrew.json');
  const cases = mcgrew.cases.filter((c: any) => c.algorithm === 'AES-GCM-ESP' && !c.extendedSequenceNumbers);
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    const algorithm = `aes${c.keyLengthBits}gcm16` as EspAlgorithm;
    const seq = BigInt('0x' + c.seq);
    const pt = hex(c.plaintext);
    const padLen = pt[pt.length - 2]!;
    const payload = pt.subarray(0, pt.length - 2 - padLen);
    const params = { spi: parseInt(c.spi, 16), algorithm, keymat: hex(c.keyingMaterialRfc4106), engine: 'ipsec-mb' as const, allowInsecureForTests: true };
    const out = createEspSa({ ...params, direction: 'outbound' });
    assert.equal(out.engine, 'ipsec-mb');
    assert.equal(out.sealWithIv(payload, pt[pt.length - 1]!, seq, hex(c.iv)).toString('hex'), c.packet, `case ${c.case}`);
    const r = createEspSa({ ...params, direction: 'inbound', initialSequence: seq }).open(hex(c.packet));
    assert.ok(r.ok && r.payload.equals(payload), `case ${c.case} open`);
  }
  const e = loadVector('chacha20poly1305_esp_rfc7634.json').espExample;
  const params = { spi: parseInt(e.spi, 16), algorithm: 'chacha20poly1305' as const, keymat: hex(e.keymat), engine: 'ipsec-mb' as const };
  const out = createEspSa({ ...params, direction: 'outbound', allowInsecureForTests: true });
  assert.deepEqual(out.sealWithIv(hex(e.sourcePacket), 4, BigInt(e.sequenceNumber), hex(e.iv)), hex(e.espPacket).subarray(20));
  const r = createEspSa({ ...params, direction: 'inbound' }).open(hex(e.espPacket).subarray(20));
  assert.ok(r.ok && r.payload.equals(hex(e.sourcePacket)));
});

// Every packet carries its own number; after sealing and opening many batches through the ipsec-mb engine each
// number must have come back exactly once, with nothing lost to a job the manager did not return on flush.
for (const alg of ['aes128-sha1', 'aes128gcm16'] as EspAlgorithm[]) {
  test(`${alg}: no lost or duplicated packet through the ipsec-mb engine (IKE_ESP_LOSS_PACKETS, default 300k)`, { skip: mbSkip() }, () => {
    const total = Number(process.env.IKE_ESP_LOSS_PACKETS ?? 300_000);
    const keymat = Buffer.alloc(espKeyLengths(alg).keymatLength, 0x33);
    const out = sa(alg, 'outbound', 'ipsec-mb', keymat);
    const inb = sa(alg, 'inbound', 'ipsec-mb', keymat, { replayWindow: 1024 });
    const seen = new Uint8Array(total);
    const rnd = prng(99);
    const size = 64;
    const maxBatch = 256;
    const input = Buffer.alloc(size * maxBatch);
    const lengths = new Uint32Array(maxBatch);
    const offsets = new Uint32Array(maxBatch);
    const nh = new Uint8Array(maxBatch).fill(4);
    let sent = 0, lost = 0, dup = 0;
    while (sent < total) {
      const count = Math.min(total - sent, 1 + (rnd(1)[0]! % maxBatch));
      for (let i = 0; i < count; i++) {
        lengths[i] = 4 + ((sent + i) % (size - 4));
        offsets[i] = i * size;
        input.writeUInt32BE(sent + i, i * size);
      }
      const outOffsets = new Uint32Array(count);
      const sealed = Buffer.alloc(layoutSealBatch(out, lengths, outOffsets, 0, count));
      const outLengths = new Uint32Array(count);
      const st = new Uint8Array(count);
      const ok = out.sealBatch(input, offsets, lengths, nh, sealed, outOffsets, outLengths, st, count);
      const r = openBatch(inb, sealed, outOffsets, outLengths.subarray(0, count));
      lost += count - ok + (ok - r.ok);
      for (const p of r.payloads) {
        if (p === null) continue;
        const id = p.readUInt32BE(0);
        if (seen[id]!++ !== 0) dup++;
      }
      sent += count;
    }
    let missing = 0;
    for (let i = 0; i < total; i++) if (seen[i] !== 1) missing++;
    assert.deepEqual({ lost, dup, missing }, { lost: 0, dup: 0, missing: 0 });
    assert.equal(inb.stats().packets, total);
    assert.equal(inb.sequence(), BigInt(total));
  });
}
