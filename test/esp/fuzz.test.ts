// Random and mutated packets into open, garbage into every entry point: the only outcomes allowed are a
// status code, a TypeError or a RangeError (a crash would take the test process down).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEspSa, espKeyLengths, ESP_ALGORITHMS, EspStatus, nativeEsp, type EspSa } from '../../ts/esp/index.js';
import { IMPLS, prng, saPair, skipFor, testHooks } from './helpers.js';

const rnd = prng(1234);
const int = (n: number) => rnd(4).readUInt32LE(0) % n;

function detached(): Uint8Array {
  const ab = new ArrayBuffer(64);
  const view = new Uint8Array(ab, 8, 32);
  structuredClone(ab, { transfer: [ab] }); // detaches ab: view now has length 0
  return view;
}

function garbage(): unknown {
  const pool: (() => unknown)[] = [
    () => undefined, () => null, () => 0, () => -1, () => NaN, () => Infinity, () => 2 ** 32, () => 2 ** 53, () => 1.5,
    () => 'aes128gcm16', () => ({}), () => [], () => true, () => 5n, () => -1n, () => 2n ** 64n, () => Symbol('x'),
    () => () => 1, () => Buffer.alloc(0), () => rnd(int(40)), () => new Uint8Array(int(8)), () => new Uint32Array(int(8)),
    () => new Uint32Array(int(8)).map(() => rnd(4).readUInt32LE(0)), () => new Uint16Array(4), () => new Float64Array(2),
    () => new Uint8ClampedArray(4), () => new DataView(new ArrayBuffer(8)), () => new ArrayBuffer(8), detached,
    () => new Uint8Array(new SharedArrayBuffer(16)), () => new Uint32Array([0xffffffff, 0xffffffff]),
  ];
  return pool[int(pool.length)]!();
}

function allowed(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError;
}

for (const impl of IMPLS) {
  test(`[${impl}] mutated, truncated and random packets into open/openBatch: status codes only`, { skip: skipFor(impl) }, () => {
    for (const alg of ['aes128gcm16', 'chacha20poly1305', 'aes128-sha1', 'aes256-sha512', 'null-sha256', 'aes128-none'] as const) {
      const { out, in: inb } = saPair(alg, { esn: int(2) === 1, outImpl: impl, inImpl: impl, replayWindow: 128 });
      const good = Array.from({ length: 50 }, () => out.seal(rnd(int(300)), 4));
      for (let i = 0; i < 1500; i++) {
        let p: Buffer = Buffer.from(good[int(good.length)]!);
        switch (int(5)) {
          case 0: p[int(p.length)]! ^= 1 << int(8); break;
          case 1: p = p.subarray(0, int(p.length)); break;
          case 2: p = Buffer.concat([p, rnd(int(20))]); break;
          case 3: p = rnd(int(120)); break;
          default: break; // unchanged: OK once, then REPLAYED
        }
        const r = inb.open(p);
        if (r.ok) {
          // Only unmodified packets (or, without integrity, ones whose padding still checks) may open.
          assert.ok(alg === 'aes128-none' || good.some((g) => g.equals(p)), `${alg}: a modified packet opened`);
        } else {
          assert.ok(r.status >= 1 && r.status <= 6, `status ${r.status}`);
        }
      }
      const s = inb.stats();
      assert.ok(s.authFailures + s.replays + s.malformed > 0);
    }
  });

  test(`[${impl}] batch offsets/lengths outside the buffers give BAD_BOUNDS, nothing else is touched`, { skip: skipFor(impl) }, () => {
    const { out, in: inb } = saPair('aes128gcm16', { outImpl: impl, inImpl: impl });
    for (let round = 0; round < 300; round++) {
      const n = 1 + int(8);
      const input = rnd(int(600));
      const output = Buffer.alloc(int(800));
      const guard = Buffer.from(output);
      const offsets = new Uint32Array(n).map(() => (int(3) === 0 ? rnd(4).readUInt32LE(0) : int(700)));
      const lengths = new Uint32Array(n).map(() => (int(3) === 0 ? rnd(4).readUInt32LE(0) : int(300)));
      const outOffsets = new Uint32Array(n).map(() => (int(4) === 0 ? rnd(4).readUInt32LE(0) : int(800)));
      const outLengths = new Uint32Array(n);
      const status = new Uint8Array(n);
      out.sealBatch(input, offsets, lengths, new Uint8Array(n), output, outOffsets, outLengths, status);
      for (let i = 0; i < n; i++) {
        const inOk = offsets[i]! + lengths[i]! <= input.length;
        const outOk = outOffsets[i]! + out.sealedLength(lengths[i]!) <= output.length;
        assert.equal(status[i], inOk && outOk ? EspStatus.OK : EspStatus.BAD_BOUNDS, `round ${round} #${i}`);
        if (status[i] !== EspStatus.OK) assert.equal(outLengths[i], 0);
      }
      // Bytes outside every written region are unchanged.
      const written = new Uint8Array(output.length);
      for (let i = 0; i < n; i++) if (status[i] === 0) written.fill(1, outOffsets[i], outOffsets[i]! + outLengths[i]!);
      for (let k = 0; k < output.length; k++) if (!written[k]) assert.equal(output[k], guard[k]);
      const st2 = new Uint8Array(n);
      inb.openBatch(output, outOffsets, outLengths, Buffer.alloc(int(900)), offsets, new Uint32Array(n), new Uint8Array(n), st2);
      assert.ok(st2.every((s) => s <= 6));
    }
  });

  test(`[${impl}] garbage arguments into every entry point: TypeError / RangeError only`, { skip: skipFor(impl) }, () => {
    const { out, in: inb } = saPair('aes128-sha256', { outImpl: impl, inImpl: impl });
    const g = saPair('aes128gcm16', { outImpl: impl, inImpl: impl, allowInsecureForTests: true });
    const sas: EspSa[] = [out, inb, g.out, g.in];
    const calls: ((...a: unknown[]) => unknown)[] = [];
    for (const sa of sas) {
      calls.push((...a) => (sa.sealBatch as (...x: unknown[]) => unknown)(...a));
      calls.push((...a) => (sa.openBatch as (...x: unknown[]) => unknown)(...a));
      calls.push((a, b) => sa.seal(a as Uint8Array, b as number));
      calls.push((a) => sa.open(a as Uint8Array));
      calls.push((a, b, c, d) => sa.sealWithIv(a as Uint8Array, b as number, c as bigint, d as Uint8Array));
    }
    calls.push((a, b, c, d, e) =>
      createEspSa({ spi: a, algorithm: b, direction: c, keymat: d, replayWindow: e, implementation: impl } as never));
    calls.push((a, b, c, d) =>
      createEspSa({ spi: 0x1000, algorithm: 'aes128gcm16', direction: 'inbound', encryptionKey: a, salt: b, esn: c, initialSequence: d, implementation: impl } as never));
    calls.push((a) => espKeyLengths(a as never));
    // Batch calls with mostly well-typed arrays of random sizes and contents, so the checks past the types run.
    const u8 = () => (int(5) === 0 ? garbage() : int(6) === 0 ? detached() : rnd(int(400)));
    const u32 = () =>
      int(5) === 0 ? garbage() : new Uint32Array(int(9)).map(() => (int(3) === 0 ? rnd(4).readUInt32LE(0) : int(300)));
    for (let i = 0; i < 4000; i++) {
      const sa = sas[int(sas.length)]!;
      const seal = int(2) === 0;
      const args = seal
        ? [u8(), u32(), u32(), u8(), u8(), u32(), u32(), u8(), int(3) === 0 ? garbage() : int(10)]
        : [u8(), u32(), u32(), u8(), u32(), u32(), u8(), u8(), int(3) === 0 ? garbage() : int(10)];
      try {
        const fn = (seal ? sa.sealBatch : sa.openBatch) as (...a: unknown[]) => number;
        const n = fn.apply(sa, args);
        assert.ok(Number.isInteger(n) && n >= 0);
      } catch (e) {
        assert.ok(allowed(e), `batch: ${String(e)}`);
      }
    }
    for (let i = 0; i < 6000; i++) {
      const f = calls[int(calls.length)]!;
      const args = Array.from({ length: int(11) }, garbage);
      try {
        f(...args);
      } catch (e) {
        assert.ok(allowed(e), `unexpected ${String(e)} from call #${calls.indexOf(f)}`);
      }
    }
  });
}

test('[native] garbage straight into the addon class and the raw benchmark (bypassing the TS checks)', { skip: skipFor('native') }, () => {
  const addon = nativeEsp()!;
  const hooks = testHooks(); // espRawEvpBench: the test build of the addon
  const Ctor = addon.EspSa as unknown as new (...a: unknown[]) => Record<string, (...a: unknown[]) => unknown>;
  const names = [...ESP_ALGORITHMS, 'bogus'];
  const handles: Record<string, (...a: unknown[]) => unknown>[] = [];
  for (let i = 0; i < 4000; i++) {
    const args = Array.from({ length: int(11) }, garbage);
    if (int(2) === 0) args[0] = names[int(names.length)];
    if (int(2) === 0) args[1] = int(2) === 0;
    if (int(2) === 0) args[2] = 0x1000;
    try {
      handles.push(new Ctor(...args));
    } catch (e) {
      assert.ok(allowed(e), `constructor: ${String(e)}`);
    }
  }
  // A few valid handles, then garbage into their methods (also after destroy()).
  const g = espKeyLengths('aes128-sha1');
  handles.push(new Ctor('aes128-sha1', true, 0x1000, Buffer.alloc(g.encKeyLength), Buffer.alloc(g.integKeyLength), Buffer.alloc(0), 64, false, true));
  handles.push(new Ctor('aes128-sha1', false, 0x1000, Buffer.alloc(g.encKeyLength), Buffer.alloc(g.integKeyLength), Buffer.alloc(0), 64, true, false));
  for (let i = 0; i < 6000; i++) {
    const h = handles[int(handles.length)]!;
    const m = ['sealBatch', 'openBatch', 'sealWithIv', 'stats', 'sequence', 'destroy'][int(i < 5000 ? 5 : 6)]!;
    try {
      h[m]!(...Array.from({ length: int(11) }, garbage));
    } catch (e) {
      assert.ok(allowed(e) || /destroyed/.test(String(e)), `${m}: ${String(e)}`);
    }
  }
  for (let i = 0; i < 300; i++) {
    try {
      hooks.espRawEvpBench(...(Array.from({ length: 5 }, garbage) as [string, boolean, number, number, number]));
    } catch (e) {
      assert.ok(allowed(e), `espRawEvpBench: ${String(e)}`);
    }
  }
});
