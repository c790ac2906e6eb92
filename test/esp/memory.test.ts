// Native memory of ESP SAs, read from malloc's own accounting (espMallocInUse, glibc, a hook of the addon's
// test build that reads the whole process; the SAs are the production addon's): an SA that never
// carried a packet must not hold OpenSSL contexts, destroy() must free them, and nothing may stay behind once
// the JS objects are collected, whether the SA was used or not. A file of its own: the figures need a
// process where nothing else allocates meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createEspSa, espKeyLengths, type EspAlgorithm, type EspSa } from '../../ts/esp/index.js';
import { skipFor, testHooks } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function settle(): Promise<void> {
  // Node-API finalizers run on a later turn of the event loop than the collection that found the objects, and
  // V8 frees some of its own blocks a collection or two later: collect until the figure stops falling.
  let last = Infinity;
  for (let i = 0; i < 12; i++) {
    gc();
    await tick();
    const now = hooks!.espMallocInUse();
    if (i >= 3 && now > last - 16 * 1024) return;
    last = now;
  }
}

const N = 4000;
// Measured (see ts/esp/README.md): about 430 octets per idle SA, plus about 1.1 KiB per SA once its
// contexts exist; before the contexts became lazy an idle SA held about 7 KiB. The bounds sit between.
const IDLE_MAX_PER_PAIR = 2000;
const CONTEXTS_MIN_PER_PAIR = 1000;
// Once settled, what is left is a few octets per pair; a leak of the SA objects alone would be about 860,
// of their contexts 2,200 or more.
const LEAK_MAX_PER_PAIR = 300;

function makePairs(alg: EspAlgorithm, spiBase: number): { out: EspSa; in: EspSa }[] {
  const keymat = Buffer.alloc(espKeyLengths(alg).keymatLength, 0x3c);
  return Array.from({ length: N }, (_, i) => ({
    out: createEspSa({ spi: spiBase + i, algorithm: alg, direction: 'outbound', keymat, implementation: 'native' }),
    in: createEspSa({ spi: spiBase + i, algorithm: alg, direction: 'inbound', keymat, implementation: 'native' }),
  }));
}

const skipNative = skipFor('native');
const hooks = skipNative ? null : testHooks();
const skip = skipNative || (hooks!.espMallocInUse() < 0 ? 'espMallocInUse needs glibc' : false);

for (const alg of ['aes128gcm16', 'aes256-sha256'] as const) {
  test(`[native] ${alg}: idle SAs hold no contexts, destroy() frees them, nothing leaks`, { skip }, async () => {
    const mem = () => hooks!.espMallocInUse();
    makePairs(alg, 0x100).forEach((p) => p.in.open(p.out.seal(Buffer.alloc(8), 4))); // first-use costs out of the way
    await settle();
    const m0 = mem();
    let pairs = makePairs(alg, 0x1000);
    await settle();
    const idle = (mem() - m0) / N;
    assert.ok(idle > 0 && idle < IDLE_MAX_PER_PAIR, `idle pair holds ${idle.toFixed(0)} octets`);

    const payload = Buffer.alloc(100, 1);
    for (const p of pairs) assert.ok(p.in.open(p.out.seal(payload, 4)).ok);
    await settle();
    const warm = (mem() - m0) / N;
    assert.ok(warm - idle > CONTEXTS_MIN_PER_PAIR, `first packet added only ${(warm - idle).toFixed(0)} octets per pair`);

    for (const p of pairs) {
      p.out.destroy?.();
      p.in.destroy?.();
    }
    await settle();
    const destroyed = (mem() - m0) / N;
    assert.ok(destroyed < IDLE_MAX_PER_PAIR, `after destroy() a pair still holds ${destroyed.toFixed(0)} octets`);
    assert.equal(pairs.length, N); // keeps the array alive up to here
    pairs = [];
    await settle();
    const left = (mem() - m0) / N;
    assert.ok(Math.abs(left) < LEAK_MAX_PER_PAIR, `${left.toFixed(0)} octets per pair left after collection`);
  });

  test(`[native] ${alg}: SAs destroyed before their first packet, or never destroyed, leave nothing once collected`, { skip }, async () => {
    const mem = () => hooks!.espMallocInUse();
    await settle();
    const m0 = mem();
    let pairs = makePairs(alg, 0x20000);
    for (const p of pairs) {
      p.out.destroy?.();
      p.in.destroy?.();
    }
    assert.equal(pairs.length, N);
    pairs = [];
    await settle();
    const left = (mem() - m0) / N;
    assert.ok(Math.abs(left) < LEAK_MAX_PER_PAIR, `${left.toFixed(0)} octets per pair left after collection`);
    // and without destroy(): the finalizer frees a cold SA too
    makePairs(alg, 0x30000);
    await settle();
    const left2 = (mem() - m0) / N;
    assert.ok(Math.abs(left2) < LEAK_MAX_PER_PAIR, `${left2.toFixed(0)} octets per pair left after collecting undestroyed SAs`);
    // and a used one, without destroy(): the finalizer frees its contexts
    makePairs(alg, 0x40000).forEach((p) => p.in.open(p.out.seal(Buffer.alloc(8), 4)));
    await settle();
    const left3 = (mem() - m0) / N;
    assert.ok(Math.abs(left3) < LEAK_MAX_PER_PAIR, `${left3.toFixed(0)} octets per pair left after collecting used SAs`);
  });
}
