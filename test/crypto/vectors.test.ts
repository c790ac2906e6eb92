// Published vectors (test/vectors, sources in its README) against both providers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, loadVectors, PROVIDERS } from './helpers.js';
import { dhGroupInfo, type DhGroupId, type HashName } from '../../ts/crypto/index.js';
import { nativeAddon } from '../../ts/native.js';

const CAVS_HASH: Record<string, HashName> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

const hmacV = loadVectors('hmac_rfc2202_rfc4231_rfc4868.json');
const modpV = loadVectors('modp_groups.json');
const ecpV = loadVectors('ecp_groups_rfc5903.json');
const pskV = loadVectors('ikev1_kdf_cavs_psk.json');
const dsaV = loadVectors('ikev1_kdf_cavs_dsa.json');
const capV = loadVectors('ikev1_capture_wireshark_certs.json');
const aesV = loadVectors('rfc3602_aes_cbc.json');

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  for (; e > 0n; e >>= 1n, b = (b * b) % m) if (e & 1n) r = (r * b) % m;
  return r;
}
const big = (b: Uint8Array) => BigInt('0x' + (Buffer.from(b).toString('hex') || '0'));

for (const { name, p, skip } of PROVIDERS) {
  test(`${name}: HMAC RFC 2202 / 4231 / 4868`, { skip }, () => {
    let n = 0;
    for (const c of hmacV.rfc2202) {
      const alg: HashName = c.algorithm === 'HMAC-MD5' ? 'md5' : 'sha1';
      assert.equal(p!.prf(alg, hex(c.key), hex(c.data)).toString('hex'), c.digest, `RFC 2202 ${c.algorithm} ${c.testCase}`);
      n++;
    }
    for (const c of hmacV.rfc4231) {
      for (const [alg, field] of [['sha256', 'hmacSha256'], ['sha384', 'hmacSha384'], ['sha512', 'hmacSha512']] as const) {
        const want: string = c[field];
        // Case 5 publishes only the leftmost 128 bits.
        assert.equal(p!.prf(alg, hex(c.key), hex(c.data)).toString('hex').slice(0, want.length), want, `RFC 4231 ${field} ${c.testCase}`);
        n++;
      }
    }
    for (const c of hmacV.rfc4868) {
      const alg = CAVS_HASH[c.hash]!;
      assert.equal(p!.prf(alg, hex(c.key), hex(c.data)).toString('hex'), c.prfOutput, `RFC 4868 ${c.testCase}`);
      n++;
    }
    assert.ok(n >= 47);
  });

  test(`${name}: prf over several buffers equals prf over their concatenation (RFC 2202 case 7 split)`, { skip }, () => {
    const c = hmacV.rfc2202.find((x: any) => x.testCase === 7 && x.algorithm === 'HMAC-SHA-1');
    const d = hex(c.data);
    assert.equal(p!.prf('sha1', hex(c.key), d.subarray(0, 5), d.subarray(5, 5), d.subarray(5)).toString('hex'), c.digest);
  });

  for (const [label, v] of [['psk', pskV], ['dsa', dsaV]] as const) {
    test(`${name}: NIST CAVS IKEv1 KDF (${label}): SKEYID, SKEYID_d, _a, _e`, { skip }, () => {
      let n = 0;
      for (const g of v.testGroups) {
        const alg = CAVS_HASH[g.hashAlg]!;
        for (const t of g.tests) {
          const skeyid =
            label === 'psk'
              ? p!.skeyidPsk(alg, hex(t.preSharedKey), hex(t.ni), hex(t.nr))
              : p!.skeyidSig(alg, hex(t.ni), hex(t.nr), hex(t.gxy));
          const where = `tg ${g.tgId} count ${t.count}`;
          assert.equal(skeyid.toString('hex'), t.skeyid, `SKEYID ${where}`);
          const k = p!.phase1Keys(alg, skeyid, hex(t.gxy), hex(t.ckyI), hex(t.ckyR));
          assert.equal(k.skeyidD.toString('hex'), t.skeyidD, `SKEYID_d ${where}`);
          assert.equal(k.skeyidA.toString('hex'), t.skeyidA, `SKEYID_a ${where}`);
          assert.equal(k.skeyidE.toString('hex'), t.skeyidE, `SKEYID_e ${where}`);
          n++;
        }
      }
      assert.equal(n, 170);
    });
  }

  test(`${name}: MODP groups use the RFC 2409 / 3526 primes (known-answer g^x and agreement)`, { skip }, () => {
    for (const g of modpV.groups) {
      const id = g.id as DhGroupId;
      const prime = BigInt('0x' + g.prime);
      const grp = p!.dhGroup(id);
      assert.equal(grp.publicLength, g.bits / 8);
      // A fixed exponent x: the provider's g^x must equal 2^x mod p computed here from the RFC's prime.
      const x = Buffer.alloc(40, 0);
      x.write('0123456789abcdeffedcba98765432100f1e2d3c4b5a6978', 'hex');
      x[39] = id;
      const key = grp.importPrivateKey(x);
      assert.equal(key.publicValue.length, g.bits / 8);
      assert.equal(big(key.publicValue), modPow(2n, big(x), prime), `g^x for group ${id}`);
      // And g^xy with a second fixed key, from either side, equals (g^y)^x mod p.
      const y = Buffer.from(x).reverse();
      y[0] = 0x7f;
      const key2 = grp.importPrivateKey(y);
      const s1 = key.computeSecret(key2.publicValue);
      assert.deepEqual(s1, key2.computeSecret(key.publicValue));
      assert.equal(big(s1), modPow(big(key2.publicValue), big(x), prime));
      assert.equal(s1.length, g.bits / 8);
    }
  });

  test(`${name}: g^x known answers for short exponents (the native fixed-base comb path) and edge exponents`, { skip }, () => {
    for (const g of modpV.groups) {
      const id = g.id as DhGroupId;
      const prime = BigInt('0x' + g.prime);
      const t = dhGroupInfo(id)!.exponentBits!;
      const tBytes = Math.ceil(t / 8);
      const allOnes = Buffer.alloc(tBytes, 0xff);
      allOnes[0] = (1 << (t - 8 * (tBytes - 1))) - 1; // exactly t one bits: every comb column and tooth set
      const top = Buffer.alloc(tBytes);
      top[0] = 1 << ((t - 1) % 8); // 2^(t-1): only the last tooth of the top column
      const xs = [Buffer.of(1), Buffer.of(2), Buffer.of(0x80, 0, 1), allOnes, top, Buffer.from(allOnes).fill(0x5a, 1)];
      for (const x of xs) {
        const k = p!.dhGroup(id).importPrivateKey(x);
        assert.equal(big(k.publicValue), modPow(2n, big(x), prime), `group ${id} x=${x.toString('hex')}`);
        assert.equal(k.publicValue.length, g.bits / 8);
      }
    }
  });

  test(`${name}: RFC 5903 section 8 ECDH vectors (groups 19, 20, 21)`, { skip }, () => {
    for (const g of ecpV.groups) {
      const t = g.testVector;
      const grp = p!.dhGroup(g.id as DhGroupId);
      const i = grp.importPrivateKey(hex(t.initiatorPrivate_i));
      const r = grp.importPrivateKey(hex(t.responderPrivate_r));
      assert.equal(i.publicValue.toString('hex'), t.gix + t.giy, `g^i group ${g.id}`);
      assert.equal(r.publicValue.toString('hex'), t.grx + t.gry, `g^r group ${g.id}`);
      // The KE payloads printed in the RFC are IKEv2 ones: 8 header octets, then x | y.
      assert.equal(hex(t.KEiPayload).subarray(8).toString('hex'), i.publicValue.toString('hex'));
      assert.equal(i.computeSecret(hex(t.grx + t.gry)).toString('hex'), t.sharedSecret, `g^ir group ${g.id}`);
      assert.equal(r.computeSecret(hex(t.gix + t.giy)).toString('hex'), t.girx);
    }
  });

  test(`${name}: Wireshark ikev1-certs capture: phase-1 IV, 3DES decryption of message 5, quick mode IV`, { skip }, () => {
    const d = capV.derivedHereAndVerified;
    const iv1 = p!.phase1Iv('md5', hex(d.gxi), hex(d.gxr), 8);
    assert.equal(iv1.toString('hex'), d.phase1Iv.value);
    // KE payload data in messages 3 and 4 are g^xi and g^xr (each after a 4-octet generic payload header).
    assert.ok(capV.messages[2].isakmp.includes(d.gxi) && capV.messages[3].isakmp.includes(d.gxr));
    const key = hex(capV.encryptionKey3des);
    const m5 = hex(capV.messages[4].isakmp);
    const body5 = m5.subarray(28); // after the 28-octet ISAKMP header
    const plain5 = p!.cbcDecrypt('des-ede3-cbc', key, iv1, body5);
    assert.equal(plain5.toString('hex'), d.message5.plaintextWithPadding);
    // Re-encrypting gives the captured bytes back.
    assert.deepEqual(p!.cbcEncrypt('des-ede3-cbc', key, iv1, plain5), body5);
    const m6 = hex(capV.messages[5].isakmp).subarray(28);
    assert.equal(body5.subarray(-8).toString('hex'), d.message6.iv);
    assert.equal(p!.cbcDecrypt('des-ede3-cbc', key, body5.subarray(-8), m6).toString('hex'), d.message6.plaintextWithPadding);
    const qmIv = p!.phase2Iv('md5', m6.subarray(-8), parseInt(d.quickMode1.messageId, 16), 8);
    assert.equal(qmIv.toString('hex'), d.quickMode1.iv);
    const qm1 = hex(capV.messages[6].isakmp).subarray(28);
    assert.equal(p!.cbcDecrypt('des-ede3-cbc', key, qmIv, qm1).toString('hex'), d.quickMode1.plaintextWithPadding);
  });

  test(`${name}: RFC 3602 AES-128-CBC cases 1-4`, { skip }, () => {
    for (const c of aesV.cipherCases) {
      assert.equal(p!.cbcEncrypt('aes-128-cbc', hex(c.key), hex(c.iv), hex(c.plaintext)).toString('hex'), c.ciphertext, `case ${c.case}`);
      assert.equal(p!.cbcDecrypt('aes-128-cbc', hex(c.key), hex(c.iv), hex(c.ciphertext)).toString('hex'), c.plaintext);
    }
  });
}

test('native: the addon holds exactly the RFC primes (dhGroupInfo) and the RFC 5903 field primes', { skip: nativeAddon() ? false : 'native addon not loaded' }, () => {
  const addon = nativeAddon()!;
  for (const g of modpV.groups) {
    const info = addon.dhGroupInfo(g.id);
    assert.equal(info.prime.toString('hex'), g.prime, `group ${g.id}`);
    assert.equal(info.bits, g.bits);
    assert.equal(g.generator, 2);
  }
  for (const g of ecpV.groups) assert.equal(addon.dhGroupInfo(g.id).prime.toString('hex'), g.parameters.p);
});
