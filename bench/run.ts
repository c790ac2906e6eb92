// `npm run bench`: every benchmark suite one after another (crypto, codec, esp --quick, handshakes in a
// few configurations), a progress line on stderr, and the results in bench-results/<date>.md (markdown
// tables, with SVG charts next to it: ESP Gbit/s, handshakes/s against the DH ceiling, the setup latency
// histogram) and bench-results/<date>.json. Each suite runs as its own process (node dist/bench/<suite>.js)
// so that one suite's JIT state, heap and thread pool do not colour the next. About 1.5 minutes.
//   node dist/bench/run.js [--only crypto,codec,esp,handshakes,gateway-handshakes] [--out DIR] [--handshake-seconds S]
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatEspBench, type EspBenchRow } from './esp.js';
import { formatHandshakeBench, type HandshakeBenchResult } from './handshakes.js';
import { formatGatewayBench, type GatewayBenchResult } from './gateway-handshakes.js';
import { argValue } from './args.js';
import { espChart, handshakeChart, latencyChart } from './charts.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');


interface Job {
  suite: string;
  label: string;
  args: string[];
}

const hs = argValue('handshake-seconds') ?? '3';
/** The handshake configurations: the plain case, PFS, AEAD, aggressive, the async pool, worker scaling, null DH. */
const HANDSHAKES: [string, string[]][] = [
  ['MM+QM aes128-sha1-modp2048', []],
  ['MM+QM with PFS', ['--pfs']],
  ['MM+QM esp aes128gcm16, ecp256', ['--ike', 'aes128-sha256-ecp256', '--esp', 'aes128gcm16']],
  ['AM+QM', ['--mode', 'aggressive']],
  ['MM+QM async pool, concurrency 8', ['--async', '--concurrency', '8']],
  ['MM+QM 1 worker thread', ['--workers', '1']],
  ['MM+QM 2 worker threads', ['--workers', '2']],
  ['MM+QM null DH (protocol cost)', ['--fake-dh']],
];

const JOBS: Job[] = [
  { suite: 'crypto', label: 'crypto (DH, prf, KDF vs node:crypto)', args: ['--time', '100', '--rounds', '1'] },
  { suite: 'codec', label: 'codec (ISAKMP parse/encode)', args: ['--time', '300'] },
  { suite: 'esp', label: 'esp --quick (seal/open vs raw EVP, node:crypto)', args: ['--quick', '--json'] },
  ...HANDSHAKES.map(([label, args]) => ({ suite: 'handshakes', label: `handshakes: ${label}`, args: [...args, '--duration', hs, '--json'] })),
  { suite: 'gateway-handshakes', label: 'gateway: MM+QM over UDP on loopback, responder in a child process', args: ['--duration', hs, '--json'] },
];

function runSuite(job: Job): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, `${job.suite}.js`), ...job.args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

const only = argValue('only')?.split(',');
const jobs = JOBS.filter((j) => !only || only.includes(j.suite));
const outDir = path.resolve(argValue('out') ?? path.join(root, 'bench-results'));
const started = new Date();
const stamp = started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
const machine = {
  node: process.version,
  openssl: process.versions.openssl,
  cpu: os.cpus()[0]?.model ?? 'cpu',
  cpus: os.cpus().length,
  loadAverageBefore: os.loadavg(),
  platform: `${os.platform()} ${os.release()}`,
  uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
};

const results: { suite: string; label: string; args: string[]; ok: boolean; seconds: number; output: unknown; stderr?: string }[] = [];
const t0 = performance.now();
for (const [n, job] of jobs.entries()) {
  const elapsed = ((performance.now() - t0) / 1000).toFixed(0);
  process.stderr.write(`[${n + 1}/${jobs.length}] ${elapsed}s ${job.label} ...\n`);
  const r = await runSuite(job);
  let output: unknown = r.stdout;
  const json = job.args.includes('--json');
  if (json && r.code === 0) {
    try {
      output = JSON.parse(r.stdout);
    } catch {
      /* keep the text */
    }
  }
  results.push({ suite: job.suite, label: job.label, args: job.args, ok: r.code === 0, seconds: r.seconds, output, ...(r.code !== 0 ? { stderr: r.stderr.slice(-2000) } : {}) });
  if (r.code !== 0) process.stderr.write(`    failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}\n`);
}
const totalSeconds = (performance.now() - t0) / 1000;
process.stderr.write(`done in ${totalSeconds.toFixed(0)} s\n`);

// ---- the markdown report ----
const md: string[] = [];
md.push(`# Benchmarks ${started.toISOString()}`, '');
md.push(`Node ${machine.node}, OpenSSL ${machine.openssl}, ${machine.cpu} x${machine.cpus}, ${machine.platform}; load average before the run ${machine.loadAverageBefore.map((l) => l.toFixed(2)).join(' ')}, after ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${totalSeconds.toFixed(0)} s in total.`, '');
for (const suite of ['crypto', 'codec', 'esp']) {
  const r = results.find((x) => x.suite === suite);
  if (!r) continue;
  md.push(`## ${r.label}`, '', `\`node dist/bench/${suite}.js ${r.args.join(' ')}\` (${r.seconds.toFixed(1)} s)`, '');
  if (!r.ok) md.push('failed:', '```', r.stderr ?? '', '```');
  else if (suite === 'esp' && Array.isArray(r.output)) md.push(formatEspBench(r.output as EspBenchRow[]));
  else if (suite === 'codec') md.push('```', String(r.output).trim(), '```');
  else md.push(String(r.output).trim());
  md.push('');
}
const hsRows = results.filter((x) => x.suite === 'handshakes');
if (hsRows.length) {
  md.push('## handshakes (in memory, initiator and responder in one process)', '');
  md.push(`\`node dist/bench/handshakes.js [options] --duration ${hs}\`; a handshake = phase 1 + Quick Mode, counted when both child SAs exist. DH ceiling = the rate of the DH work of one handshake alone (with PFS two DH exchanges), measured in the same run.`, '');
  const ok = hsRows.filter((r) => r.ok).map((r) => r.output as HandshakeBenchResult);
  md.push('| configuration | ' + formatHandshakeBench(ok).split('\n')[0]!.slice(2), '|---' + formatHandshakeBench(ok).split('\n')[1]!);
  const lines = formatHandshakeBench(ok).split('\n').slice(2);
  let k = 0;
  for (const r of hsRows) {
    if (r.ok) md.push(`| ${r.label.replace(/^handshakes: /, '')} ${lines[k++]!}`);
    else md.push(`| ${r.label.replace(/^handshakes: /, '')} | failed: ${(r.stderr ?? '').trim().split('\n').pop()} |`);
  }
  const w1 = ok.find((r) => r.workers === 1);
  const w2 = ok.find((r) => r.workers === 2);
  if (w1 && w2) md.push('', `Worker scaling, 2 threads vs 1: ${(w2.handshakesPerSec / w1.handshakesPerSec).toFixed(2)}x (DH ceiling ${(w2.ceilingPerSec / w1.ceilingPerSec).toFixed(2)}x).`);
  md.push('');
}
const gwRows = results.filter((x) => x.suite === 'gateway-handshakes');
if (gwRows.length) {
  md.push('## gateway handshakes (two gateways over UDP on loopback, two processes)', '');
  md.push(`\`node dist/bench/gateway-handshakes.js --duration ${hs}\`; the load tester's initiator Gateway here, the responder Gateway in a child process; DH ceiling as above, the mean of 1 s just before and 1 s just after the setups, which follow a warm-up of up to 2,000 setups.`, '');
  const ok = gwRows.filter((r) => r.ok).map((r) => r.output as GatewayBenchResult);
  if (ok.length) md.push(formatGatewayBench(ok));
  for (const r of gwRows.filter((x) => !x.ok)) md.push(`failed: ${(r.stderr ?? '').trim().split('\n').pop()}`);
  md.push('');
}
// ---- the charts, SVG files next to the markdown, shown in it ----
mkdirSync(outDir, { recursive: true });
const charts: Array<[string, string, string | null]> = [];
const espRun = results.find((x) => x.suite === 'esp' && x.ok && Array.isArray(x.output));
if (espRun) charts.push(['esp', 'ESP Gbit/s by packet size', espChart(espRun.output as EspBenchRow[])]);
const hsOk = results.filter((x) => x.suite === 'handshakes' && x.ok).map((x) => ({ label: x.label.replace(/^handshakes: /, ''), result: x.output as HandshakeBenchResult }));
if (hsOk.length) charts.push(['handshakes', 'Handshakes/s against the DH ceiling', handshakeChart(hsOk)]);
const gwOk = results.find((x) => x.suite === 'gateway-handshakes' && x.ok);
if (gwOk) charts.push(['latency', 'Setup latency over UDP', latencyChart(gwOk.output as GatewayBenchResult)]);
if (charts.some(([, , svg]) => svg)) md.push('## Charts', '');
for (const [name, title, svg] of charts) {
  if (!svg) continue;
  const file = `${stamp}-${name}.svg`;
  writeFileSync(path.join(outDir, file), svg + '\n');
  md.push(`![${title}](${file})`, '');
}
const mdFile = path.join(outDir, `${stamp}.md`);
const jsonFile = path.join(outDir, `${stamp}.json`);
writeFileSync(mdFile, md.join('\n') + '\n');
writeFileSync(jsonFile, JSON.stringify({ started: started.toISOString(), totalSeconds, machine, loadAverageAfter: os.loadavg(), results }, null, 2) + '\n');
process.stdout.write(`${path.relative(process.cwd(), mdFile)}\n${path.relative(process.cwd(), jsonFile)}\n`);
for (const [name, , svg] of charts) if (svg) process.stdout.write(`${path.relative(process.cwd(), path.join(outDir, `${stamp}-${name}.svg`))}\n`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
