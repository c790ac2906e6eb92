// Garbage argument combinations thrown at every function of the addon's crypto part: each call must return
// or throw a TypeError / RangeError (async calls: reject with one), never crash the process or throw anything
// else. A crash would kill this test file's process, which node --test reports as a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon } from '../../ts/native.js';

// Untyped on purpose: the point is to call it with arguments its types (NativeAddon) forbid.
const addon: any = nativeAddon();
const skip = addon ? false : 'native addon not loaded';

// A small deterministic PRNG so that a failure can be replayed from the printed seed.
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

const VALUES: unknown[] = [
  undefined, null, true, false, 0, 1, 2, 3, 4, 5, 8, 14, 16, 18, 19, 21, 22, 255, 256, 65536, 0xffffffff, 2 ** 32,
  -1, -0, 0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE, 1n, '', 'sha1', '1', {}, [], [1, 2],
  { length: 8 }, () => 0, Symbol('s'), new ArrayBuffer(8), new DataView(new ArrayBuffer(8)), new Uint16Array(8),
  new Float64Array(2), new Int8Array(8), new Uint8ClampedArray(8), new Uint8Array(0), Buffer.alloc(1), Buffer.alloc(7),
  Buffer.alloc(8, 0xff), Buffer.alloc(16, 1), Buffer.alloc(24, 2), Buffer.alloc(32, 3), Buffer.alloc(33), Buffer.alloc(64, 0xff),
  Buffer.alloc(66, 1), Buffer.alloc(96, 5), Buffer.alloc(128, 0xff), Buffer.alloc(132, 1), Buffer.alloc(256, 7),
  Buffer.alloc(257), Buffer.alloc(4096, 9), Buffer.alloc(16, 0).subarray(3, 11),
];

const FUNCTIONS = [
  'hash', 'prf', 'skeyidPsk', 'skeyidSig', 'phase1Keys', 'encryptionKey', 'phase1Iv', 'phase2Iv', 'keymat',
  'randomBytes', 'timingSafeEqual', 'hashSize', 'cbcEncrypt', 'cbcDecrypt', 'dhGroupInfo', 'phase1KeysPsk', 'prfEqual',
] as const;
const KEY_METHODS = ['generate', 'generateAsync', 'importPrivateKey', 'publicValue', 'computeSecret', 'computeSecretAsync', 'privateKeyBits'] as const;

function expectTypeOrRange(e: unknown, what: string): void {
  assert.ok(e instanceof TypeError || e instanceof RangeError, `${what} threw ${String(e)}`);
}

test('every addon function: garbage arguments give TypeError/RangeError only', { skip }, async () => {
  const seed = Date.now() & 0xffffffff;
  const r = rng(seed);
  const pick = () => VALUES[Math.floor(r() * VALUES.length)];
  const pending: Promise<unknown>[] = [];
  let calls = 0;
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 20_000 && Date.now() < deadline; i++) {
    const argc = Math.floor(r() * 10);
    const args = Array.from({ length: argc }, pick);
    // Half the time, start with a plausible code so the checks after the first argument are reached too.
    if (argc > 0 && r() < 0.5) args[0] = Math.floor(r() * 6);
    const fn = FUNCTIONS[i % FUNCTIONS.length]!;
    const what = `seed ${seed}: ${fn}(${args.map((a) => (typeof a === 'symbol' ? 'Symbol' : Buffer.isBuffer(a) ? `Buffer(${a.length})` : String(a))).join(', ')})`;
    calls++;
    try {
      addon[fn](...args);
    } catch (e) {
      expectTypeOrRange(e, what);
    }
  }
  // DhKey: construction with garbage, then every method with garbage on empty, generated and imported keys.
  for (let i = 0; i < 3000 && Date.now() < deadline; i++) {
    let key: any;
    const groupArg = r() < 0.7 ? [1, 2, 5, 14, 19, 20, 21][Math.floor(r() * 7)] : pick();
    try {
      key = new addon.DhKey(groupArg);
    } catch (e) {
      expectTypeOrRange(e, `seed ${seed}: new DhKey(${String(groupArg)})`);
      continue;
    }
    for (let j = 0; j < 4; j++) {
      const m = KEY_METHODS[Math.floor(r() * KEY_METHODS.length)]!;
      // generate with fullLengthExponent=true only rarely: it is the slow path.
      const args = m === 'generate' || m === 'generateAsync' ? [r() < 0.05 ? true : r() < 0.5 ? undefined : pick()] : [pick(), pick()];
      if (args[0] === true && groupArg !== 1 && groupArg !== 2) args[0] = false;
      const what = `seed ${seed}: DhKey(${String(groupArg)}).${m}(${args.map(String).join(', ')})`;
      calls++;
      try {
        const out = key[m](...args);
        if (out instanceof Promise) pending.push(out.catch((e) => expectTypeOrRange(e, what)));
      } catch (e) {
        expectTypeOrRange(e, what);
      }
    }
  }
  await Promise.all(pending);
  assert.ok(calls > 1000, `only ${calls} calls made`);
});

test('DhKey state misuse is a TypeError: no key yet, or a second key into the same object', { skip }, async () => {
  const k = new addon.DhKey(14);
  assert.throws(() => k.publicValue(), TypeError);
  assert.throws(() => k.computeSecret(Buffer.alloc(256, 1)), TypeError);
  const p = k.generateAsync();
  assert.throws(() => k.generate(), TypeError); // pending async generation
  await p;
  assert.throws(() => k.generate(), TypeError);
  assert.throws(() => k.importPrivateKey(Buffer.of(5)), TypeError);
  assert.equal(k.publicValue().length, 256);
  assert.throws(() => new addon.DhKey(3), RangeError);
  assert.throws(() => addon.DhKey(14), TypeError); // without new
});
