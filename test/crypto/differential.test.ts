// Native vs node:crypto on random inputs, for every primitive of the CryptoProvider. fast-check prints the
// seed and a shrunk counterexample on failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HASH_NAMES, IKE_CIPHER_NAMES, cipherInfo, hashLength, nativeCrypto, nodeCrypto } from '../../ts/crypto/index.js';

const skip = nativeCrypto ? false : 'native addon not loaded';
const N = nativeCrypto!;
const J = nodeCrypto;
const runs = { numRuns: 150 };

const alg = fc.constantFrom(...HASH_NAMES);
const bytes = (max = 300) => fc.uint8Array({ minLength: 0, maxLength: max });
const parts = fc.array(bytes(200), { maxLength: 6 });
const cookie = fc.uint8Array({ minLength: 8, maxLength: 8 });

test('hash and prf (several data buffers, any key length)', { skip }, () => {
  fc.assert(
    fc.property(alg, bytes(), parts, (a, key, data) => {
      assert.deepEqual(N.hash(a, ...data), J.hash(a, ...data));
      assert.deepEqual(N.prf(a, key, ...data), J.prf(a, key, ...data));
      assert.equal(N.prf(a, key, ...data).length, hashLength(a));
    }),
    runs,
  );
});

test('SKEYID (psk and signature) and SKEYID_d/_a/_e', { skip }, () => {
  fc.assert(
    fc.property(alg, bytes(64), bytes(256), bytes(256), bytes(1024), cookie, cookie, (a, psk, ni, nr, gxy, ci, cr) => {
      assert.deepEqual(N.skeyidPsk(a, psk, ni, nr), J.skeyidPsk(a, psk, ni, nr));
      const s = N.skeyidSig(a, ni, nr, gxy);
      assert.deepEqual(s, J.skeyidSig(a, ni, nr, gxy));
      assert.deepEqual(N.phase1Keys(a, s, gxy, ci, cr), J.phase1Keys(a, s, gxy, ci, cr));
    }),
    runs,
  );
});

test('phase1KeysPsk equals skeyidPsk + phase1Keys + encryptionKey + phase1Iv, in both providers', { skip }, () => {
  fc.assert(
    fc.property(
      alg,
      fc.tuple(bytes(64), bytes(256), bytes(256), bytes(512), bytes(512), bytes(512)),
      cookie,
      cookie,
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1, max: 64 }),
      (a, [psk, ni, nr, gxy, gxi, gxr], ci, cr, keyLength, ivBytes) => {
        const iv = Math.min(ivBytes, hashLength(a));
        const skeyid = J.skeyidPsk(a, psk, ni, nr);
        const k = J.phase1Keys(a, skeyid, gxy, ci, cr);
        const want = { ...k, encryptionKey: J.encryptionKey(a, k.skeyidE, keyLength), iv: J.phase1Iv(a, gxi, gxr, iv) };
        const p = { psk, nonceI: ni, nonceR: nr, gxy, cookieI: ci, cookieR: cr, gxi, gxr };
        for (const P of [N, J]) {
          const got = P.phase1KeysPsk(a, p, keyLength, iv);
          for (const f of ['skeyid', 'skeyidD', 'skeyidA', 'skeyidE', 'encryptionKey', 'iv'] as const) assert.deepEqual(Buffer.from(got[f]), Buffer.from(want[f]), `${P.name} ${f}`);
        }
      },
    ),
    runs,
  );
  assert.throws(() => N.phase1KeysPsk('sha1', { psk: Buffer.alloc(4), nonceI: Buffer.alloc(8), nonceR: Buffer.alloc(8), gxy: Buffer.alloc(8), cookieI: Buffer.alloc(7), cookieR: Buffer.alloc(8), gxi: Buffer.alloc(8), gxr: Buffer.alloc(8) }, 16, 16), RangeError);
  assert.throws(() => N.phase1KeysPsk('sha1', { psk: Buffer.alloc(4), nonceI: Buffer.alloc(8), nonceR: Buffer.alloc(8), gxy: Buffer.alloc(8), cookieI: Buffer.alloc(8), cookieR: Buffer.alloc(8), gxi: Buffer.alloc(8), gxr: Buffer.alloc(8) }, 16, 21), RangeError);
});

test('prfEqual is prf compared with the expected value (any difference, any other length: false)', { skip }, () => {
  fc.assert(
    fc.property(alg, bytes(), parts, fc.nat(), (a, key, data, flip) => {
      const mac = J.prf(a, key, ...data);
      const wrong = Buffer.from(mac);
      wrong[flip % wrong.length]! ^= 1 << (flip % 8);
      for (const P of [N, J]) {
        assert.equal(P.prfEqual(a, key, mac, ...data), true);
        assert.equal(P.prfEqual(a, key, wrong, ...data), false);
        assert.equal(P.prfEqual(a, key, mac.subarray(1), ...data), false);
        assert.equal(P.prfEqual(a, key, Buffer.concat([mac, Buffer.alloc(1)]), ...data), false);
      }
    }),
    runs,
  );
});

test('Appendix B encryption key expansion, IVs, KEYMAT with and without PFS', { skip }, () => {
  fc.assert(
    fc.property(
      alg,
      bytes(64),
      fc.integer({ min: 1, max: 300 }),
      bytes(512),
      bytes(512),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.option(bytes(512), { nil: undefined }),
      fc.integer({ min: 0, max: 255 }),
      bytes(8),
      (a, k, len, g1, g2, mid, gxy, protocol, spi) => {
        assert.deepEqual(N.encryptionKey(a, k, len), J.encryptionKey(a, k, len));
        const bs = 1 + (len % hashLength(a));
        assert.deepEqual(N.phase1Iv(a, g1, g2, bs), J.phase1Iv(a, g1, g2, bs));
        assert.deepEqual(N.phase2Iv(a, g1, mid, bs), J.phase2Iv(a, g1, mid, bs));
        const params = { gxy, protocol, spi, nonceI: g1, nonceR: g2 };
        const km = N.keymat(a, k, params, len);
        assert.equal(km.length, len);
        assert.deepEqual(km, J.keymat(a, k, params, len));
      },
    ),
    runs,
  );
});

test('encryption key: long SKEYID_e is truncated, short one expanded from prf(SKEYID_e, 0)', { skip }, () => {
  const e = Buffer.alloc(20, 7);
  assert.deepEqual(N.encryptionKey('sha1', e, 16), e.subarray(0, 16));
  const k1 = N.prf('sha1', e, Buffer.of(0));
  const k2 = N.prf('sha1', e, k1);
  assert.deepEqual(N.encryptionKey('sha1', e, 32), Buffer.concat([k1, k2]).subarray(0, 32));
});

test('KEYMAT: K1 = prf(SKEYID_d, [g^xy] | protocol | SPI | Ni | Nr), K2 = prf(SKEYID_d, K1 | ...)', { skip }, () => {
  const d = Buffer.alloc(32, 1);
  const spi = Buffer.from('01020304', 'hex');
  const ni = Buffer.alloc(16, 2);
  const nr = Buffer.alloc(16, 3);
  const gxy = Buffer.alloc(256, 4);
  const k1 = N.prf('sha256', d, gxy, Buffer.of(3), spi, ni, nr);
  const k2 = N.prf('sha256', d, k1, gxy, Buffer.of(3), spi, ni, nr);
  assert.deepEqual(N.keymat('sha256', d, { gxy, protocol: 3, spi, nonceI: ni, nonceR: nr }, 40), Buffer.concat([k1, k2]).subarray(0, 40));
  const noPfs = N.prf('sha256', d, Buffer.of(3), spi, ni, nr);
  assert.deepEqual(N.keymat('sha256', d, { protocol: 3, spi, nonceI: ni, nonceR: nr }, 20), noPfs.subarray(0, 20));
});

test('CBC encrypt/decrypt for every IKE cipher', { skip }, () => {
  fc.assert(
    fc.property(fc.constantFrom(...IKE_CIPHER_NAMES), fc.uint8Array({ minLength: 48, maxLength: 48 }), fc.integer({ min: 0, max: 40 }), bytes(640), (c, kiv, blocks, raw) => {
      const info = cipherInfo(c);
      const key = kiv.subarray(0, info.keyLength);
      const iv = kiv.subarray(32, 32 + info.blockSize);
      const data = Buffer.alloc(blocks * info.blockSize);
      Buffer.from(raw).copy(data);
      const ct = N.cbcEncrypt(c, key, iv, data);
      assert.deepEqual(ct, J.cbcEncrypt(c, key, iv, data));
      assert.deepEqual(N.cbcDecrypt(c, key, iv, ct), data);
      assert.deepEqual(J.cbcDecrypt(c, key, iv, ct), data);
    }),
    runs,
  );
});

test('DES-CBC (FIPS 81 / NBS known answer: "Now is the time for all " under 0123456789abcdef)', { skip }, () => {
  // The classic DES CBC example of FIPS PUB 81 Appendix C: key 0123456789abcdef, IV 1234567890abcdef.
  const key = Buffer.from('0123456789abcdef', 'hex');
  const iv = Buffer.from('1234567890abcdef', 'hex');
  const pt = Buffer.from('4e6f77206973207468652074696d6520666f7220616c6c20', 'hex');
  const want = 'e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6';
  for (const p of [N, J]) assert.equal(p.cbcEncrypt('des-cbc', key, iv, pt).toString('hex'), want, p.name);
});

test('randomBytes and timingSafeEqual', { skip }, () => {
  for (const p of [N, J]) {
    assert.equal(p.randomBytes(0).length, 0);
    const r = p.randomBytes(64);
    assert.equal(r.length, 64);
    assert.notDeepEqual(r, p.randomBytes(64));
    assert.equal(p.timingSafeEqual(r, Buffer.from(r)), true);
    const r2 = Buffer.from(r);
    r2[63]! ^= 1;
    assert.equal(p.timingSafeEqual(r, r2), false);
    assert.equal(p.timingSafeEqual(r, r.subarray(1)), false);
    assert.equal(p.timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  }
});

test('both providers refuse more than 32 data buffers with a RangeError', { skip }, () => {
  const many = Array.from({ length: 33 }, () => Buffer.alloc(1));
  for (const p of [N, J]) {
    assert.throws(() => p.hash('sha1', ...many), RangeError, p.name);
    assert.throws(() => p.prf('sha1', Buffer.alloc(4), ...many), RangeError, p.name);
    assert.deepEqual(p.hash('sha1', ...many.slice(1)), J.hash('sha1', Buffer.alloc(32)));
  }
});

test('native randomBytes: pooled small draws are all distinct, across pool refills, and large draws bypass the pool', { skip: nativeCrypto ? false : 'the native addon did not load' }, () => {
  if (!nativeCrypto) return;
  const seen = new Set<string>();
  let total = 0;
  for (let i = 0; i < 2000; i++) {
    const n = 1 + (i % 97); // odd sizes so draws straddle the 4 KiB refills
    const b = nativeCrypto.randomBytes(n);
    assert.equal(b.length, n);
    total += n;
    if (n >= 16) {
      const hex = b.toString('hex');
      assert.ok(!seen.has(hex), 'a random value was handed out twice');
      seen.add(hex);
    }
  }
  assert.ok(total > 4 * 4096, 'the test crossed several refills');
  const big = nativeCrypto.randomBytes(10_000);
  assert.equal(big.length, 10_000);
  assert.ok(big.some((x) => x !== 0));
  assert.equal(nativeCrypto.randomBytes(0).length, 0);
});
