// ESP throughput: native batch seal/open vs node:crypto doing the same ESP work per packet (ts/esp/node-esp.ts)
// vs a raw OpenSSL EVP loop inside the addon (the ceiling). Hand-timed loops, not tinybench: tinybench's
// per-iteration bookkeeping (timestamps, promises) would be a large share of a 64-byte, batch-1 iteration.
//
//   node dist/bench/esp.js [--json] [--quick]
import { pathToFileURL } from 'node:url';
import { createEspSa, espKeyLengths, layoutSealBatch, nativeEsp, type EspAlgorithm, type EspSa } from '../ts/esp/index.js';
import { nativeTestAddon, nativeTestLoadError } from '../ts/native.js';
import { benchArgs, command } from './args.js';

export interface EspBenchOptions {
  algorithms?: EspAlgorithm[];
  sizes?: number[];
  batches?: number[];
  directions?: ('seal' | 'open')[];
  /** Time per measurement in ms (default 250; quick 60). */
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
  /** Native batch path. */
  gbps: number;
  pps: number;
  /** Raw EVP loop in C++ over the same sizes and batch (ceiling). */
  rawGbps: number;
  /** node:crypto ESP SA (one cipher object per packet), measured with the same batch layout. */
  nodeCryptoGbps: number;
  nodeCryptoPps: number;
  /** gbps / rawGbps and gbps / nodeCryptoGbps. */
  ofRaw: number;
  vsNodeCrypto: number;
}

const KEYMAT_SEED = 0x5a;

function makeSa(alg: EspAlgorithm, direction: 'outbound' | 'inbound', implementation: 'native' | 'node'): EspSa {
  const keymat = Buffer.alloc(espKeyLengths(alg).keymatLength, KEYMAT_SEED);
  // Inbound: replay window 0 so that the same sealed packets can be opened again and again. The window check
  // itself (a few ns per packet) is then not in the figures: Infer/Check/Update still run, without the bitmap.
  return createEspSa({
    spi: 0x1000,
    algorithm: alg,
    direction,
    keymat,
    replayWindow: direction === 'inbound' ? 0 : 64,
    implementation,
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

function workload(alg: EspAlgorithm, size: number, batch: number, impl: 'native' | 'node'): Workload {
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
  const seal = () => {
    out.sealBatch(input, offsets, lengths, nextHeaders, sealed, outOffsets, outLengths, status, batch);
  };
  const open = () => {
    inb.openBatch(sealed, outOffsets, outLengths, plain, outOffsets, plainLengths, nhOut, st2, batch);
  };
  seal();
  open();
  if (!status.every((s) => s === 0) || !st2.every((s) => s === 0)) throw new Error(`bench setup failed for ${alg} (${impl})`);
  return { seal, open };
}

function rawGbps(alg: EspAlgorithm, seal: boolean, size: number, batch: number, durationMs: number): number {
  const addon = nativeTestAddon()!; // espRawEvpBench is in the test build of the addon only
  // Calibrate: a short run, then enough iterations for durationMs.
  let iterations = Math.max(1, Math.floor(200 / batch));
  let ns = addon.espRawEvpBench(alg, seal, size, batch, iterations);
  iterations = Math.max(1, Math.round((iterations * durationMs * 1e6) / Math.max(ns, 1)));
  ns = addon.espRawEvpBench(alg, seal, size, batch, iterations);
  return (iterations * batch * size * 8) / ns;
}

export function runEspBench(options: EspBenchOptions = {}): EspBenchRow[] {
  if (!nativeEsp()) throw new Error('the native addon is not loaded: nothing to benchmark against');
  if (!nativeTestAddon()) throw new Error(`the raw EVP ceiling needs the test build of the addon (${nativeTestLoadError()?.message.split('\n')[0]})`);
  const quick = options.quick ?? false;
  const algorithms = options.algorithms ?? (['aes128gcm16', 'aes128-sha1', 'aes256gcm16', 'chacha20poly1305'] as EspAlgorithm[]);
  const sizes = options.sizes ?? [64, 512, 1400, 8000];
  const batches = options.batches ?? [1, 16, 64];
  const directions = options.directions ?? ['seal', 'open'];
  const duration = options.durationMs ?? (quick ? 60 : 250);
  // Native and raw are measured in alternating slices and the best slice of each is kept: on a shared machine
  // another process's burst then hits both sides alike instead of skewing their ratio.
  const slices = quick ? 3 : 5;
  const slice = duration / slices;
  const rows: EspBenchRow[] = [];
  // Warm-up (JIT of both TS paths, CPU clock): otherwise the first rows measured come out low.
  for (const impl of ['node', 'native'] as const) {
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
        const w = workload(algorithm, size, batch, 'native');
        for (const direction of directions) {
          let pps = 0;
          let raw = 0;
          for (let k = 0; k < slices; k++) {
            pps = Math.max(pps, timeLoop(w[direction], batch, slice));
            raw = Math.max(raw, rawGbps(algorithm, direction === 'seal', size, batch, slice));
          }
          const gbps = (pps * size * 8) / 1e9;
          const nodeCryptoGbps = (nodePps[direction] * size * 8) / 1e9;
          const row: EspBenchRow = {
            algorithm,
            direction,
            size,
            batch,
            gbps,
            pps,
            rawGbps: raw,
            nodeCryptoGbps,
            nodeCryptoPps: nodePps[direction],
            ofRaw: gbps / raw,
            vsNodeCrypto: gbps / nodeCryptoGbps,
          };
          rows.push(row);
          options.onRow?.(row);
        }
      }
    }
  }
  return rows;
}

export function formatEspBench(rows: EspBenchRow[]): string {
  const head = ['algorithm', 'dir', 'size', 'batch', 'Gbit/s', 'kpps', 'raw EVP Gbit/s', 'of raw', 'node:crypto Gbit/s', 'x node'];
  const lines = rows.map((r) => [
    r.algorithm, r.direction, String(r.size), String(r.batch), r.gbps.toFixed(2), (r.pps / 1e3).toFixed(0),
    r.rawGbps.toFixed(2), r.ofRaw.toFixed(2), r.nodeCryptoGbps.toFixed(2), r.vsNodeCrypto.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => '| ' + l.map((c, i) => c.padStart(widths[i]!)).join(' | ') + ' |';
  return [fmt(head), '|' + widths.map((w) => '-'.repeat(w + 1) + ':').join('|') + '|', ...lines.map(fmt)].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const a = benchArgs(
    command({
      name: 'ike bench esp',
      summary: `ESP seal and open through the addon's batch calls, beside a raw EVP loop and node:crypto,
by algorithm and packet size, in Gbit/s.`,
      options: {
        quick: { kind: 'flag', help: 'fewer sizes and shorter runs' },
        json: { kind: 'flag', help: 'the rows as JSON instead of a table' },
      },
    }),
  );
  const { json, quick } = a;
  const rows = runEspBench({
    quick,
    onRow: json ? undefined : (r) => process.stderr.write(`${r.algorithm} ${r.direction} ${r.size}B x${r.batch}: ${r.gbps.toFixed(2)} Gbit/s\n`),
  } as EspBenchOptions);
  process.stdout.write(json ? JSON.stringify(rows, null, 2) + '\n' : formatEspBench(rows) + '\n');
}
