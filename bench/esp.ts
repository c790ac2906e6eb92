// ESP throughput, each engine beside its ceiling, in one run: our native batch seal/open through the
// intel-ipsec-mb engine and through the OpenSSL EVP engine (native/esp_mb.cc, native/esp.cc), the raw
// intel-ipsec-mb job loop and the raw EVP loop (both timed in C++ in the addon's test build), and node:crypto
// doing the same ESP work per packet (ts/esp/node-esp.ts). Hand-timed loops, not tinybench: tinybench's
// per-iteration bookkeeping (timestamps, promises) would be a large share of a 64-byte, batch-1 iteration.
//
//   node dist/bench/esp.js [--json] [--quick] [--algorithms a,b] [--sizes 64,1400] [--batches 1,64]
import { pathToFileURL } from 'node:url';
import { createEspSa, espKeyLengths, layoutSealBatch, nativeEsp, type EspAlgorithm, type EspSa } from '../ts/esp/index.js';
import { nativeAddon, nativeTestAddon, nativeTestLoadError } from '../ts/native.js';
import { benchArgs, command } from './args.js';

export interface EspBenchOptions {
  algorithms?: EspAlgorithm[];
  sizes?: number[];
  batches?: number[];
  directions?: ('seal' | 'open')[];
  /** Time per measurement in ms (default 500; quick 120), in slices alternating between the four columns. */
  durationMs?: number;
  quick?: boolean;
  /** Called after each row (progress output). */
  onRow?: (row: EspBenchRow) => void;
}

export interface EspBenchRow {
  algorithm: EspAlgorithm;
  direction: 'seal' | 'open';
  /** Payload octets per packet (Gbit/s counts payload bits). */
  size: number;
  batch: number;
  /** Our batch path through the intel-ipsec-mb engine; null where that engine cannot run (not built in, ESN...). */
  mbGbps: number | null;
  mbPps: number | null;
  /** Our batch path through the OpenSSL EVP engine. */
  evpGbps: number;
  evpPps: number;
  /** The raw intel-ipsec-mb job loop in C++ over the same sizes and batch (that engine's ceiling). */
  rawMbGbps: number | null;
  /** The raw EVP loop in C++ (the EVP engine's ceiling). */
  rawEvpGbps: number;
  /** node:crypto ESP SA (one cipher object per packet), measured with the same batch layout. */
  nodeCryptoGbps: number;
  /** mbGbps / rawMbGbps, mbGbps / rawEvpGbps, evpGbps / rawEvpGbps, best native / node:crypto. */
  mbOfRawMb: number | null;
  mbVsRawEvp: number | null;
  evpOfRawEvp: number;
  vsNodeCrypto: number;
}

const KEYMAT_SEED = 0x5a;

type Impl = 'ipsec-mb' | 'evp' | 'node';

function makeSa(alg: EspAlgorithm, direction: 'outbound' | 'inbound', impl: Impl): EspSa {
  const keymat = Buffer.alloc(espKeyLengths(alg).keymatLength, KEYMAT_SEED);
  // Inbound: replay window 0 so that the same sealed packets can be opened again and again. The window check
  // itself (a few ns per packet) is then not in the figures: Infer/Check/Update still run, without the bitmap.
  return createEspSa({
    spi: 0x1000,
    algorithm: alg,
    direction,
    keymat,
    replayWindow: direction === 'inbound' ? 0 : 64,
    implementation: impl === 'node' ? 'node' : 'native',
    ...(impl === 'node' ? {} : { engine: impl }),
  });
}

/** Runs fn (which does `batch` packets) until durationMs has passed; returns packets per second. */
function timeLoop(fn: () => void, batch: number, durationMs: number): number {
  for (let i = 0; i < 2; i++) fn(); // warm-up
  const end = durationMs * 1e6;
  let packets = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  do {
    for (let k = 0; k < 8; k++) fn();
    packets += 8 * batch;
    elapsed = Number(process.hrtime.bigint() - t0);
  } while (elapsed < end);
  return (packets * 1e9) / elapsed;
}

interface Workload {
  seal: () => void;
  open: () => void;
}

function workload(alg: EspAlgorithm, size: number, batch: number, impl: Impl): Workload {
  const out = makeSa(alg, 'outbound', impl);
  const inb = makeSa(alg, 'inbound', impl);
  const lengths = new Uint32Array(batch).fill(size);
  const offsets = lengths.map((_, i) => i * size);
  const input = Buffer.alloc(size * batch, 0xa5);
  const nextHeaders = new Uint8Array(batch).fill(4);
  const outOffsets = new Uint32Array(batch);
  const sealed = Buffer.alloc(layoutSealBatch(out, lengths, outOffsets));
  const outLengths = new Uint32Array(batch);
  const status = new Uint8Array(batch);
  const plain = Buffer.alloc(sealed.length);
  const plainLengths = new Uint32Array(batch);
  const nhOut = new Uint8Array(batch);
  const st2 = new Uint8Array(batch);
  // Seal in place, as the data plane does and as the raw loops do: each payload already sits where its
  // ciphertext goes (8 + IV octets after its packet's start). Every round re-seals the last round's bytes.
  const work = Buffer.alloc(sealed.length, 0xa5);
  const inPlace = outOffsets.map((o) => o + 8 + espKeyLengths(alg).ivLength);
  const seal = () => {
    out.sealBatch(work, inPlace, lengths, nextHeaders, work, outOffsets, outLengths, status, batch);
  };
  const open = () => {
    inb.openBatch(sealed, outOffsets, outLengths, plain, outOffsets, plainLengths, nhOut, st2, batch);
  };
  out.sealBatch(input, offsets, lengths, nextHeaders, sealed, outOffsets, outLengths, status, batch); // for open
  seal();
  open();
  if (!status.every((s) => s === 0) || !st2.every((s) => s === 0)) throw new Error(`bench setup failed for ${alg} (${impl})`);
  return { seal, open };
}

/** A raw C++ loop (espRawEvpBench / espRawMbBench), calibrated to run about durationMs. */
function rawGbps(which: 'evp' | 'mb', alg: EspAlgorithm, seal: boolean, size: number, batch: number, durationMs: number): number {
  const addon = nativeTestAddon()!; // the raw loops are in the test build of the addon only
  const run = (iterations: number) =>
    which === 'evp' ? addon.espRawEvpBench(alg, seal, size, batch, iterations) : addon.espRawMbBench(alg, seal, size, batch, iterations);
  let iterations = Math.max(1, Math.floor(200 / batch));
  let ns = run(iterations);
  iterations = Math.max(1, Math.round((iterations * durationMs * 1e6) / Math.max(ns, 1)));
  ns = run(iterations);
  return (iterations * batch * size * 8) / ns;
}

/** Whether the intel-ipsec-mb engine runs this algorithm here (built in, CPU, algorithm). */
function mbRuns(alg: EspAlgorithm): boolean {
  try {
    return makeSa(alg, 'outbound', 'ipsec-mb').engine === 'ipsec-mb';
  } catch {
    return false;
  }
}

function measureRow(algorithm: EspAlgorithm, size: number, batch: number, direction: 'seal' | 'open', slices: number, slice: number, nodePps: number): EspBenchRow {
  const mb = mbRuns(algorithm);
  const wMb = mb ? workload(algorithm, size, batch, 'ipsec-mb') : null;
  const wEvp = workload(algorithm, size, batch, 'evp');
  const seal = direction === 'seal';
  let mbPps = 0, evpPps = 0, rawMb = 0, rawEvp = 0;
  // All four in alternating slices, the best slice of each kept: on a shared machine another process's burst then
  // hits every column alike instead of skewing their ratios.
  for (let k = 0; k < slices; k++) {
    if (wMb) mbPps = Math.max(mbPps, timeLoop(wMb[direction], batch, slice));
    evpPps = Math.max(evpPps, timeLoop(wEvp[direction], batch, slice));
    if (mb) rawMb = Math.max(rawMb, rawGbps('mb', algorithm, seal, size, batch, slice));
    rawEvp = Math.max(rawEvp, rawGbps('evp', algorithm, seal, size, batch, slice));
  }
  const gbps = (pps: number) => (pps * size * 8) / 1e9;
  const mbGbps = mb ? gbps(mbPps) : null;
  const evpGbps = gbps(evpPps);
  const nodeCryptoGbps = gbps(nodePps);
  return {
    algorithm,
    direction,
    size,
    batch,
    mbGbps,
    mbPps: mb ? mbPps : null,
    evpGbps,
    evpPps,
    rawMbGbps: mb ? rawMb : null,
    rawEvpGbps: rawEvp,
    nodeCryptoGbps,
    mbOfRawMb: mbGbps !== null ? mbGbps / rawMb : null,
    mbVsRawEvp: mbGbps !== null ? mbGbps / rawEvp : null,
    evpOfRawEvp: evpGbps / rawEvp,
    vsNodeCrypto: Math.max(mbGbps ?? 0, evpGbps) / nodeCryptoGbps,
  };
}

export function runEspBench(options: EspBenchOptions = {}): EspBenchRow[] {
  if (!nativeEsp()) throw new Error('the native addon is not loaded: nothing to benchmark against');
  if (!nativeTestAddon()) throw new Error(`the raw loops need the test build of the addon (${nativeTestLoadError()?.message.split('\n')[0]})`);
  const quick = options.quick ?? false;
  const algorithms = options.algorithms ?? (['aes128-sha1', 'aes128gcm16', 'aes256-sha256', 'aes256gcm16', 'chacha20poly1305'] as EspAlgorithm[]);
  const sizes = options.sizes ?? (quick ? [64, 1400, 8000] : [64, 512, 1400, 8000]);
  const batches = options.batches ?? (quick ? [1, 64] : [1, 16, 64]);
  const directions = options.directions ?? ['seal', 'open'];
  const duration = options.durationMs ?? (quick ? 120 : 500);
  // Many short slices (4-5 ms), the best of each column kept: on a shared machine a few-millisecond slice often
  // runs undisturbed, a 100 ms one rarely, and the columns' slices alternate so that all see the same machine.
  const slices = quick ? 30 : 100;
  const slice = duration / slices;
  const rows: EspBenchRow[] = [];
  // Warm-up (JIT of the TS paths, CPU clock): otherwise the first rows measured come out low.
  for (const impl of ['node', 'evp'] as const) {
    const w = workload(algorithms[0]!, 512, 16, impl);
    timeLoop(w.seal, 16, quick ? 100 : 300);
    timeLoop(w.open, 16, quick ? 100 : 300);
  }
  for (const algorithm of algorithms) {
    for (const size of sizes) {
      // node:crypto's cost is per packet; its batch loop is measured once per size (batch 16) and reused.
      const nodeW = workload(algorithm, size, 16, 'node');
      const nodePps = { seal: 0, open: 0 };
      for (let k = 0; k < slices; k++) {
        nodePps.seal = Math.max(nodePps.seal, timeLoop(nodeW.seal, 16, slice));
        nodePps.open = Math.max(nodePps.open, timeLoop(nodeW.open, 16, slice));
      }
      for (const batch of batches) {
        for (const direction of directions) {
          const row = measureRow(algorithm, size, batch, direction, slices, slice, nodePps[direction]);
          rows.push(row);
          options.onRow?.(row);
        }
      }
    }
  }
  return rows;
}

export function formatEspBench(rows: EspBenchRow[]): string {
  const head = ['algorithm', 'dir', 'size', 'batch', 'ipsec-mb Gbit/s', 'raw mb', 'of raw mb', 'EVP Gbit/s', 'raw EVP', 'of raw EVP', 'mb / raw EVP', 'node:crypto', 'x node'];
  const f = (v: number | null, d = 2) => (v === null ? '-' : v.toFixed(d));
  const lines = rows.map((r) => [
    r.algorithm, r.direction, String(r.size), String(r.batch), f(r.mbGbps), f(r.rawMbGbps), f(r.mbOfRawMb), f(r.evpGbps),
    f(r.rawEvpGbps), f(r.evpOfRawEvp), f(r.mbVsRawEvp, 1), f(r.nodeCryptoGbps), f(r.vsNodeCrypto, 1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => '| ' + l.map((c, i) => c.padStart(widths[i]!)).join(' | ') + ' |';
  const engine = nativeAddon()?.espEngineInfo ?? 'addon not loaded';
  return [`ESP engines: ${engine}; OpenSSL ${process.versions.openssl}. Gbit/s of payload, one thread.`, '',
    fmt(head), '|' + widths.map((w) => '-'.repeat(w + 1) + ':').join('|') + '|', ...lines.map(fmt)].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const a = benchArgs(
    command({
      name: 'ike bench esp',
      summary: `ESP seal and open through the addon's batch calls with each engine (intel-ipsec-mb, OpenSSL EVP),
beside the raw intel-ipsec-mb and EVP loops and node:crypto, by algorithm and packet size, in Gbit/s.`,
      options: {
        quick: { kind: 'flag', help: 'fewer sizes and shorter runs' },
        json: { kind: 'flag', help: 'the rows as JSON instead of a table' },
        algorithms: { kind: 'string', value: 'A,B', help: 'ESP algorithms to measure (default: a representative set)' },
        sizes: { kind: 'string', value: 'N,N', help: 'payload sizes in bytes (default 64,1400,8000; --quick 1400)' },
        batches: { kind: 'string', value: 'N,N', help: 'packets per batch call (default 1,64)' },
      },
    }),
  );
  const { json, quick } = a;
  const list = (name: 'algorithms' | 'sizes' | 'batches') => (a[name] as string | undefined)?.split(',').filter((x) => x !== '');
  const rows = runEspBench({
    quick,
    algorithms: list('algorithms') as EspAlgorithm[] | undefined,
    sizes: list('sizes')?.map(Number),
    batches: list('batches')?.map(Number),
    onRow: json ? undefined : (r) => process.stderr.write(`${r.algorithm} ${r.direction} ${r.size}B x${r.batch}: ipsec-mb ${r.mbGbps?.toFixed(2) ?? '-'}, EVP ${r.evpGbps.toFixed(2)} Gbit/s\n`),
  } as EspBenchOptions);
  process.stdout.write(json ? JSON.stringify(rows, null, 2) + '\n' : formatEspBench(rows) + '\n');
}
