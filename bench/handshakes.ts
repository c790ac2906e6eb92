// `ike bench handshakes`: complete handshakes between an initiator and a responder in one process, in
// memory (no sockets, no timers), as fast as the engine goes: phase 1 (Main or Aggressive Mode), then a
// Quick Mode over IsakmpSaContext on both sides; a handshake counts when both child SAs exist (--phase1-only:
// phase 1 alone). Prints handshakes/s, latency percentiles, CPU time per handshake and, measured in the same
// run, the DH-bound ceiling: the rate of the DH work one handshake needs on its own (two key pairs and two
// shared secrets per DH exchange; with PFS the Quick Mode adds a second exchange). Handshakes and the DH work
// alone run in alternating slices of 250 ms, so that noise on the machine weighs on both. The ratio of the
// two is the protocol's overhead. --workers N runs N worker threads, each doing the same in memory, and sums
// them.
import { pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { defaultCrypto, dhGroupInfo, type CryptoProvider, type DhGroup, type DhGroupId, type DhKeyPairOptions, type DhPrivateKey } from '../ts/crypto/index.js';
import {
  CookieGenerator,
  IsakmpSaContext,
  Phase1,
  parseEspProposal,
  parseIkeProposal,
  type Endpoint,
  type IsakmpSa,
  type Phase1Output,
  type Phase1Policy,
  type Phase2Output,
  type Phase2Policy,
} from '../ts/ike/index.js';
import { benchArgs, command } from './args.js';

export interface HandshakeBenchOptions {
  ike?: string;
  mode?: 'main' | 'aggressive';
  concurrency?: number;
  durationMs?: number;
  /** Replace DH by a null group (like strongSwan's modpnull): shows the protocol's own cost. Benchmarks only. */
  fakeDh?: boolean;
  fullLengthExponent?: boolean;
  /** DH on the libuv thread pool (uses every core). */
  asyncDh?: boolean;
  /** ESP proposal of the Quick Mode (default aes128-sha1). */
  esp?: string;
  /** Quick Mode with a KE payload in the IKE proposal's group (a second DH exchange). */
  pfs?: boolean;
  /** Phase 1 only, no Quick Mode. */
  phase1Only?: boolean;
  /** Worker threads, each running `concurrency` handshakes at a time; 0 = in this thread (default). */
  workers?: number;
  crypto?: CryptoProvider;
}

export interface HandshakeBenchResult {
  ike: string;
  mode: string;
  concurrency: number;
  fakeDh: boolean;
  asyncDh: boolean;
  fullLengthExponent: boolean;
  /** 'phase1' or the Quick Mode's ESP proposal with its PFS group: aes128-sha1-modp2048 */
  quickMode: string;
  pfs: boolean;
  /** 0: in the main thread. */
  workers: number;
  /** DH exchanges (2 key pairs + 2 shared secrets each) per handshake: 1, or 2 with PFS. */
  dhPerHandshake: number;
  handshakes: number;
  seconds: number;
  handshakesPerSec: number;
  /** DH-only rate for the same work (dhPerHandshake x (2 key pairs + 2 shared secrets)), sync, one thread, in slices alternating with the handshakes' (with workers: in every worker at once, summed). */
  ceilingPerSec: number;
  ratioToCeiling: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the whole process (GC and other helper threads included) during the handshake slices, per handshake. */
  cpuMsPerHandshake: number;
}

const I: Endpoint = { address: '192.0.2.1', port: 500 };
const R: Endpoint = { address: '192.0.2.2', port: 500 };

interface Setup {
  crypto: CryptoProvider;
  pi: Phase1Policy;
  pr: Phase1Policy;
  cookiesI: CookieGenerator;
  cookiesR: CookieGenerator;
  /** null: phase 1 only. */
  child: Phase2Policy | null;
}

/** A complete handshake: phase 1, then (unless phase 1 only) one Quick Mode; both sides must end with the SAs. */
async function handshake(s: Setup): Promise<void> {
  const { i, r } = await phase1(s.crypto, s.pi, s.pr, s.cookiesI, s.cookiesR);
  if (s.child) await quickMode(s.crypto, i, r, s.child);
}

/** One Quick Mode over an IsakmpSaContext on each side, messages handed across directly. */
async function quickMode(crypto: CryptoProvider, saI: IsakmpSa, saR: IsakmpSa, child: Phase2Policy): Promise<void> {
  const now = Date.now();
  const ci = new IsakmpSaContext(crypto, saI, { children: [] }, now);
  const cr = new IsakmpSaContext(crypto, saR, { children: [child] }, now);
  let iUp = false;
  let rUp = false;
  const look = (out: Phase2Output, who: 'i' | 'r') => {
    for (const e of out.events) {
      if (e.type === 'childSa') {
        if (who === 'i') iUp = true;
        else rUp = true;
      } else if (e.type === 'childFailed') throw e.error;
    }
  };
  let { out } = await ci.initiate(child, now);
  look(out, 'i');
  let toR = true;
  for (let step = 0; step < 6 && !(iUp && rUp); step++) {
    const m = out.send[0];
    if (m === undefined) break;
    out = await (toR ? cr : ci).handle(m, now);
    look(out, toR ? 'r' : 'i');
    toR = !toR;
  }
  if (!iUp || !rUp) throw new Error('quick mode did not complete');
}

/** Phase 1, messages handed across directly. Resolves when both sides are established, with their SAs. */
async function phase1(crypto: CryptoProvider, pi: Phase1Policy, pr: Phase1Policy, cookiesI: CookieGenerator, cookiesR: CookieGenerator): Promise<{ i: IsakmpSa; r: IsakmpSa }> {
  const now = Date.now();
  const { phase1: ini, out } = await Phase1.initiate({ crypto, cookies: cookiesI, local: I, remote: R }, pi, now);
  let toR = out.send[0]!;
  const first = await Phase1.respond({ crypto, cookies: cookiesR, local: R, remote: I }, [pr], toR, now);
  const res = first.phase1;
  if (!res) throw new Error(`responder refused: ${first.out.failed?.message}`);
  let o: Phase1Output = first.out;
  let iSa: IsakmpSa | undefined;
  // Aggressive Mode: the responder is established only by message 3
  let rSa: IsakmpSa | undefined = o.established;
  for (let step = 0; step < 8 && !(iSa && rSa); step++) {
    if (o.failed) throw o.failed;
    const toI = o.send[0];
    if (toI === undefined) break;
    const oi = await ini.handle(toI, now);
    if (oi.failed) throw oi.failed;
    iSa ??= oi.established;
    if (oi.send.length === 0) break;
    toR = oi.send[0]!;
    o = await res.handle(toR, now);
    rSa ??= o.established;
  }
  if (!iSa || !rSa) throw new Error('handshake did not complete');
  return { i: iSa, r: rSa };
}

/** The DH work of one handshake alone (one DH exchange), sync, until `end`: how many were done. */
function dhWork(g: DhGroup, options: DhKeyPairOptions, end: number): number {
  let n = 0;
  do {
    const a = g.generateKeyPair(options);
    const b = g.generateKeyPair(options);
    a.computeSecret(b.publicValue);
    b.computeSecret(a.publicValue);
    n++;
  } while (performance.now() < end);
  return n;
}

/** The DH ceiling on its own for `durationMs` (for benches that cannot interleave it): handshakes/s. */
export function dhCeiling(crypto: CryptoProvider, group: DhGroupId, options: DhKeyPairOptions, durationMs: number, exchanges: number): number {
  const t0 = performance.now();
  const n = dhWork(crypto.dhGroup(group), options, t0 + durationMs);
  return n / ((performance.now() - t0) / 1000) / exchanges;
}

/** A crypto provider whose DH is a null group: public values are random, the secret a hash of both. */
export function fakeDhCrypto(base: CryptoProvider): CryptoProvider {
  const groups = new Map<DhGroupId, DhGroup>();
  const fake = (id: DhGroupId): DhGroup => {
    const info = dhGroupInfo(id)!;
    const key = (): DhPrivateKey => {
      const publicValue = base.randomBytes(info.publicLength);
      const secret = (peer: Uint8Array) => {
        const [x, y] = Buffer.compare(publicValue, Buffer.from(peer)) < 0 ? [publicValue, peer] : [peer, publicValue];
        const h = base.hash('sha256', x, y);
        return Buffer.concat(Array(Math.ceil(info.secretLength / h.length)).fill(h)).subarray(0, info.secretLength);
      };
      return { group: id, publicValue, computeSecret: secret, computeSecretAsync: async (p) => secret(p) };
    };
    return {
      id,
      kind: info.kind,
      publicLength: info.publicLength,
      secretLength: info.secretLength,
      generateKeyPair: key,
      generateKeyPairAsync: async () => key(),
      generateAndComputeAsync: async (peer: Uint8Array) => {
        const k = key();
        return { key: k, secret: k.computeSecret(peer) };
      },
      importPrivateKey: () => key(),
    };
  };
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'dhGroup') {
        return (id: DhGroupId) => {
          if (!groups.has(id)) groups.set(id, fake(id));
          return groups.get(id)!;
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface ThreadResult {
  latencies: number[];
  seconds: number;
  ceilingPerSec: number;
  /** Thread 0 only: the process's CPU time (all threads) during the handshake slices, in ms. */
  cpuMs?: number;
}

/** Where the threads line up, so that all of them measure at the same time. */
interface Phases {
  /** Index of this thread (0: the one that reads the process's CPU time). */
  index: number;
  /** Resolves after warm-up, with the common start of the measuring schedule (performance.now() of this thread). */
  measuring(): Promise<number>;
  measured(): Promise<void>;
}

/**
 * Handshake and DH-only slices alternate, each of this length (the last handshake of a slice runs to its
 * end): machine noise, frequency changes and other jobs then weigh on the handshakes and on the ceiling
 * alike, instead of on whichever phase they happened to coincide with.
 */
const SLICE_MS = 250;
/** Warm-up: this many handshakes, for at most WARM_UP_MS (half the duration for short runs). */
const WARM_UP_HANDSHAKES = 2000;
const WARM_UP_MS = 3000;

/**
 * What one thread does: warm up, then until durationMs of handshakes are done, slices of handshakes at
 * `concurrency` alternating with slices of the DH work alone (the ceiling: the same DH calls with the same
 * options, nothing precomputed or reused). With --fake-dh there is no ceiling: one slice of handshakes. The
 * slices follow one schedule from a common start, so worker threads switch together.
 */
async function runThread(o: HandshakeBenchOptions, phases: Phases): Promise<ThreadResult> {
  const ike = o.ike ?? 'aes128-sha1-modp2048';
  const mode = o.mode ?? 'main';
  const concurrency = o.concurrency ?? 1;
  const durationMs = o.durationMs ?? 3000;
  const base = o.crypto ?? defaultCrypto();
  const crypto = o.fakeDh ? fakeDhCrypto(base) : base;
  const proposals = parseIkeProposal(ike, { allowWeak: true });
  if (!proposals.ok) throw new Error(proposals.error);
  const group = proposals.value[0]!.group;
  const common = {
    mode,
    proposals: proposals.value,
    psk: Buffer.from('benchmark pre-shared key'),
    allowAggressivePsk: true,
    fullLengthExponent: o.fullLengthExponent ?? false,
    asyncDh: o.asyncDh ?? false,
  } as const;
  const espText = `${o.esp ?? 'aes128-sha1'}${o.pfs ? `-${dhGroupInfo(group)!.keyword}` : ''}`;
  const esp = parseEspProposal(espText, { allowWeak: true });
  if (!esp.ok) throw new Error(esp.error);
  const setup: Setup = {
    crypto,
    pi: { ...common, name: 'bench', localId: { kind: 'ipv4', address: I.address } },
    pr: { ...common, name: 'bench', localId: { kind: 'ipv4', address: R.address } },
    cookiesI: new CookieGenerator(crypto),
    cookiesR: new CookieGenerator(crypto),
    child: o.phase1Only ? null : { name: 'bench', proposals: esp.value, asyncDh: common.asyncDh },
  };
  const exchanges = !o.phase1Only && o.pfs ? 2 : 1;
  const dhGroup = base.dhGroup(group);
  const dhOptions = { fullLengthExponent: common.fullLengthExponent };

  // Warm-up, not measured: comb tables, and the JIT. V8 optimizes by use, not by time: until about 2,000
  // handshakes have run (2-3 s with modp2048), the main thread spends up to 1.5x the CPU per handshake and
  // the compiler threads take up to 0.5 ms more, on the other core (measured per thread). A run that
  // starts measuring at once measures start-up, and with --workers the threads' compilers against each other.
  const warmEnd = performance.now() + Math.min(WARM_UP_MS, durationMs / 2);
  let warm = 0;
  while (warm < 5 || (performance.now() < warmEnd && warm < WARM_UP_HANDSHAKES)) {
    await handshake(setup);
    warm++;
  }
  if (!o.fakeDh) dhWork(dhGroup, dhOptions, performance.now() + 20);

  const latencies: number[] = [];
  const slices = o.fakeDh ? 1 : Math.max(1, Math.ceil(durationMs / SLICE_MS));
  const sliceMs = durationMs / slices;
  const start = await phases.measuring();
  let handshakeMs = 0;
  let dhMs = 0;
  let dhDone = 0;
  let cpuMs = 0;
  for (let k = 0; k < slices; k++) {
    // Handshake slice k runs in [start + 2k * sliceMs, start + (2k + 1) * sliceMs), its DH slice after it.
    const end = start + (o.fakeDh ? durationMs : (2 * k + 1) * sliceMs);
    const t0 = performance.now();
    const cpu0 = phases.index === 0 ? process.cpuUsage() : null;
    const loop = async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await handshake(setup);
        latencies.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    handshakeMs += performance.now() - t0;
    if (cpu0 !== null) {
      const c = process.cpuUsage(cpu0);
      cpuMs += (c.user + c.system) / 1000;
    }
    if (o.fakeDh) break;
    const dhEnd = start + (2 * k + 2) * sliceMs;
    const d0 = performance.now();
    if (d0 < dhEnd) {
      dhDone += dhWork(dhGroup, dhOptions, dhEnd);
      dhMs += performance.now() - d0;
    }
  }
  await phases.measured();
  const ceilingPerSec = o.fakeDh || dhMs === 0 ? Number.NaN : dhDone / (dhMs / 1000) / exchanges;
  return { latencies, seconds: handshakeMs / 1000, ceilingPerSec, ...(phases.index === 0 ? { cpuMs } : {}) };
}

type WorkerMessage = { phase: 'warm' | 'measured' } | { result: ThreadResult } | { error: string };

/**
 * N worker threads running runThread at once (each with its own engine instance), results gathered. The
 * threads wait for one another after warm-up and follow one slice schedule; thread 0 reads the process's CPU
 * time over the handshake slices (all threads are in them together).
 */
async function runWorkers(o: HandshakeBenchOptions, n: number): Promise<{ parts: ThreadResult[] }> {
  const { crypto: _c, ...plain } = o;
  const workers = Array.from({ length: n }, (_, index) => new Worker(new URL(import.meta.url), { workerData: { handshakeBench: plain, index } }));
  const arrived = (phase: 'warm' | 'measured') =>
    Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const on = (m: WorkerMessage) => {
              if ('error' in m) reject(new Error(m.error));
              else if ('phase' in m && m.phase === phase) {
                w.off('message', on);
                resolve();
              }
            };
            w.on('message', on);
            w.once('error', reject);
          }),
      ),
    );
  const results = workers.map(
    (w) =>
      new Promise<ThreadResult>((resolve, reject) => {
        w.on('message', (m: WorkerMessage) => ('result' in m ? resolve(m.result) : 'error' in m ? reject(new Error(m.error)) : undefined));
        w.once('exit', (code) => (code !== 0 ? reject(new Error(`handshake bench worker exited with ${code}`)) : undefined));
      }),
  );
  try {
    await arrived('warm');
    // A common start a little ahead, on the clock every thread of the process shares.
    const start = performance.timeOrigin + performance.now() + 20;
    for (const w of workers) w.postMessage({ start });
    await arrived('measured');
    for (const w of workers) w.postMessage({});
    const parts = await Promise.all(results);
    return { parts };
  } finally {
    for (const w of workers) void w.terminate();
  }
}

export async function runHandshakeBench(o: HandshakeBenchOptions = {}): Promise<HandshakeBenchResult> {
  const workers = o.workers ?? 0;
  let parts: ThreadResult[];
  if (workers > 0) ({ parts } = await runWorkers(o, workers));
  else parts = [await runThread(o, { index: 0, measuring: async () => performance.now(), measured: async () => {} })];
  const cpuMs = parts[0]!.cpuMs ?? Number.NaN;
  const latencies = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const seconds = Math.max(...parts.map((p) => p.seconds));
  const handshakes = latencies.length;
  const rate = parts.reduce((a, p) => a + p.latencies.length / p.seconds, 0);
  const ceiling = parts.reduce((a, p) => a + p.ceilingPerSec, 0);
  const ike = o.ike ?? 'aes128-sha1-modp2048';
  const proposals = parseIkeProposal(ike, { allowWeak: true });
  const group = proposals.ok ? dhGroupInfo(proposals.value[0]!.group)!.keyword : '?';
  const pfs = !o.phase1Only && (o.pfs ?? false);
  return {
    ike,
    mode: o.mode ?? 'main',
    concurrency: o.concurrency ?? 1,
    fakeDh: o.fakeDh ?? false,
    asyncDh: o.asyncDh ?? false,
    fullLengthExponent: o.fullLengthExponent ?? false,
    quickMode: o.phase1Only ? 'phase1' : `${o.esp ?? 'aes128-sha1'}${pfs ? `-${group}` : ''}`,
    pfs,
    workers,
    dhPerHandshake: pfs ? 2 : 1,
    handshakes,
    seconds,
    handshakesPerSec: rate,
    ceilingPerSec: ceiling,
    ratioToCeiling: rate / ceiling,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMsPerHandshake: cpuMs / handshakes,
  };
}

export function formatHandshakeBench(rows: HandshakeBenchResult[]): string {
  const head = '| proposal | mode | quick mode | DH | exponent | threads | concurrency | handshakes/s | DH ceiling/s | ratio | p50 ms | p99 ms | CPU ms/handshake |\n|---|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|';
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${r.ike} | ${r.mode} | ${r.quickMode} | ${r.fakeDh ? 'null (fake)' : r.asyncDh ? 'async pool' : 'sync'} | ${r.fullLengthExponent ? 'full' : 'short'} | ${r.workers ? `${r.workers} worker${r.workers > 1 ? 's' : ''}` : 'main'} | ${r.concurrency} | ${f(r.handshakesPerSec)} | ${f(r.ceilingPerSec)} | ${f(r.ratioToCeiling, 2)} | ${f(r.p50Ms, 2)} | ${f(r.p99Ms, 2)} | ${f(r.cpuMsPerHandshake, 2)} |`,
    ),
  ].join('\n');
}


const HANDSHAKES_COMMAND = command({
  name: 'ike bench handshakes',
  summary: `Complete handshakes (Main or Aggressive Mode, then Quick Mode) between an initiator and a
responder in memory, as fast as the engine goes, beside the DH-bound ceiling measured in the same run
(alternating 250 ms slices); prints handshakes/s, latency percentiles, CPU per handshake and the ratio.`,
  options: {
    duration: { kind: 'duration', min: 0.1, help: 'measuring time (default 3s)' },
    mode: { kind: 'choice', choices: ['main', 'aggressive'], help: 'phase 1 exchange (default main)' },
    ike: { kind: 'string', value: 'PROPOSAL', help: 'phase 1 proposal (default aes128-sha1-modp2048)' },
    group: { kind: 'string', value: 'GROUP', help: 'shorthand for --ike aes128-sha1-GROUP' },
    esp: { kind: 'string', value: 'PROPOSAL', help: 'Quick Mode ESP proposal (default aes128-sha1)' },
    pfs: { kind: 'flag', help: 'Quick Mode with a KE payload (a second DH exchange)' },
    'phase1-only': { kind: 'flag', help: 'phase 1 alone, no Quick Mode' },
    concurrency: { kind: 'integer', min: 1, max: 100000, help: 'handshakes in flight per thread (default 1)' },
    workers: { kind: 'integer', min: 0, max: 256, help: 'worker threads, each doing the same; 0 = this thread (default)' },
    async: { kind: 'flag', help: 'DH on the libuv thread pool' },
    'fake-dh': { kind: 'flag', help: "a null DH group: the protocol's own cost" },
    'full-exponent': { kind: 'flag', help: 'full-length DH exponents instead of short ones' },
    json: { kind: 'flag', help: 'one JSON object instead of the table' },
  },
});

if (!isMainThread && (workerData as { handshakeBench?: HandshakeBenchOptions } | null)?.handshakeBench) {
  const port = parentPort!;
  const go = () => new Promise<{ start?: number }>((r) => port.once('message', (m: { start?: number }) => r(m)));
  const data = workerData as { handshakeBench: HandshakeBenchOptions; index: number };
  try {
    const result = await runThread(data.handshakeBench, {
      index: data.index,
      measuring: async () => {
        port.postMessage({ phase: 'warm' });
        const { start } = await go();
        // The common start, on this thread's clock; wait for it so that every thread begins together.
        const local = start! - performance.timeOrigin;
        while (performance.now() < local) await new Promise((r) => setTimeout(r, Math.max(0, local - performance.now())));
        return local;
      },
      measured: async () => {
        port.postMessage({ phase: 'measured' });
        await go();
      },
    });
    port.postMessage({ result });
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).message });
  }
} else if (isMainThread && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const a = benchArgs(HANDSHAKES_COMMAND);
  const o: HandshakeBenchOptions = {
    ike: a.ike ?? (a.group ? `aes128-sha1-${a.group}` : undefined),
    mode: (a.mode as 'main' | 'aggressive' | undefined) ?? 'main',
    concurrency: a.concurrency ?? 1,
    durationMs: (a.duration ?? 3) * 1000,
    fakeDh: a['fake-dh'],
    fullLengthExponent: a['full-exponent'],
    asyncDh: a.async,
    esp: a.esp,
    pfs: a.pfs,
    phase1Only: a['phase1-only'],
    workers: a.workers ?? 0,
  };
  const json = a.json;
  const r = await runHandshakeBench(o);
  if (json) process.stdout.write(JSON.stringify(r) + '\n');
  else process.stdout.write(formatHandshakeBench([r]) + '\n');
}
