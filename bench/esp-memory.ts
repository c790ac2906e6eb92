// Memory per ESP SA pair (one outbound + one inbound EspSa), per algorithm, in three states:
//   idle  - created, never used: what an established but quiet child SA costs (the 100,000-SA case);
//   busy  - after one packet each way (the contexts a hot SA keeps);
//   freed - after destroy(): what is left while the JS objects are still referenced (should be ~0 native).
// "native" is the delta of malloc's in-use octets (glibc mallinfo2, through espMallocInUse of the addon's test
// build, which reads the whole process: the SAs measured are the production addon's), so
// allocator overhead is included; "heap" is V8's heapUsed delta (the JS wrapper objects). Both over N pairs,
// with a full GC before each reading.
//
//   node --expose-gc dist/bench/esp-memory.js [--count 10000] [--window 64] [--algorithms a,b] [--json]
import { setImmediate as tick } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { createEspSa, espKeyLengths, nativeEsp, type EspAlgorithm, type EspSa } from '../ts/esp/index.js';
import { nativeTestAddon } from '../ts/native.js';
import { benchArgs, command } from './args.js';

export interface EspMemoryRow {
  algorithm: EspAlgorithm;
  replayWindow: number;
  count: number;
  idleNative: number;
  idleHeap: number;
  busyNative: number;
  busyHeap: number;
  /** Native octets per pair still held after destroy() (the EspSa objects themselves until GC). */
  destroyedNative: number;
  /** Native octets per pair left after the JS objects are dropped and collected: a leak if clearly above 0. */
  collectedNative: number;
}

const DEFAULT_ALGORITHMS: EspAlgorithm[] = ['aes128gcm16', 'aes256gcm16', 'chacha20poly1305', 'aes128-sha1', 'aes256-sha256', 'aes256-sha512'];

async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const addon = nativeTestAddon();
  // Node-API finalizers of collected objects run on a later turn of the loop, and V8 gives some blocks back a
  // collection or two later: collect, yield, repeat until the figure stops falling.
  let last = Infinity;
  for (let i = 0; i < 12; i++) {
    gc?.();
    await tick();
    const now = addon ? addon.espMallocInUse() : 0;
    if (i >= 3 && now > last - 16 * 1024) return;
    last = now;
  }
}

export async function measureEspMemory(algorithm: EspAlgorithm, count: number, replayWindow: number): Promise<EspMemoryRow> {
  const addon = nativeTestAddon();
  if (!nativeEsp() || !addon || addon.espMallocInUse() < 0) throw new Error('needs the native addon and its test build, on glibc (espMallocInUse)');
  const g = espKeyLengths(algorithm);
  const keymat = Buffer.alloc(g.keymatLength, 0x5a);
  const payload = Buffer.alloc(64, 0xa5);
  const read = () => ({ native: addon.espMallocInUse(), heap: process.memoryUsage().heapUsed });
  let pairs: { out: EspSa; in: EspSa }[] = [];
  await settle();
  const m0 = read();
  for (let i = 0; i < count; i++) {
    const spi = 0x1000 + i;
    pairs.push({
      out: createEspSa({ spi, algorithm, direction: 'outbound', keymat, implementation: 'native' }),
      in: createEspSa({ spi, algorithm, direction: 'inbound', keymat, replayWindow, implementation: 'native' }),
    });
  }
  await settle();
  const m1 = read();
  for (const p of pairs) {
    const r = p.in.open(p.out.seal(payload, 4));
    if (!r.ok) throw new Error(`${algorithm}: round trip failed (${r.reason})`);
  }
  await settle();
  const m2 = read();
  for (const p of pairs) {
    p.out.destroy?.();
    p.in.destroy?.();
  }
  await settle();
  const m3 = read();
  // Read pairs after m3 so that it is live until here (an assignment alone would let V8 drop it earlier).
  if (pairs.length !== count) throw new Error('lost pairs');
  pairs = [];
  await settle();
  const m4 = read();
  return {
    algorithm,
    replayWindow,
    count,
    idleNative: (m1.native - m0.native) / count,
    idleHeap: (m1.heap - m0.heap) / count,
    busyNative: (m2.native - m0.native) / count,
    busyHeap: (m2.heap - m0.heap) / count,
    destroyedNative: (m3.native - m0.native) / count,
    collectedNative: (m4.native - m0.native) / count,
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = benchArgs(
    command({
      name: 'node dist/bench/esp-memory.js',
      summary: 'Octets per ESP SA pair (outbound + inbound) in the addon and on the JS heap: idle, busy, destroyed, collected.',
      options: {
        count: { kind: 'integer', min: 1, help: 'SA pairs (default 10000)' },
        window: { kind: 'integer', min: 0, max: 4096, help: 'replay window (default 64)' },
        algorithms: { kind: 'string', value: 'LIST', help: `ESP algorithms, comma-separated (default ${DEFAULT_ALGORITHMS.join(',')})` },
        json: { kind: 'flag', help: 'the rows as JSON' },
      },
    }),
  );
  const count = args.count ?? 10_000;
  const window = args.window ?? 64;
  const algorithms = (args.algorithms?.split(',') as EspAlgorithm[] | undefined) ?? DEFAULT_ALGORITHMS;
  if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('esp-memory: run with node --expose-gc for exact figures\n');
  // One throwaway round first: the first SA of a kind fetches OpenSSL's algorithm objects (process-wide, once).
  await measureEspMemory(algorithms[0]!, 100, window);
  const rows: EspMemoryRow[] = [];
  for (const a of algorithms) rows.push(await measureEspMemory(a, count, window));
  if (args.json) {
    process.stdout.write(JSON.stringify(rows) + '\n');
  } else {
    const f = (n: number) => n.toFixed(0).padStart(6);
    process.stdout.write(`octets per SA pair (outbound + inbound), ${count} pairs, replay window ${window}\n`);
    process.stdout.write('algorithm          idle native  idle heap  busy native  busy heap  destroyed  collected\n');
    for (const r of rows) {
      process.stdout.write(
        `${r.algorithm.padEnd(18)} ${f(r.idleNative)}       ${f(r.idleHeap)}     ${f(r.busyNative)}       ${f(r.busyHeap)}     ${f(r.destroyedNative)}     ${f(r.collectedNative)}\n`,
      );
    }
  }
}
