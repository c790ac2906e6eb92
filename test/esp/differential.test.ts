// The SAs against independent references on random packets: libsodium (ChaCha20-Poly1305 IETF) and
// ESP packets assembled by hand with node:crypto primitives (AES-GCM, AES-CBC + HMAC).
// libsodium-wrappers' wasm build has no AES-256-GCM (crypto_aead_aes256gcm_* is absent, not even an
// is_available() to ask), so AES-GCM is checked against node:crypto only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { espKeyLengths, splitEspKeymat, type EspAlgorithm } from '../../ts/esp/index.js';
import { IMPLS, prng, saPair, skipFor } from './helpers.js';

const SPI = 0xc0ffee01;

function trailer(payload: Buffer, nextHeader: number, align: number): Buffer {
  const ct = Math.ceil((payload.length + 2) / align) * align;
  const pad = ct - payload.length - 2;
  return Buffer.concat([payload, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1)), Buffer.from([pad, nextHeader])]);
}
function header(seq: bigint): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(SPI, 0);
  h.writeUInt32BE(Number(seq & 0xffffffffn), 4);
  return h;
}
function aad(seq: bigint, esn: boolean): Buffer {
  const a = Buffer.alloc(esn ? 12 : 8);
  a.writeUInt32BE(SPI, 0);
  if (esn) a.writeBigUInt64BE(seq, 4);
  else a.writeUInt32BE(Number(seq), 4);
  return a;
}
function seq8(seq: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(seq);
  return b;
}

/** RFC 4106 / RFC 7634 packet built from primitives. */
function referenceAead(alg: EspAlgorithm, keymat: Buffer, seq: bigint, esn: boolean, payload: Buffer, nh: number): Buffer {
  const { encryptionKey, salt } = splitEspKeymat(alg, keymat);
  const iv = seq8(seq);
  const pt = trailer(payload, nh, 4);
  if (alg === 'chacha20poly1305') {
    const r = sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(pt, aad(seq, esn), null, Buffer.concat([salt, iv]), encryptionKey);
    return Buffer.concat([header(seq), iv, r.ciphertext, r.mac]);
  }
  const c = createCipheriv(espKeyLengths(alg).nodeCipher as 'aes-128-gcm', encryptionKey, Buffer.concat([salt, iv]));
  c.setAAD(aad(seq, esn));
  const ct = Buffer.concat([c.update(pt), c.final()]);
  return Buffer.concat([header(seq), iv, ct, c.getAuthTag()]);
}

/** RFC 3602 / RFC 2451 + RFC 2403/2404/4868 packet with a chosen IV. */
function referenceCbc(alg: EspAlgorithm, keymat: Buffer, seq: bigint, esn: boolean, iv: Buffer, payload: Buffer, nh: number): Buffer {
  const g = espKeyLengths(alg);
  const { encryptionKey, integrityKey } = splitEspKeymat(alg, keymat);
  const c = createCipheriv(g.nodeCipher!, encryptionKey, iv).setAutoPadding(false);
  const body = Buffer.concat([header(seq), iv, c.update(trailer(payload, nh, g.blockSize)), c.final()]);
  const hi = Buffer.alloc(4);
  hi.writeUInt32BE(Number(seq >> 32n));
  const mac = createHmac(g.nodeHash!, integrityKey).update(body).update(esn ? hi : Buffer.alloc(0)).digest();
  return Buffer.concat([body, mac.subarray(0, g.icvLength)]);
}

test('libsodium: AES-256-GCM is not in the wasm build, ChaCha20-Poly1305 IETF is', async () => {
  await sodium.ready;
  const s = sodium as unknown as Record<string, unknown>;
  assert.equal(typeof s.crypto_aead_chacha20poly1305_ietf_encrypt_detached, 'function');
  // If a future build has it, this test tells us to add AES-GCM to the libsodium comparison.
  assert.equal(typeof s.crypto_aead_aes256gcm_encrypt_detached, 'undefined');
});

for (const impl of IMPLS) {
  test(`[${impl}] AEAD packets equal libsodium (ChaCha20-Poly1305) / node:crypto (AES-GCM) byte for byte, both ways`, { skip: skipFor(impl) }, async () => {
    await sodium.ready;
    const rnd = prng(5);
    for (const alg of ['chacha20poly1305', 'aes128gcm16', 'aes192gcm16', 'aes256gcm16'] as const) {
      for (const esn of [false, true]) {
        const keymat = rnd(espKeyLengths(alg).keymatLength);
        const start = esn ? 0xfffffff0n : 1n;
        const { out, in: inb } = saPair(alg, { keymat, esn, outImpl: impl, inImpl: impl, initialSequence: start });
        for (let i = 0; i < 60; i++) {
          const seq = start + BigInt(i);
          const payload = rnd(rnd(2).readUInt16LE(0) % 1600);
          const nh = rnd(1)[0]!;
          const mine = out.seal(payload, nh);
          const ref = referenceAead(alg, keymat, seq, esn, payload, nh);
          assert.deepEqual(mine, ref, `${alg} esn=${esn} seq=${seq}`);
          const r = inb.open(ref);
          assert.ok(r.ok && r.payload.equals(payload) && r.nextHeader === nh);
          if (alg === 'chacha20poly1305') {
            // And libsodium opens ours.
            const { encryptionKey, salt } = splitEspKeymat(alg, keymat);
            const pt = sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(
              null, mine.subarray(16, mine.length - 16), mine.subarray(mine.length - 16), aad(seq, esn),
              Buffer.concat([salt, mine.subarray(8, 16)]), encryptionKey);
            assert.deepEqual(Buffer.from(pt), trailer(payload, nh, 4));
          }
        }
      }
    }
  });

  test(`[${impl}] sha256_96 (Android 6, old Linux kernels): the packet of sha256 with its ICV cut to 12 octets; each refuses the other's`, { skip: skipFor(impl) }, () => {
    const rnd = prng(7);
    for (const [full, short] of [['aes128-sha256', 'aes128-sha256_96'], ['3des-sha256', '3des-sha256_96']] as const) {
      const keymat = rnd(espKeyLengths(full).keymatLength);
      const a = saPair(full, { keymat, outImpl: impl, inImpl: impl });
      const b = saPair(short, { keymat, outImpl: impl, inImpl: impl });
      for (let i = 0; i < 20; i++) {
        const payload = rnd(rnd(2).readUInt16LE(0) % 1500);
        const iv = rnd(espKeyLengths(full).ivLength);
        const p128 = a.out.sealWithIv(payload, 4, BigInt(i + 1), iv);
        const p96 = b.out.sealWithIv(payload, 4, BigInt(i + 1), iv);
        assert.equal(p96.length, p128.length - 4, `${short}: 12-octet ICV`);
        assert.deepEqual(p96, p128.subarray(0, p128.length - 4));
        // not negotiated: a peer with the other truncation fails every packet's integrity check
        assert.equal(b.in.open(p128).ok, false);
        assert.equal(a.in.open(p96).ok, false);
        const r = b.in.open(p96);
        assert.ok(r.ok && r.payload.equals(payload), `${short} opens its own packet`);
      }
    }
  });

  test(`[${impl}] AES-CBC / 3DES-CBC + HMAC packets equal node:crypto's, and node:crypto verifies and decrypts ours`, { skip: skipFor(impl) }, () => {
    const rnd = prng(6);
    const algs = ['aes128-sha1', 'aes256-sha1', 'aes128-sha256', 'aes256-sha384', 'aes192-sha512',
      '3des-sha1', '3des-md5', '3des-sha256', '3des-sha512', 'aes128-md5', 'aes256-md5', 'aes128-sha256_96', '3des-sha256_96'] as const;
    for (const alg of algs) {
      for (const esn of [false, true]) {
        const g = espKeyLengths(alg);
        const keymat = rnd(g.keymatLength);
        const start = esn ? 0x1_fffffff0n : 1n;
        const { out, in: inb } = saPair(alg, { keymat, esn, outImpl: impl, inImpl: impl, initialSequence: start });
        const { encryptionKey, integrityKey } = splitEspKeymat(alg, keymat);
        for (let i = 0; i < 40; i++) {
          const seq = start + BigInt(i);
          const payload = rnd(rnd(2).readUInt16LE(0) % 1600);
          const iv = rnd(g.ivLength);
          assert.deepEqual(out.sealWithIv(payload, 4, seq, iv), referenceCbc(alg, keymat, seq, esn, iv, payload, 4));
          const mine = out.seal(payload, 17);
          // node:crypto checks our ICV (ESN high half appended) and decrypts.
          const body = mine.subarray(0, mine.length - g.icvLength);
          const hi = Buffer.alloc(4);
          hi.writeUInt32BE(Number(seq >> 32n));
          const mac = createHmac(g.nodeHash!, integrityKey).update(body).update(esn ? hi : Buffer.alloc(0)).digest();
          assert.deepEqual(mac.subarray(0, g.icvLength), mine.subarray(mine.length - g.icvLength));
          const ct = 8 + g.ivLength;
          const d = createDecipheriv(g.nodeCipher!, encryptionKey, mine.subarray(8, ct)).setAutoPadding(false);
          assert.deepEqual(Buffer.concat([d.update(mine.subarray(ct, mine.length - g.icvLength)), d.final()]), trailer(payload, 17, g.blockSize));
          const r = inb.open(referenceCbc(alg, keymat, seq, esn, rnd(g.ivLength), payload, 9));
          assert.ok(r.ok && r.payload.equals(payload) && r.nextHeader === 9, `${alg} esn=${esn} seq=${seq}`);
        }
      }
    }
  });
}
