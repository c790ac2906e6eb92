// Diffie-Hellman: agreement between the providers in every group, peer validation, the async path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { setImmediate as immediate } from 'node:timers/promises';
import { hex, loadVectors, PROVIDERS } from './helpers.js';
import { dhGroupInfo, nativeCrypto, nodeCrypto, SUPPORTED_DH_GROUPS, type DhGroupId } from '../../ts/crypto/index.js';

const nativeSkip = nativeCrypto ? false : 'native addon not loaded';
const modpV = loadVectors('modp_groups.json');
const ecpV = loadVectors('ecp_groups_rfc5903.json');

test('SUPPORTED_DH_GROUPS and dhGroupInfo', () => {
  assert.deepEqual([...SUPPORTED_DH_GROUPS], [1, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21]);
  assert.equal(dhGroupInfo(3), undefined);
  assert.equal(dhGroupInfo(1)!.weak, true);
  assert.equal(dhGroupInfo(2)!.weak, true);
  assert.equal(dhGroupInfo(14)!.weak, false);
  assert.equal(dhGroupInfo(14)!.keyword, 'modp2048');
  assert.equal(dhGroupInfo(21)!.publicLength, 132);
  assert.equal(dhGroupInfo(21)!.secretLength, 66);
});

test('a native key pair agrees with a node:crypto key pair in every group (both directions)', { skip: nativeSkip }, () => {
  for (const id of SUPPORTED_DH_GROUPS) {
    const a = nativeCrypto!.dhGroup(id).generateKeyPair();
    const b = nodeCrypto.dhGroup(id).generateKeyPair();
    const info = dhGroupInfo(id)!;
    assert.equal(a.publicValue.length, info.publicLength);
    assert.equal(b.publicValue.length, info.publicLength);
    const s1 = a.computeSecret(b.publicValue);
    const s2 = b.computeSecret(a.publicValue);
    assert.equal(s1.length, info.secretLength, `group ${id}`);
    assert.deepEqual(s1, s2, `group ${id}`);
  }
});

test('full-length exponents agree too (native <-> node, groups 2 and 14)', { skip: nativeSkip }, () => {
  for (const id of [2, 14] as DhGroupId[]) {
    const a = nativeCrypto!.dhGroup(id).generateKeyPair({ fullLengthExponent: true });
    const b = nodeCrypto.dhGroup(id).generateKeyPair({ fullLengthExponent: true });
    assert.deepEqual(a.computeSecret(b.publicValue), b.computeSecret(a.publicValue));
  }
});

test('native: generated private exponents follow the policy (short by default, full length on request)', { skip: nativeSkip }, async () => {
  const { nativeAddon } = await import('../../ts/native.js');
  const addon = nativeAddon()!;
  for (const id of SUPPORTED_DH_GROUPS) {
    const info = dhGroupInfo(id)!;
    const k = new addon.DhKey(id);
    k.generate();
    if (info.kind === 'modp') {
      assert.equal(k.privateKeyBits(), info.exponentBits, `group ${id} short exponent`);
      if (info.bits <= 2048) {
        const f = new addon.DhKey(id);
        await f.generateAsync(true);
        assert.ok(f.privateKeyBits() > info.bits - 64, `group ${id} full-length exponent has ${f.privateKeyBits()} bits`);
      }
    } else {
      assert.ok(k.privateKeyBits() > info.bits - 64 && k.privateKeyBits() <= info.bits, `group ${id} scalar`);
    }
  }
});

test('keys are fresh: two key pairs of a group differ', () => {
  for (const { p, skip } of PROVIDERS) {
    if (skip) continue;
    for (const id of [14, 19] as DhGroupId[]) {
      assert.notDeepEqual(p!.dhGroup(id).generateKeyPair().publicValue, p!.dhGroup(id).generateKeyPair().publicValue);
    }
  }
});

test('g^xy keeps its leading zero bytes (padded to the prime length)', { skip: nativeSkip }, () => {
  // Find, by trying, a pair whose MODP-768 secret starts with a zero byte (1 in 256 per try); both
  // providers must return the full 96 bytes.
  const g = 1 as DhGroupId;
  for (let i = 0; i < 4000; i++) {
    const a = nativeCrypto!.dhGroup(g).generateKeyPair();
    const b = nodeCrypto.dhGroup(g).generateKeyPair();
    const s = a.computeSecret(b.publicValue);
    if (s[0] === 0) {
      assert.equal(s.length, 96);
      assert.deepEqual(b.computeSecret(a.publicValue), s);
      return;
    }
  }
  assert.fail('no secret with a leading zero byte in 4000 tries');
});

function badModpValues(id: number): [string, Buffer][] {
  const g = modpV.groups.find((x: any) => x.id === id);
  const len = g.bits / 8;
  const p = hex(g.prime);
  const pMinus1 = Buffer.from(p);
  pMinus1[len - 1]! -= 1;
  const one = Buffer.alloc(len);
  one[len - 1] = 1;
  const two = Buffer.alloc(len);
  two[len - 1] = 2;
  return [
    ['0', Buffer.alloc(len)],
    ['1', one],
    ['p-1', pMinus1],
    ['p', p],
    ['all ones (> p)', Buffer.alloc(len, 0xff)],
    ['too long', Buffer.concat([Buffer.of(0), two])],
    ['too short', two.subarray(1)],
    ['empty', Buffer.alloc(0)],
  ];
}

function badEcpValues(id: number): [string, Buffer][] {
  const g = ecpV.groups.find((x: any) => x.id === id);
  const G = hex(g.parameters.gx + g.parameters.gy);
  const off = Buffer.from(G);
  off[off.length - 1]! ^= 1; // y + or - 1: not on the curve
  const flen = G.length / 2;
  const pBig = hex(g.parameters.p);
  return [
    ['off-curve point', off],
    ['(0, 0) (infinity in some encodings)', Buffer.alloc(2 * flen)],
    ['x = p', Buffer.concat([pBig, G.subarray(flen)])],
    ['all ones', Buffer.alloc(2 * flen, 0xff)],
    ['too long', Buffer.concat([G, Buffer.of(0)])],
    ['too short', G.subarray(1)],
    ['x only', G.subarray(0, flen)],
    ['SEC1 uncompressed (04 | x | y)', Buffer.concat([Buffer.of(4), G])],
  ];
}

for (const { name, p, skip } of PROVIDERS) {
  test(`${name}: invalid peer public values are rejected with RangeError (sync and async)`, { skip }, async () => {
    for (const id of [1, 2, 14, 19, 20, 21] as DhGroupId[]) {
      const key = p!.dhGroup(id).generateKeyPair();
      const bad = dhGroupInfo(id)!.kind === 'modp' ? badModpValues(id) : badEcpValues(id);
      for (const [what, v] of bad) {
        assert.throws(() => key.computeSecret(v), RangeError, `${name} group ${id}: ${what}`);
        await assert.rejects(key.computeSecretAsync(v), RangeError, `${name} group ${id} async: ${what}`);
      }
      // A valid point still works after the failures (no state left behind by the errors).
      const peer = p!.dhGroup(id).generateKeyPair();
      assert.deepEqual(key.computeSecret(peer.publicValue), peer.computeSecret(key.publicValue));
    }
  });

  test(`${name}: generateAndComputeAsync (a responder's key pair and g^xy in one trip) agrees with the peer; a bad peer value rejects`, { skip }, async () => {
    for (const id of [2, 14, 19, 21] as DhGroupId[]) {
      const initiator = p!.dhGroup(id).generateKeyPair();
      const { key, secret } = await p!.dhGroup(id).generateAndComputeAsync(initiator.publicValue);
      assert.equal(key.publicValue.length, dhGroupInfo(id)!.publicLength);
      assert.deepEqual(secret, initiator.computeSecret(key.publicValue), `${name} group ${id}`);
      assert.notDeepEqual(key.publicValue, initiator.publicValue);
      const bad = dhGroupInfo(id)!.kind === 'modp' ? badModpValues(id) : badEcpValues(id);
      for (const [what, v] of bad) await assert.rejects(p!.dhGroup(id).generateAndComputeAsync(v), RangeError, `${name} group ${id}: ${what}`);
    }
    await assert.rejects(p!.dhGroup(14).generateAndComputeAsync('nope' as unknown as Uint8Array), TypeError);
  });

  test(`${name}: the generator itself is a valid ECP peer value, and g^1 = G`, { skip }, () => {
    for (const g of ecpV.groups) {
      const one = Buffer.alloc(g.testVector.initiatorPrivate_i.length / 2);
      one[one.length - 1] = 1;
      const k = p!.dhGroup(g.id).importPrivateKey(one);
      assert.equal(k.publicValue.toString('hex'), g.parameters.gx + g.parameters.gy);
    }
  });

  test(`${name}: importPrivateKey range checks`, { skip }, () => {
    assert.throws(() => p!.dhGroup(14).importPrivateKey(Buffer.alloc(8)), RangeError);
    assert.throws(() => p!.dhGroup(14).importPrivateKey(Buffer.alloc(257, 1)), RangeError);
    assert.throws(() => p!.dhGroup(14).importPrivateKey(Buffer.alloc(256, 0xff)), RangeError); // > p-2
    const n = hex(ecpV.groups[0].parameters.n);
    assert.throws(() => p!.dhGroup(19).importPrivateKey(n), RangeError);
    assert.throws(() => p!.dhGroup(19).importPrivateKey(Buffer.alloc(32)), RangeError);
    assert.throws(() => p!.dhGroup(3 as DhGroupId), RangeError);
  });
}

test('native: async key generation and g^xy give the same results as sync', { skip: nativeSkip }, async () => {
  for (const id of [2, 14, 19, 21] as DhGroupId[]) {
    const g = nativeCrypto!.dhGroup(id);
    const a = await g.generateKeyPairAsync();
    const b = g.generateKeyPair();
    const c = await g.generateKeyPairAsync({ fullLengthExponent: true });
    const s = await a.computeSecretAsync(b.publicValue);
    assert.deepEqual(s, a.computeSecret(b.publicValue));
    assert.deepEqual(s, b.computeSecret(a.publicValue));
    assert.deepEqual(await c.computeSecretAsync(a.publicValue), a.computeSecret(c.publicValue));
  }
  // RFC 5903 on the async path.
  const t = ecpV.groups[1].testVector;
  const k = nativeCrypto!.dhGroup(20).importPrivateKey(hex(t.initiatorPrivate_i));
  assert.equal((await k.computeSecretAsync(hex(t.grx + t.gry))).toString('hex'), t.sharedSecret);
});

test('native: async DH runs as an AsyncWorker on the libuv pool and leaves the event loop free', { skip: nativeSkip }, async () => {
  const types: string[] = [];
  const hook = createHook({
    init(_id, type) {
      if (type.startsWith('ikeDh')) types.push(type);
    },
  }).enable();
  try {
    const g = nativeCrypto!.dhGroup(16);
    const a = await g.generateKeyPairAsync({ fullLengthExponent: true }); // a 4096-bit exponent: tens of ms
    const b = g.generateKeyPair();
    let settled = false;
    const pending = a.computeSecretAsync(b.publicValue).then((s) => {
      settled = true;
      return s;
    });
    // A synchronous implementation would have settled before the next turn of the loop.
    await immediate();
    assert.equal(settled, false, 'computeSecretAsync finished before the event loop turned');
    assert.deepEqual(await pending, b.computeSecret(a.publicValue));
    assert.ok(types.includes('ikeDhGenerate') && types.includes('ikeDhCompute'), `async resources seen: ${types.join(',')}`);
  } finally {
    hook.disable();
  }
});

test('native: many concurrent async operations on one key all agree (shared Montgomery context)', { skip: nativeSkip }, async () => {
  for (const id of [14, 19] as DhGroupId[]) {
    const a = nativeCrypto!.dhGroup(id).generateKeyPair();
    const peers = await Promise.all(Array.from({ length: 16 }, () => nativeCrypto!.dhGroup(id).generateKeyPairAsync()));
    const secrets = await Promise.all(peers.map((p) => a.computeSecretAsync(p.publicValue)));
    secrets.forEach((s, i) => assert.deepEqual(s, peers[i]!.computeSecret(a.publicValue)));
  }
});

test('native: the async path copies the peer value (mutating it after the call changes nothing)', { skip: nativeSkip }, async () => {
  const g = nativeCrypto!.dhGroup(15);
  const a = g.generateKeyPair();
  const b = g.generateKeyPair();
  const peer = Buffer.from(b.publicValue);
  const pending = a.computeSecretAsync(peer);
  peer.fill(0);
  assert.deepEqual(await pending, b.computeSecret(a.publicValue));
});

test('native: publicValue / computeSecret write into a caller buffer of the exact length, checked like any argument', { skip: nativeSkip }, async () => {
  const { nativeAddon } = await import('../../ts/native.js');
  const addon = nativeAddon()!;
  for (const id of [14, 19] as DhGroupId[]) {
    const info = dhGroupInfo(id)!;
    const a = new addon.DhKey(id);
    const b = new addon.DhKey(id);
    a.generate();
    b.generate();
    const pubOut = Buffer.alloc(info.publicLength);
    assert.equal(a.publicValue(pubOut), pubOut, 'returns the buffer it was given');
    assert.deepEqual(pubOut, a.publicValue());
    const secretOut = Buffer.alloc(info.secretLength);
    assert.equal(a.computeSecret(b.publicValue(), secretOut), secretOut);
    assert.deepEqual(secretOut, b.computeSecret(a.publicValue()));
    assert.throws(() => a.publicValue(Buffer.alloc(info.publicLength - 1)), RangeError);
    assert.throws(() => a.publicValue('x' as never), TypeError);
    assert.throws(() => a.computeSecret(b.publicValue(), Buffer.alloc(info.secretLength + 1)), RangeError);
    assert.throws(() => a.computeSecret(b.publicValue(), new Uint16Array(info.secretLength) as never), TypeError);
    // A bad peer value is refused before anything is written.
    const untouched = Buffer.alloc(info.secretLength, 0xaa);
    assert.throws(() => a.computeSecret(Buffer.alloc(info.publicLength), untouched), RangeError);
    assert.ok(untouched.every((x) => x === 0xaa));
  }
});
