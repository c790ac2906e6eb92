// `ike bench flood`: a responder under a flood of spoofed Main Mode message 1s (issue 20.1), our gateway
// and strongSwan 5.9 side by side in one run, in network namespaces (root; test/stress/flood-bed.ts):
// bench/flood-sender.py in namespace b sends message 1s from random addresses of 10.98.0.0/16 with random
// cookies at each rate; the responder runs in namespace a, pinned to one core (taskset), the sender to the
// other. For each responder and rate it prints
//   - answered/s: message 2s the responder sent per second during the flood (from its veth's counters), the
//     message-1 rate it sustains on one core while flooded at that rate;
//   - get in: how long a legitimate strongSwan initiator (in b, first retransmission after 2 s) needs to
//     bring its ISAKMP SA up, started 2 s into the flood (or "no" within --timeout seconds); the responder
//     is started afresh for each rate, so the initiator is a new peer to it (not a recent source);
//   - queue drops/s: datagrams the kernel dropped because the responder's socket queue was full (what a
//     responder that cannot keep up loses, genuine peers' messages among them);
//   - out/in: bytes the responder sent over bytes it received (the amplification).
// strongSwan runs with its own flood defaults (block_threshold 5 per source IP, no total half-open limit).
// First, without namespaces: our cost per message 1 answered and refused, in-process on one core.
// Not a test: a measurement; the machine's other load shows in the figures (the load average is printed).
//   node dist/bench/flood.js [--rates 2000,5000,20000,50000] [--seconds 14] [--timeout 12] [--only ours|strongswan]
//                            [--no-pin] [--json]
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Gateway, parseConfig } from '../ts/gateway/index.js';
import { charonAvailable, interopSkipReason, netnsAvailable, type NetnsPair, type StrongSwanPeer } from '../test/interop/harness/index.js';
import { flood, floodPair, IKE, IKE_BIN, legitimateInitiator, message1, ourConfig, PSK, strongSwanResponder, timeToGetIn, udpQueueDrops, vethPackets } from '../test/stress/flood-bed.js';
import { benchArgs, command } from './args.js';

interface Row {
  responder: 'ours' | 'strongswan';
  rate: number;
  /** What the sender achieved. */
  offered: number;
  answeredPerSecond: number;
  receivedPerSecond: number;
  getInMs: number | null;
  amplification: number;
  /** Datagrams the kernel dropped a second because the responder's socket queue was full. */
  queueDropsPerSecond: number;
}

const args = benchArgs(
  command({
    name: 'ike bench flood',
    summary: `Spoofed Main Mode message-1 floods in network namespaces (root), ours beside strongSwan: message 1s
answered per second on one core, the time a legitimate initiator needs to get in, kernel queue drops and the
amplification (bytes out / bytes in); first our cost per message 1, in-process.`,
    options: {
      rates: { kind: 'string', value: 'N,N', help: 'flood rates, message 1s per second (default 2000,5000,20000,50000)' },
      seconds: { kind: 'duration', help: 'length of each flood (default 14s)' },
      timeout: { kind: 'duration', help: 'how long the legitimate peer may take (default 12s)' },
      only: { kind: 'choice', choices: ['ours', 'strongswan'], help: 'one responder only' },
      'no-pin': { kind: 'flag', help: 'leave the responder and the sender where the scheduler puts them' },
      json: { kind: 'flag', help: 'the rows as JSON' },
    },
  }),
);
const rates = (args.rates ?? '2000,5000,20000,50000').split(',').map(Number);
if (rates.some((r) => !(r > 0))) {
  process.stderr.write(`ike bench flood: --rates takes positive numbers, got '${args.rates}'\n`);
  process.exit(2);
}
const seconds = args.seconds ?? 14;
const timeout = args.timeout ?? 12;
const only = args.only;
const json = args.json === true;
// --no-pin: the responder and the sender run where the scheduler puts them (what a shared host gives)
const pin = args['no-pin'] !== true;
const RESPONDER_CPU = 0;
const SENDER_CPU = pin ? (os.cpus().length > 1 ? 1 : 0) : undefined;

/** A responder in namespace a: started, pinned to one core, stopped. */
interface Responder {
  name: Row['responder'];
  start(): Promise<void>;
  stop(): Promise<void>;
}

function ours(pair: NetnsPair): Responder {
  let child: ChildProcess | null = null;
  return {
    name: 'ours',
    async start() {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-flood-bench-'));
      const file = path.join(dir, 'gateway.json');
      writeFileSync(file, JSON.stringify(ourConfig(pair)), { mode: 0o600 });
      const gateway = [process.execPath, IKE_BIN, 'gateway', '--config', file, '--json', '--no-control'];
      child = pin
        ? pair.spawn('a', 'taskset', ['-c', String(RESPONDER_CPU), ...gateway], { stdio: ['ignore', 'pipe', 'pipe'] })
        : pair.spawn('a', gateway[0]!, gateway.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child!.stdout!.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          if (out.includes('"listening"')) resolve();
        });
        child!.on('exit', (code) => reject(new Error(`ike gateway exited ${code}`)));
      });
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    },
  };
}

function strongSwan(pair: NetnsPair): Responder {
  let ss: StrongSwanPeer | null = null;
  return {
    name: 'strongswan',
    async start() {
      ss = strongSwanResponder(pair);
      await ss.start();
      // every thread of charon on the responder's core
      if (pin) await pair.run('a', 'taskset', ['-a', '-p', '-c', String(RESPONDER_CPU), String(ss.pid)]);
    },
    async stop() {
      await ss?.stop(1000);
    },
  };
}

async function measure(pair: NetnsPair, initiator: StrongSwanPeer, responder: Responder, rate: number): Promise<Row> {
  const f = flood(pair, rate, seconds, SENDER_CPU);
  await new Promise((r) => setTimeout(r, 2000)); // the flood at full rate, the half-open table filling
  const t0 = performance.now();
  const v0 = await vethPackets(pair);
  const d0 = await udpQueueDrops(pair);
  const getInMs = await timeToGetIn(initiator, timeout);
  const v1 = await vethPackets(pair);
  const d1 = await udpQueueDrops(pair);
  const t1 = performance.now();
  const sent = await f.done;
  const dt = (t1 - t0) / 1000;
  return {
    responder: responder.name,
    rate,
    offered: sent.rate,
    answeredPerSecond: Math.round((v1.tx - v0.tx) / dt),
    receivedPerSecond: Math.round((v1.rx - v0.rx) / dt),
    getInMs: getInMs === null ? null : Math.round(getInMs),
    amplification: (v1.txBytes - v0.txBytes) / Math.max(1, v1.rxBytes - v0.rxBytes),
    queueDropsPerSecond: Math.round((d1 - d0) / dt),
  };
}

function table(rows: Row[]): string {
  const lines = [
    '| flood (sent/s) | responder | answered/s | received/s | queue drops/s | legitimate peer gets in | out/in bytes |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const getIn = r.getInMs === null ? `no (${timeout} s)` : `${(r.getInMs / 1000).toFixed(2)} s`;
    lines.push(`| ${r.rate} (${r.offered}) | ${r.responder} | ${r.answeredPerSecond} | ${r.receivedPerSecond} | ${r.queueDropsPerSecond} | ${getIn} | ${r.amplification.toFixed(2)}x |`);
  }
  return lines.join('\n');
}

/**
 * Our cost per message 1 on one core without kernel queues: forged message 1s (random cookies, 65,536
 * sources) handed to a gateway's receive path one after another, each answered (message 2 sent on a real
 * socket to 127.x addresses) or, in busy mode with no rate left, refused. Microseconds per message 1.
 */
async function inProcess(answer: boolean, count = 30_000): Promise<number> {
  const port = 28000 + (process.pid % 1000) * 2;
  const r = parseConfig({ listen: { address: '127.0.0.1', port, nattPort: port + 1 }, connections: { any: { remote: '%any', auth: { psk: PSK }, ike: [IKE] } } }, { baseDir: '.', env: {} });
  if (!r.ok) throw new Error(r.errors.join('; '));
  const gw = new Gateway(r.config, { admission: answer ? { busyThreshold: Infinity } : { busyThreshold: 0, busyNewPerSecond: 0 } });
  gw.on('error', () => undefined);
  await gw.start();
  const template = message1();
  const receive = (gw as unknown as { receive(m: Buffer, from: { address: string; port: number }, natt: boolean): void }).receive.bind(gw);
  const t0 = performance.now();
  for (let k = 0; k < count; k++) {
    const m = Buffer.from(template);
    m.writeUInt32BE(k, 0);
    receive(m, { address: `127.1.${(k >> 8) & 255}.${k & 255}`, port: 500 }, false);
    if (k % 256 === 255) await new Promise((res) => setImmediate(res)); // the answers' promises and sends run
  }
  await new Promise((res) => setImmediate(res));
  const us = ((performance.now() - t0) * 1000) / count;
  await gw.stop();
  return us;
}

async function main(): Promise<number> {
  const netns = netnsAvailable();
  const why = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
  if (why) {
    process.stderr.write(`ike bench flood: cannot run: ${why}\n`);
    return 2;
  }
  await inProcess(true, 5000); // warm up
  const answerUs = await inProcess(true);
  const refuseUs = await inProcess(false);
  process.stderr.write(`in-process: ${answerUs.toFixed(1)} us per answered message 1, ${refuseUs.toFixed(1)} us per refused one\n`);
  const pair = await floodPair('ikfb');
  const rows: Row[] = [];
  const keepAlive = setInterval(() => undefined, 1000);
  const load = os.loadavg();
  try {
    const initiator = legitimateInitiator(pair);
    await initiator.start();
    for (const responder of [ours(pair), strongSwan(pair)]) {
      if (only && only !== responder.name) continue;
      for (const rate of rates) {
        // a fresh responder for each rate: the initiator is a new peer to it (not a recent source)
        await responder.start();
        try {
          process.stderr.write(`flood ${rate}/s against ${responder.name} ...\n`);
          const row = await measure(pair, initiator, responder, rate);
          rows.push(row);
          process.stderr.write(`  ${JSON.stringify(row)}\n`);
        } finally {
          await responder.stop();
        }
        await new Promise((r) => setTimeout(r, 1000)); // the sender's last datagrams drain
      }
    }
    await initiator.stop(1000);
  } finally {
    clearInterval(keepAlive);
    await pair.destroy();
  }
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'cpu', loadAverageBefore: load.map((x) => x.toFixed(2)), loadAverageAfter: os.loadavg().map((x) => x.toFixed(2)) };
  const inProc = { answerUs, refuseUs, answeredPerSecond: Math.round(1e6 / answerUs), refusedPerSecond: Math.round(1e6 / refuseUs) };
  if (json) process.stdout.write(JSON.stringify({ machine, seconds, timeout, inProcess: inProc, rows }, null, 2) + '\n');
  else {
    process.stdout.write(`ours in-process, one core: ${answerUs.toFixed(1)} us per message 1 answered (${inProc.answeredPerSecond}/s), ${refuseUs.toFixed(1)} us per message 1 refused in busy mode (${inProc.refusedPerSecond}/s)\n\n`);
    const where = pin ? `responder pinned to cpu ${RESPONDER_CPU}, sender to cpu ${SENDER_CPU}` : 'not pinned';
    process.stdout.write(`${table(rows)}\n\n${where}; ${JSON.stringify(machine)}\n`);
  }
  return 0;
}

process.exitCode = await main();
