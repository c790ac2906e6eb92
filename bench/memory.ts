// Memory per established SA pair: N ISAKMP SAs, each with one child SA pair (two ESP SAs).
//
// Two modes:
//  --gateway  (what a gateway keeps, the figure to quote) a responder Gateway in a child process, set up
//             N times over loopback UDP by the load tester (ts/load, --keep) from an initiating Gateway in
//             this process. The child reports process.memoryUsage() after full collections: once when the
//             last child SA is up, once after the phase 1 grace period (the machines kept to answer a
//             retransmitted last message) has passed for every SA.
//  default    the responder's objects alone, built in memory without sockets or timers (the phase 1
//             result, the phase 2 context, the ESP SAs in the addon): cheaper to run, shows the ike layer.
// Run with --expose-gc for exact figures:  node --expose-gc dist/bench/memory.js [--gateway] [--count 100000] [--json]
// (--gateway also takes --concurrency N and --heapsnapshot FILE: the responder's heap at the end)
// The handshakes use a null DH group (benchmarks only, set in code: no config file can ask for it) so
// 100,000 of them take a few minutes, not an hour; the state kept is the same as with real DH.
import { pathToFileURL } from 'node:url';
import { defaultCrypto } from '../ts/crypto/index.js';
import { type EspSa } from '../ts/esp/index.js';
import { nativeTestAddon } from '../ts/native.js';
import {
  CookieGenerator,
  createChildEspSas,
  IsakmpSaContext,
  Phase1,
  parseEspProposal,
  parseIkeProposal,
  retainChildSa,
  retransmitTotalMs,
  type ChildSa,
  type Endpoint,
  type IsakmpSa,
  type RetainedChildSa,
  type Phase1Output,
  type Phase1Policy,
  type Phase2Output,
  type Phase2Policy,
} from '../ts/ike/index.js';
import { Gateway, retransmitPolicy, type GatewayConfig } from '../ts/gateway/index.js';
import { loopbackConfig } from './loopback-config.js';
import { formatProgress, LoadTester } from '../ts/load/index.js';
import { fakeDhCrypto } from './handshakes.js';
import { benchArgs, command } from './args.js';

export interface MemoryResult {
  count: number;
  heapBytesPerPair: number;
  externalBytesPerPair: number;
  rssBytesPerPair: number;
  seconds: number;
}

interface Kept {
  sa: IsakmpSa;
  ctx: IsakmpSaContext;
  child: RetainedChildSa;
  esp: { inbound: EspSa; outbound: EspSa };
}

const I: Endpoint = { address: '192.0.2.1', port: 500 };
const R: Endpoint = { address: '192.0.2.2', port: 500 };

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export async function runMemoryBench(count: number): Promise<MemoryResult> {
  const crypto = fakeDhCrypto(defaultCrypto());
  const ike = parseIkeProposal('aes128-sha256-modp2048');
  const esp = parseEspProposal('aes128gcm16');
  if (!ike.ok || !esp.ok) throw new Error('proposals');
  const common = { mode: 'main' as const, proposals: ike.value, psk: Buffer.from('memory benchmark key') };
  const pi: Phase1Policy = { ...common, name: 'm', localId: { kind: 'ipv4', address: I.address } };
  const pr: Phase1Policy = { ...common, name: 'm', localId: { kind: 'ipv4', address: R.address } };
  const child: Phase2Policy = { name: 'm', proposals: esp.value };
  const ci = new CookieGenerator(crypto);
  const cr = new CookieGenerator(crypto);
  const kept: Kept[] = [];

  const one = async (): Promise<void> => {
    const now = Date.now();
    const a = await Phase1.initiate({ crypto, cookies: ci, local: I, remote: R }, pi, now);
    const b = await Phase1.respond({ crypto, cookies: cr, local: R, remote: I }, [pr], a.out.send[0]!, now);
    if (!b.phase1) throw new Error(b.out.failed?.message);
    let toI: Phase1Output = b.out;
    for (let k = 0; k < 3; k++) {
      const oi = await a.phase1.handle(toI.send[0]!, now);
      if (oi.send.length === 0) break;
      toI = await b.phase1.handle(oi.send[0]!, now);
    }
    const saI = a.phase1.established;
    const saR = b.phase1.established;
    if (!saI || !saR) throw new Error('phase 1 did not complete');
    const ctxI = new IsakmpSaContext(crypto, saI, { children: [child] }, now);
    const ctxR = new IsakmpSaContext(crypto, saR, { children: [child] }, now);
    let childR: ChildSa | undefined;
    let m: Phase2Output = (await ctxI.initiate(child, now)).out;
    for (let k = 0; k < 3 && m.send.length > 0; k++) {
      const r = await ctxR.handle(m.send[0]!, now);
      for (const e of r.events) if (e.type === 'childSa') childR = e.child;
      if (r.send.length === 0) break;
      m = await ctxI.handle(r.send[0]!, now);
    }
    if (!childR) throw new Error('quick mode did not complete');
    // What a responder gateway keeps once the retransmission windows have passed (the phase 1 machine and
    // the finished Quick Mode are let go then); the initiator side is dropped.
    ctxR.onTimer(now + 3_600_000);
    kept.push({ sa: saR, ctx: ctxR, child: retainChildSa(childR), esp: createChildEspSas(childR) });
  };

  await one(); // warm up the code paths before the baseline
  kept.length = 0;
  gc();
  const m0 = process.memoryUsage();
  const t0 = performance.now();
  for (let n = 0; n < count; n++) {
    await one();
    if (n % 10_000 === 9_999 && process.stderr.isTTY) process.stderr.write(`\r  ${n + 1}/${count} SA pairs`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = (performance.now() - t0) / 1000;
  gc();
  const m1 = process.memoryUsage();
  const result = {
    count: kept.length,
    heapBytesPerPair: (m1.heapUsed - m0.heapUsed) / kept.length,
    externalBytesPerPair: (m1.external - m0.external) / kept.length,
    rssBytesPerPair: (m1.rss - m0.rss) / kept.length,
    seconds,
  };
  for (const k of kept) {
    k.esp.inbound.destroy?.();
    k.esp.outbound.destroy?.();
  }
  return result;
}

export interface GatewayMemoryFigures {
  /** Per established SA pair, over the baseline taken after a warm-up. */
  heapBytesPerPair: number;
  externalBytesPerPair: number;
  rssBytesPerPair: number;
  /**
   * malloc's bytes in use (glibc mallinfo2 through the addon): everything native, the OpenSSL and addon
   * objects of the ESP SAs and the backing stores of Buffers (so it includes `external`); NaN without it.
   * JS heap + this = what the SA pair costs, without the allocators' slack that RSS also counts.
   */
  mallocBytesPerPair: number;
  /** The responder's tables when measured. */
  phase1: number;
  children: number;
  halfOpen: number;
}

export interface GatewayMemoryResult {
  count: number;
  concurrency: number;
  /** Setups the load tester completed / failed. */
  done: number;
  failed: number;
  seconds: number;
  setupsPerSec: number;
  /** When the last child SA is up. */
  up: GatewayMemoryFigures;
  /** After the phase 1 grace period of every SA (the steady state of a long-running gateway). */
  settled: GatewayMemoryFigures;
  graceMs: number;
}

/** Retransmission of the benchmark's connection: its total (the phase 1 grace period) is ~8 s. */
const BENCH_RETRANSMIT = { tries: 3, timeout: '1s', factor: 1.5 };

function benchConfig(port: number, remotePort: number, remoteNattPort: number, id: string, peerId: string): GatewayConfig {
  const config = loopbackConfig('m', [port || 1, (port || 1) + 1], [remotePort, remoteNattPort], [id.replace(/^@/, ''), peerId.replace(/^@/, '')], 'memory benchmark key', {
    ike: ['aes128-sha256-modp2048'],
    esp: ['aes128gcm16'],
    // DPD state is kept per SA as in a real gateway, but no probe falls due during the run (at 30 s,
    // 100,000 idle SAs would send over 3,000 probes a second and the run would measure that instead)
    dpd: { delay: '1h', timeout: '150s' },
    retransmit: BENCH_RETRANSMIT,
  });
  if (!port) config.listen = { address: '127.0.0.1', port: 0, nattPort: 0 }; // any free ports
  return config;
}

type ToResponder = { type: 'baseline' } | { type: 'measure'; children: number; heapSnapshot?: string } | { type: 'exit' };
type FromResponder =
  | { type: 'ready'; ike: number; natt: number }
  | { type: 'baseline' }
  | { type: 'measured'; figures: Omit<GatewayMemoryFigures, 'heapBytesPerPair' | 'externalBytesPerPair' | 'rssBytesPerPair' | 'mallocBytesPerPair'> & { m: NodeJS.MemoryUsage; m0: NodeJS.MemoryUsage; malloc: number; malloc0: number } };

/** The responder process: a Gateway that answers, reports its memory when asked. */
async function responderProcess(): Promise<void> {
  const send = (m: FromResponder) => process.send!(m);
  const gw = new Gateway(benchConfig(0, 1, 1, '@responder', '@initiator'), { crypto: fakeDhCrypto(defaultCrypto()), independentSas: true });
  gw.on('error', () => undefined); // the initiator counts failures
  await gw.start();
  let m0 = process.memoryUsage();
  const mallocInUse = () => nativeTestAddon()?.espMallocInUse() ?? Number.NaN; // the test build's hook reads the whole process
  let malloc0 = mallocInUse();
  const settle = async (children: number) => {
    // the last QM3s may still be on their way
    for (let i = 0; i < 500 && gw.stats().children < children; i++) await new Promise((r) => setTimeout(r, 20));
  };
  process.on('message', (msg: ToResponder) => {
    void (async () => {
      if (msg.type === 'baseline') {
        await settle(0);
        gc();
        gc();
        m0 = process.memoryUsage();
        malloc0 = mallocInUse();
        send({ type: 'baseline' });
      } else if (msg.type === 'measure') {
        await settle(msg.children);
        gc();
        gc();
        const m = process.memoryUsage();
        const malloc = mallocInUse();
        if (msg.heapSnapshot) (await import('node:v8')).writeHeapSnapshot(msg.heapSnapshot);
        send({ type: 'measured', figures: { ...gw.stats(), m, m0, malloc, malloc0 } });
      } else process.exit(0);
    })();
  });
  send({ type: 'ready', ike: gw.boundPorts.ike, natt: gw.boundPorts.natt });
}

/** `heapSnapshot`: a file for the responder's heap snapshot, written after the last measurement (for finding what is kept). */
export async function runGatewayMemoryBench(count: number, concurrency = 100, progress?: (line: string) => void, heapSnapshot?: string): Promise<GatewayMemoryResult> {
  const { fork } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const child = fork(fileURLToPath(import.meta.url), ['--responder-process'], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting: ((m: FromResponder) => void)[] = [];
  child.on('message', (m: FromResponder) => waiting.shift()?.(m));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the responder process exited (${code})`))));
  const ask = (m: ToResponder | null) => {
    const answer = new Promise<FromResponder>((r) => waiting.push(r));
    if (m) child.send(m);
    return Promise.race([answer, exited]);
  };
  let gw: Gateway | null = null;
  try {
    const ready = await ask(null);
    if (ready.type !== 'ready') throw new Error('responder: unexpected message');
    const config = benchConfig(0, ready.ike, ready.natt, '@initiator', '@responder');
    // how long the gateways keep a finished phase 1 machine (both run this connection's schedule)
    const graceMs = retransmitTotalMs(retransmitPolicy(config.connections[0]!));
    gw = new Gateway(config, { crypto: fakeDhCrypto(defaultCrypto()) });
    gw.on('error', () => undefined); // counted by the load tester
    await gw.start();
    // warm-up: the code paths and the responder's per-connection state exist before the baseline
    await new LoadTester(gw, { connection: 'm', count: 200, concurrency: 20 }).run();
    await ask({ type: 'baseline' });
    const r = await new LoadTester(gw, {
      connection: 'm',
      count,
      concurrency,
      keep: true,
      timeoutMs: 60_000,
      ...(progress ? { onProgress: (p) => progress(formatProgress(p, count)), progressIntervalMs: 5000 } : {}),
    }).run();
    const figures = (m: FromResponder): GatewayMemoryFigures => {
      if (m.type !== 'measured') throw new Error('responder: unexpected message');
      const f = m.figures;
      const n = Math.max(1, f.children);
      return {
        heapBytesPerPair: (f.m.heapUsed - f.m0.heapUsed) / n,
        externalBytesPerPair: (f.m.external - f.m0.external) / n,
        rssBytesPerPair: (f.m.rss - f.m0.rss) / n,
        mallocBytesPerPair: f.malloc0 >= 0 && f.malloc >= 0 ? (f.malloc - f.malloc0) / n : Number.NaN,
        phase1: f.phase1,
        children: f.children,
        halfOpen: f.halfOpen,
      };
    };
    const up = figures(await ask({ type: 'measure', children: r.done }));
    progress?.(`waiting ${((graceMs + 2000) / 1000).toFixed(0)} s for the phase 1 grace period`);
    await new Promise((res) => setTimeout(res, graceMs + 2000));
    const settled = figures(await ask({ type: 'measure', children: r.done, ...(heapSnapshot ? { heapSnapshot } : {}) }));
    return { count, concurrency, done: r.done, failed: r.failed, seconds: r.seconds, setupsPerSec: r.setupsPerSec, up, settled, graceMs };
  } finally {
    // no stop(): deleting 100,000 SAs one by one would only add minutes
    if (child.exitCode === null) child.kill();
    if (gw) await Promise.race([gw.stop(), new Promise((r) => setTimeout(r, 2000).unref())]).catch(() => undefined);
  }
}


const MEMORY_COMMAND = command({
  name: 'ike bench memory',
  summary: `Bytes per SA pair: N ISAKMP SAs with one child SA pair each, built in memory (JS heap, Buffers,
RSS); --gateway: what a responder Gateway keeps for N setups over loopback (initiator in a child process).
Run it as ike bench memory (node --expose-gc) for exact figures.`,
  options: {
    count: { kind: 'integer', min: 1, help: 'SA pairs (default 100000)' },
    gateway: { kind: 'flag', help: 'measure a responder Gateway set up over loopback' },
    concurrency: { kind: 'integer', min: 1, help: 'with --gateway: setups in flight (default 100)' },
    heapsnapshot: { kind: 'string', value: 'FILE', help: 'with --gateway: write a heap snapshot there' },
    json: { kind: 'flag', help: 'one JSON object instead of the text' },
  },
});

const kb = (b: number) => `${(b / 1024).toFixed(2)} KiB`;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--responder-process')) {
    await responderProcess();
  } else {
    const a = benchArgs(MEMORY_COMMAND);
    const count = a.count ?? 100_000;
    const json = a.json;
    if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('memory: run with node --expose-gc for exact figures\n');
    if (a.gateway) {
      const concurrency = a.concurrency ?? 100;
      const r = await runGatewayMemoryBench(count, concurrency, json ? undefined : (l) => process.stderr.write(`  ${l}\n`), a.heapsnapshot);
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      else {
        const row = (what: string, f: GatewayMemoryFigures) =>
          `  ${what.padEnd(26)} JS heap ${kb(f.heapBytesPerPair)} + native (malloc in use, Buffers included) ${kb(f.mallocBytesPerPair)} = ${kb(f.heapBytesPerPair + f.mallocBytesPerPair)}; external ${kb(f.externalBytesPerPair)}, RSS ${kb(f.rssBytesPerPair)} per SA pair (${f.phase1} ISAKMP SAs, ${f.children} child SAs)\n`;
        process.stdout.write(
          `responder Gateway: ${r.done} setups kept (${r.failed} failed) in ${r.seconds.toFixed(1)} s, ${r.setupsPerSec.toFixed(0)}/s\n` +
            row('when the last is up:', r.up) +
            row(`after the ${(r.graceMs / 1000).toFixed(0)} s grace period:`, r.settled) +
            `  (RSS also counts V8's free heap pages and malloc's slack)\n`,
        );
      }
    } else {
      const r = await runMemoryBench(count);
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      else {
        process.stdout.write(
          `${r.count} ISAKMP SAs with one child SA pair each, built in ${r.seconds.toFixed(1)} s\n` +
            `  JS heap     ${kb(r.heapBytesPerPair)} per SA pair\n` +
            `  external    ${kb(r.externalBytesPerPair)} per SA pair (Buffers)\n` +
            `  process RSS ${kb(r.rssBytesPerPair)} per SA pair (heap + native: OpenSSL contexts of the ESP SAs)\n`,
        );
      }
    }
  }
}
