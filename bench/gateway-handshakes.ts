// `ike bench gateway`: complete setups (Main Mode + Quick Mode, real DH) over real UDP on 127.0.0.1 between
// two gateways in two processes, so that each side has its own event loop and can have its own core: the
// load tester (ts/load) drives the initiator Gateway in this process, the responder Gateway runs in a child
// process. Where `ike bench handshakes` measures the engine in memory, this measures what a gateway does with
// sockets, timers, the SA table and deletes. Reports setups/s, latency p50/p99, CPU per setup on each side
// and, measured in the same run just before and just after the setups (the mean), the single-thread DH ceiling as
// `ike bench handshakes` defines it (2 key pairs + 2 shared secrets per DH exchange; with PFS two
// exchanges), and the ratio of the two.
//   node dist/bench/gateway-handshakes.js [--duration S] [--concurrency C] [--ike P] [--esp P] [--pfs]
//                                         [--sync-dh] [--keep] [--fake-dh] [--dgram] [--warmup N] [--json]
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defaultCrypto } from '../ts/crypto/index.js';
import type { GatewayConfig } from '../ts/gateway/config.js';
import { Gateway, type GatewayOptions } from '../ts/gateway/gateway.js';
import { nativeAddon } from '../ts/native.js';
import { LoadTester, type LoadResult } from '../ts/load/load-tester.js';
import { parseIkeProposal } from '../ts/ike/index.js';
import { dhCeiling, fakeDhCrypto } from './handshakes.js';
import { freePorts } from './soak.js';
import { loopbackConfig } from './loopback-config.js';

export interface GatewayBenchOptions {
  durationMs: number;
  concurrency: number;
  ike: string;
  esp: string;
  pfs: boolean;
  /** DH on the event loop instead of the thread pool (both sides). */
  syncDh: boolean;
  /**
   * Setups before measuring (at most WARM_UP_MS of them): V8 optimizes by use, and as in `ike bench
   * handshakes` the first ~2,000 setups run at up to twice the CPU per setup while its compiler threads
   * take the other core (which here is the other gateway's). A gateway runs for days; the benchmark
   * measures it warm.
   */
  warmup: number;
  /**
   * Keep every SA up (as `ike bench handshakes` does) instead of deleting each ISAKMP SA once its child is
   * up: the handshake alone, without the two Informational exchanges and the teardown per setup.
   */
  keep: boolean;
  /** A null DH group on both sides (`fakeDhCrypto`, as `ike bench handshakes --fake-dh`): the gateways' own cost. */
  fakeDh: boolean;
  /** node:dgram sockets instead of the addon's batched UdpSocket (the gateway's default when the addon is loaded). */
  dgram: boolean;
}

/** The warm-up's time limit (a slow machine measures after fewer setups rather than waiting). */
const WARM_UP_MS = 5000;

export const GATEWAY_BENCH_DEFAULTS: GatewayBenchOptions = {
  durationMs: 5000,
  concurrency: 16,
  ike: 'aes128-sha1-modp2048',
  esp: 'aes128-sha1',
  pfs: false,
  syncDh: false,
  warmup: 2000,
  keep: false,
  fakeDh: false,
  dgram: false,
};

export interface GatewayBenchResult {
  ike: string;
  esp: string;
  pfs: boolean;
  asyncDh: boolean;
  fakeDh: boolean;
  /** The gateways' sockets: the addon's batched UdpSocket or node:dgram. */
  sockets: 'native' | 'dgram';
  concurrency: number;
  setups: number;
  failed: number;
  seconds: number;
  setupsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** From the load tester: setups per latency bucket (ms). */
  latencyHistogram?: Array<{ upToMs: number; count: number }>;
  initiatorCpuMsPerSetup: number;
  responderCpuMsPerSetup: number;
  /** DH exchanges per setup: 1, or 2 with PFS. */
  dhPerSetup: number;
  /** Single thread, sync, in this process: the mean of 1 s just before and 1 s just after the setups (same definition as `ike bench handshakes`). */
  ceilingPerSec: number;
  ratioToCeiling: number;
  failures: Record<string, number>;
}

function config(o: GatewayBenchOptions, listen: [number, number], remote: [number, number], initiator: boolean): GatewayConfig {
  return loopbackConfig('bench', listen, remote, initiator ? ['bench-initiator', 'bench-responder'] : ['bench-responder', 'bench-initiator'], 'gateway handshake benchmark', {
    ike: [o.ike],
    esp: [o.esp],
    pfs: o.pfs,
    localTs: initiator ? '10.1.0.0/24' : '10.2.0.0/24',
    remoteTs: initiator ? '10.2.0.0/24' : '10.1.0.0/24',
    // loopback answers in microseconds: a retransmission means an overloaded side, which should show
    retransmit: { tries: 3, timeout: '2s', factor: 1.5 },
    allowWeak: true,
  });
}

function gatewayOptions(o: GatewayBenchOptions): GatewayOptions {
  return { asyncDh: !o.syncDh, independentSas: o.keep, ...(o.dgram ? { nativeUdp: false } : {}), ...(o.fakeDh ? { crypto: fakeDhCrypto(defaultCrypto()) } : {}) };
}

type FromResponder = { ready: [number, number] } | { cpu: { user: number; system: number } } | { error: string };

/** The child: a responder Gateway until told to stop; CPU time reported on request. */
async function responderMain(o: GatewayBenchOptions, initiatorPorts: [number, number]): Promise<void> {
  const send = (m: FromResponder) => process.send!(m);
  const [ike, natt] = (await freePorts(2)) as [number, number];
  const gw = new Gateway(config(o, [ike, natt], initiatorPorts, false), gatewayOptions(o));
  gw.on('error', () => undefined); // the initiator counts failures
  await gw.start();
  let cpu0 = process.cpuUsage();
  process.on('message', async (m: string) => {
    if (m === 'mark') cpu0 = process.cpuUsage();
    else if (m === 'cpu') send({ cpu: process.cpuUsage(cpu0) });
    else if (m === 'stop') {
      await gw.stop();
      process.disconnect();
    }
  });
  send({ ready: [ike, natt] });
}

function ask(child: ChildProcess, m: string): Promise<FromResponder> {
  return new Promise((resolve, reject) => {
    child.once('message', (r: FromResponder) => ('error' in r ? reject(new Error(r.error)) : resolve(r)));
    child.send(m);
  });
}

export async function runGatewayBench(options: Partial<GatewayBenchOptions> = {}): Promise<GatewayBenchResult> {
  const o: GatewayBenchOptions = { ...GATEWAY_BENCH_DEFAULTS, ...options };
  const proposal = parseIkeProposal(o.ike, { allowWeak: true });
  if (!proposal.ok) throw new RangeError(proposal.error);
  const [ike, natt] = (await freePorts(2)) as [number, number];
  const child = fork(fileURLToPath(import.meta.url), ['--responder', JSON.stringify({ o, initiator: [ike, natt] })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...(process.env.IKE_PROF ? { execArgv: ['--cpu-prof', '--cpu-prof-dir=' + process.env.IKE_PROF] } : process.env.IKE_RESPONDER_FLAGS ? { execArgv: process.env.IKE_RESPONDER_FLAGS.split(' ') } : {}) });
  try {
    const ready = await new Promise<[number, number]>((resolve, reject) => {
      child.once('message', (m: FromResponder) => ('ready' in m ? resolve(m.ready) : reject(new Error('error' in m ? m.error : 'responder did not start'))));
      child.once('exit', (code) => reject(new Error(`responder exited with ${code}`)));
    });
    const gw = new Gateway(config(o, [ike, natt], ready, true), gatewayOptions(o));
    gw.on('error', () => undefined); // counted by the tester
    await gw.start();
    let result: LoadResult;
    let responderCpu: { user: number; system: number };
    const dhPerSetup = o.pfs ? 2 : 1;
    // The ceiling on this thread while both gateways are idle, exactly as `ike bench handshakes` measures it,
    // once just before the setups and once just after: the mean of the two, so that the VM's drift during
    // the run weighs on both figures alike (the two processes leave no core to interleave it).
    const ceiling = () => dhCeiling(defaultCrypto(), proposal.value[0]!.group, { fullLengthExponent: false }, 1000, dhPerSetup);
    let ceilingBefore = Number.NaN;
    try {
      if (o.warmup > 0) {
        const warm = new LoadTester(gw, { connection: 'bench', count: o.warmup, concurrency: o.concurrency, timeoutMs: 20_000 });
        const cap = setTimeout(() => warm.stop(), WARM_UP_MS);
        await warm.run();
        clearTimeout(cap);
      }
      ceilingBefore = ceiling();
      child.send('mark');
      // a count no run reaches: the duration ends it (stop() lets the setups in flight finish)
      const tester = new LoadTester(gw, { connection: 'bench', count: 1e9, concurrency: o.concurrency, timeoutMs: 20_000, keep: o.keep });
      const timer = setTimeout(() => tester.stop(), o.durationMs);
      result = await tester.run();
      clearTimeout(timer);
      const r = await ask(child, 'cpu');
      responderCpu = 'cpu' in r ? r.cpu : { user: 0, system: 0 };
    } finally {
      await gw.stop();
    }
    child.send('stop');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    const ceilingPerSec = (ceilingBefore + ceiling()) / 2;
    return {
      ike: o.ike,
      esp: o.esp,
      pfs: o.pfs,
      asyncDh: !o.syncDh,
      fakeDh: o.fakeDh,
      sockets: o.dgram || nativeAddon() === null ? 'dgram' : 'native',
      concurrency: o.concurrency,
      setups: result.done,
      failed: result.failed,
      seconds: result.seconds,
      setupsPerSec: result.setupsPerSec,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      latencyHistogram: result.latencyHistogram,
      initiatorCpuMsPerSetup: result.cpuMs / Math.max(1, result.done),
      responderCpuMsPerSetup: (responderCpu.user + responderCpu.system) / 1000 / Math.max(1, result.done),
      dhPerSetup,
      ceilingPerSec,
      ratioToCeiling: result.setupsPerSec / ceilingPerSec,
      failures: result.failures,
    };
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

export function formatGatewayBench(rows: GatewayBenchResult[]): string {
  const head = '| proposal | quick mode | DH | sockets | concurrency | setups | failed | setups/s | DH ceiling/s | ratio | p50 ms | p99 ms | initiator CPU ms/setup | responder CPU ms/setup |\n|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|';
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${r.ike} | ${r.esp}${r.pfs ? ' + PFS' : ''} | ${r.fakeDh ? 'null (fake)' : r.asyncDh ? 'async pool' : 'sync'} | ${r.sockets} | ${r.concurrency} | ${r.setups} | ${r.failed} | ${r.setupsPerSec.toFixed(0)} | ${r.ceilingPerSec.toFixed(0)} | ${r.ratioToCeiling.toFixed(2)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.initiatorCpuMsPerSetup.toFixed(2)} | ${r.responderCpuMsPerSetup.toFixed(2)} |`,
    ),
  ].join('\n');
}

export const GATEWAY_BENCH_USAGE = `usage: ike bench gateway [--duration 5] [--concurrency 16] [--warmup 2000] [--ike aes128-sha1-modp2048]
                         [--esp aes128-sha1] [--pfs] [--sync-dh] [--keep] [--fake-dh] [--dgram] [--json]

Main Mode + Quick Mode setups over UDP on 127.0.0.1: the load tester with an initiator Gateway in this
process, a responder Gateway in a child process. After --warmup setups, the measured ones run between two
1 s measurements of the single-thread DH ceiling (as ike bench handshakes measures it). Each ISAKMP SA is deleted once its child is up, unless --keep (the handshake
alone, as ike bench handshakes counts it). --fake-dh: a null DH group on both sides, the gateways' own
cost (the ratio is then not a ratio to anything real). --dgram: node:dgram sockets on both sides instead
of the addon's batched UdpSocket. Exit code 1 if a setup failed, 2 for usage errors.
`;

function parseArgs(argv: string[]): { options: Partial<GatewayBenchOptions>; json: boolean } {
  const options: Partial<GatewayBenchOptions> = {};
  let json = false;
  const num = (i: number, name: string, integer: boolean): number => {
    const n = Number(argv[i]);
    if (argv[i] === undefined || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new RangeError(`--${name} needs a ${integer ? 'whole ' : ''}number >= 0`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--duration': options.durationMs = num(++i, 'duration', false) * 1000; break;
      case '--concurrency': options.concurrency = Math.max(1, num(++i, 'concurrency', true)); break;
      case '--warmup': options.warmup = num(++i, 'warmup', true); break;
      case '--ike': options.ike = argv[++i] ?? ''; break;
      case '--esp': options.esp = argv[++i] ?? ''; break;
      case '--pfs': options.pfs = true; break;
      case '--sync-dh': options.syncDh = true; break;
      case '--keep': options.keep = true; break;
      case '--fake-dh': options.fakeDh = true; break;
      case '--dgram': options.dgram = true; break;
      case '--json': json = true; break;
      default: throw new RangeError(`unknown option '${a}'`);
    }
  }
  return { options, json };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--responder') {
    const { o, initiator } = JSON.parse(process.argv[3]!) as { o: GatewayBenchOptions; initiator: [number, number] };
    await responderMain(o, initiator).catch((e) => process.send!({ error: (e as Error).message }));
  } else {
    try {
      if (process.argv.includes('--help')) {
        process.stdout.write(GATEWAY_BENCH_USAGE);
        process.exit(0);
      }
      const { options, json } = parseArgs(process.argv.slice(2));
      const r = await runGatewayBench(options);
      process.stdout.write((json ? JSON.stringify(r) : formatGatewayBench([r])) + '\n');
      process.exitCode = r.setups > 0 && r.failed === 0 ? 0 : 1;
    } catch (e) {
      process.stderr.write(`bench gateway: ${(e as Error).message}\n`);
      process.exitCode = e instanceof RangeError ? 2 : 1;
    }
  }
}
