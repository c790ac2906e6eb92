// Setup rate side by side, in network namespaces (root): `ike load` (our load tester, one Gateway) in
// namespace a against (a) strongSwan 5.9 as responder and (b) our own gateway as responder in namespace
// b, Main Mode + Quick Mode aes128-sha1-modp2048, without and with PFS. Prints a markdown table: setups/s,
// latency p50/p99, and the CPU time of each process per setup (the responder's from /proc/<pid>/stat over
// the run, the load tester's own getrusage). Not a test: a measurement. (c) strongSwan as initiator is not
// measured: its load-tester plugin is not installed here and `swanctl --initiate` per setup is too slow.
//   node dist/bench/load-vs-strongswan.js [--count N] [--warmup N] [--concurrency C] [--json]
// IKE_PROF=DIR: our responder writes a V8 CPU profile there (node --cpu-prof).
import { readFileSync, readdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { NetnsPair, StrongSwanPeer, charonAvailable, netnsAvailable, pairGatewayConfig } from '../test/interop/harness/index.js';
import type { LoadResult } from '../ts/load/index.js';
import { benchArgs, command } from './args.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const IKE_BIN = path.join(root, 'bin', 'ike.js');
const PSK = 'load-bench-secret';

const ARGS = benchArgs(
  command({
    name: 'node dist/bench/load-vs-strongswan.js',
    summary: `ike load against strongSwan and against our own responder in network namespaces, side by side:
setups per second and CPU per setup of each responder.`,
    options: {
      count: { kind: 'integer', min: 1, help: 'measured setups per responder (default 1000)' },
      warmup: { kind: 'integer', min: 0, help: 'setups before the measured ones (default 0: a cold responder)' },
      concurrency: { kind: 'integer', min: 1, help: 'setups in flight (default 32)' },
      json: { kind: 'flag', help: 'the rows as JSON' },
    },
  }),
);
const COUNT = ARGS.count ?? 1000;
/**
 * Setups run against each responder before the measured ones (default 0: a cold responder, as an operator
 * sees one just started). A Node responder spends its first ~2000 setups also compiling its hot code (V8's
 * optimizing compiler on background threads); with a warm-up the rows compare steady states.
 */
const WARMUP = ARGS.warmup ?? 0;
const CONCURRENCY = ARGS.concurrency ?? 32;
const TICK = 100; // USER_HZ: /proc/<pid>/stat counts in 1/100 s on Linux

/** utime + stime of a process, seconds (fields 14 and 15 of /proc/<pid>/stat; the name may hold spaces). */
function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

/** CPU seconds of the main thread and of all the others (a Node responder: libuv pool, V8's compiler and GC). */
function threadSeconds(pid: number): { main: number; others: number } {
  let others = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) if (Number(t) !== pid) others += cpuSeconds(pid, Number(t));
  return { main: cpuSeconds(pid, pid), others };
}

interface Row {
  responder: string;
  pfs: boolean;
  result: LoadResult;
  responderCpuMsPerSetup: number;
  initiatorCpuMsPerSetup: number;
  responderCpuPercent: number;
  initiatorCpuPercent: number;
}

function waitExit(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('exit', (c) => r(c))));
}

async function runLoad(pair: NetnsPair, pfs: boolean, dir: string, count = COUNT): Promise<LoadResult> {
  const file = path.join(dir, `load-${pfs ? 'pfs' : 'nopfs'}.json`);
  writeFileSync(
    file,
    JSON.stringify(pairGatewayConfig(pair.a, PSK, { pfs, retransmit: { tries: 3, timeout: '2s', factor: 1.5 } })),
    { mode: 0o600 },
  );
  const child = pair.spawnNode('a', [IKE_BIN, 'load', '--config', file, '--connection', 's', '--count', String(count), '--concurrency', String(CONCURRENCY), '--timeout', '20', '--json']);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    const last = d.trim().split('\n').pop();
    if (last) process.stderr.write(`\r    ${last}   `);
  });
  await waitExit(child);
  process.stderr.write('\n');
  if (!out.trim()) throw new Error(`ike load printed no summary: ${err}`);
  return JSON.parse(out) as LoadResult;
}

/** Our gateway as a responder, embedded the way an application would (no per-event printing). */
function ourResponder(pair: NetnsPair, pfs: boolean): ChildProcess {
  // unique 'never', as strongSwan's row is configured: the load tester's SAs share one identity and address,
  // so with the default each new ISAKMP SA would take over the children of all the older ones (a phase 1
  // re-key as far as the responder can tell), work that strongSwan is not asked to do
  const cfg = pairGatewayConfig(pair.b, PSK, { pfs, unique: 'never' });
  const index = path.join(root, 'dist', 'ts', 'index.js');
  const code = `
    import { Gateway, parseConfig } from ${JSON.stringify(index)};
    const r = parseConfig(${JSON.stringify(cfg)}, { baseDir: '.', env: {} });
    if (!r.ok) { console.error(r.errors.join('\\n')); process.exit(2); }
    const gw = new Gateway(r.config);
    let errors = 0;
    gw.on('error', () => errors++);
    await gw.start();
    console.log('listening');
    process.on('SIGTERM', async () => { await gw.stop(); console.error('responder errors ' + errors); process.exit(0); });
  `;
  return pair.spawnNode('b', [...(process.env.IKE_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.IKE_PROF] : []), ...(process.env.IKE_RESPONDER_FLAGS?.split(' ').filter(Boolean) ?? []), '--input-type=module', '-e', code]);
}

async function waitLine(child: ChildProcess, text: string, ms: number): Promise<void> {
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${text}' in ${ms} ms: ${buf}`)), ms);
    const on = (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', (d: Buffer) => (buf += d.toString()));
  });
}

async function measure(pair: NetnsPair, responder: 'strongSwan' | 'ours', pfs: boolean, dir: string): Promise<Row> {
  let pid: number;
  let stop: () => Promise<void>;
  if (responder === 'strongSwan') {
    const ss = new StrongSwanPeer(pair, 'b', {
      ike: 'aes128-sha1-modp2048',
      esp: pfs ? 'aes128-sha1-modp2048' : 'aes128-sha1',
      psk: PSK,
      kernel: 'netlink',
      unique: 'never',
      logLevel: 0,
      cfgLogLevel: 0,
      knlLogLevel: 0,
      netLogLevel: 0,
      encLogLevel: 0,
      threads: 8,
    });
    await ss.start();
    pid = ss.pid!;
    stop = async () => void (await ss.stop(1000));
  } else {
    const child = ourResponder(pair, pfs);
    await waitLine(child, 'listening', 10_000);
    pid = child.pid!;
    stop = async () => {
      child.kill('SIGTERM');
      await waitExit(child);
    };
  }
  try {
    if (WARMUP > 0) {
      process.stderr.write(`${responder} responder, ${pfs ? 'PFS' : 'no PFS'}: ${WARMUP} warm-up setups\n`);
      await runLoad(pair, pfs, dir, WARMUP);
    }
    process.stderr.write(`${responder} responder, ${pfs ? 'PFS' : 'no PFS'}: ${COUNT} setups at concurrency ${CONCURRENCY}\n`);
    const c0 = cpuSeconds(pid);
    const t0s = threadSeconds(pid);
    const t0 = performance.now();
    const result = await runLoad(pair, pfs, dir);
    const wall = (performance.now() - t0) / 1000;
    const rc = cpuSeconds(pid) - c0;
    const t1s = threadSeconds(pid);
    const perSetup = (sec: number) => ((sec * 1000) / Math.max(1, result.done)).toFixed(2);
    process.stderr.write(`\n    ${responder} responder threads: main ${perSetup(t1s.main - t0s.main)} ms/setup, others ${perSetup(t1s.others - t0s.others)} ms/setup\n`);
    return {
      responder,
      pfs,
      result,
      responderCpuMsPerSetup: (rc * 1000) / Math.max(1, result.done),
      initiatorCpuMsPerSetup: result.cpuMs / Math.max(1, result.done),
      responderCpuPercent: (rc / wall) * 100,
      initiatorCpuPercent: (result.cpuMs / 1000 / result.seconds) * 100,
    };
  } finally {
    await stop();
  }
}

function table(rows: Row[]): string {
  const f = (n: number, d = 0) => n.toFixed(d);
  return [
    '| initiator | responder | proposal | done | setups/s | p50 ms | p99 ms | initiator CPU ms/setup (%) | responder CPU ms/setup (%) |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ike load (ours) | ${r.responder === 'ours' ? 'ours (Gateway)' : 'strongSwan 5.9 charon'} | aes128-sha1-modp2048${r.pfs ? ' + PFS modp2048' : ''} | ${r.result.done}/${r.result.count} | ${f(r.result.setupsPerSec)} | ${f(r.result.p50Ms, 1)} | ${f(r.result.p99Ms, 1)} | ${f(r.initiatorCpuMsPerSetup, 2)} (${f(r.initiatorCpuPercent)}%) | ${f(r.responderCpuMsPerSetup, 2)} (${f(r.responderCpuPercent)}%) |`,
    ),
  ].join('\n');
}

const n = netnsAvailable();
const c = n.ok ? charonAvailable() : n;
if (!n.ok || !c.ok) {
  process.stderr.write(`cannot run: ${!n.ok ? n.why : c.why}\n`);
  process.exit(2);
}
// the harness unrefs the processes it starts: this keeps our event loop alive while we wait on them
const keepAlive = setInterval(() => undefined, 1000);
const pair = await NetnsPair.create({ prefix: 'ikbl' });
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-load-bench-'));
const rows: Row[] = [];
try {
  for (const pfs of [false, true]) {
    rows.push(await measure(pair, 'strongSwan', pfs, dir));
    rows.push(await measure(pair, 'ours', pfs, dir));
  }
} finally {
  await pair.destroy();
  clearInterval(keepAlive);
}
if (ARGS.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
else {
  process.stdout.write(`${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, Node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${COUNT} setups per row${WARMUP > 0 ? ` after ${WARMUP} warm-up setups` : ''}, concurrency ${CONCURRENCY}, both peers on this machine\n\n`);
  process.stdout.write(table(rows) + '\n');
}
