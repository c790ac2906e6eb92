// Tunnel throughput and its CPU cost: iperf3 TCP between two network namespaces over
//   1. the bare veth (the ceiling),
//   2. our data plane (TUN + native workers, fixed keys), ESP in UDP 4500 with TUN offload, with each crypto
//      engine (OpenSSL EVP, intel-ipsec-mb) and with 1 and 2 workers per side; two child SAs with a TCP stream
//      each (one child's SAs are one worker's: only several children spread over the workers), 1 and 2
//      workers; then plain ESP (IP protocol 50) and ESP in UDP without TUN offload, on the default engine and
//      one worker,
//   3. strongSwan's user-space ESP (charon with kernel-libipsec, also TUN + ESP in UDP), if charon is installed,
// same cipher for both tunnels, same TUN MTU (1400), all in one run. CPU: the tunnel's own processes (both of our
// peers, or both charons: every thread, from /proc/PID/stat) and the whole machine (/proc/stat, so the kernel's
// share, softirq included, is counted; on a shared machine others' load is in it too), each per Gbit/s.
// Needs root; prints a markdown table.
//
//   node dist/bench/tunnel.js [--seconds 5] [--algorithm aes128gcm16] [--no-strongswan] [--json]
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { NetnsPair, StrongSwanPeer, charonAvailable, netnsAvailable } from '../test/interop/harness/index.js';
import { iperf, startTunnel, type IperfResult, type TunnelOptions } from '../test/gateway/dataplane-harness.js';
import { innerOf } from '../test/gateway/dataplane-peer.js';
import type { EspAlgorithm } from '../ts/esp/index.js';
import { benchArgs, command } from './args.js';

export interface TunnelRow extends IperfResult {
  path: string;
  /** The tunnel's processes (both sides), in cores (1 = one core busy the whole run); 0 for the bare veth. */
  tunnelCores: number;
  /** The whole machine, in cores. */
  machineCores: number;
}

const TICKS = 100; // USER_HZ: the unit of /proc/PID/stat and /proc/stat on Linux

/** utime + stime of these processes (every thread), in seconds; a process gone counts 0. */
function processSeconds(pids: readonly (number | undefined)[]): number {
  let ticks = 0;
  for (const pid of pids) {
    if (pid === undefined) continue;
    try {
      // the fields after the command name, which is in parentheses and may hold spaces
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited
    }
  }
  return ticks / TICKS;
}

/** Busy and total CPU seconds of the machine since boot (every core). */
function machineSeconds(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((x, y) => x + y, 0);
  const idle = f[3]! + f[4]!; // idle + iowait
  return { busy: (total - idle) / TICKS, total: total / TICKS };
}

/** One iperf3 run with the CPU the tunnel's processes and the machine spent meanwhile. */
async function measured(path: string, pids: readonly (number | undefined)[], run: () => Promise<IperfResult>): Promise<TunnelRow> {
  const p0 = processSeconds(pids);
  const m0 = machineSeconds();
  const t0 = performance.now();
  const r = await run();
  const wall = (performance.now() - t0) / 1000;
  const m1 = machineSeconds();
  return { path, ...r, tunnelCores: (processSeconds(pids) - p0) / wall, machineCores: (m1.busy - m0.busy) / wall };
}

/** Parallel iperf3 runs as one: throughput, bytes, retransmits and iperf3's CPU added up. */
function sum(rs: IperfResult[]): IperfResult {
  const add = (k: keyof IperfResult) => rs.reduce((x, r) => x + r[k], 0);
  return { gbps: add('gbps'), sentBytes: add('sentBytes'), bytes: add('bytes'), retransmits: add('retransmits'), packets: add('packets'), lostPercent: 0, cpuSender: add('cpuSender'), cpuReceiver: add('cpuReceiver') };
}

export async function runTunnelBench(opts: { seconds?: number; algorithm?: EspAlgorithm; strongswan?: boolean } = {}): Promise<TunnelRow[]> {
  const seconds = opts.seconds ?? 5;
  const algorithm = opts.algorithm ?? 'aes128gcm16';
  const rows: TunnelRow[] = [];
  const t = ['-t', String(seconds)];
  const pair = await NetnsPair.create({ prefix: 'tb' });
  try {
    rows.push(await measured('bare veth (no tunnel)', [], () => iperf(pair, pair.b.addr, undefined, t)));

    const variants: TunnelOptions[] = [
      ...(['evp', 'ipsec-mb'] as const).flatMap((engine) => [1, 2].map((workers) => ({ engine, workers, offload: true }))),
      ...[1, 2].map((workers) => ({ engine: 'ipsec-mb' as const, workers, offload: true, children: 2 })),
      { plain: true, offload: true },
      { offload: false },
    ];
    for (const v of variants) {
      const tunnel = await startTunnel(pair, algorithm, v);
      try {
        const engine = String(tunnel.ready[0]!.engine);
        const children = v.children ?? 1;
        const label = `ikev1-engine data plane, ${v.plain ? 'plain ESP' : 'ESP in UDP'}, ${algorithm}, ${engine}, ${v.workers ?? 1} worker(s)${children > 1 ? `, ${children} children x 1 stream` : ''}, TUN offload ${v.offload ? 'on' : 'off'}`;
        const streams = () => Promise.all(Array.from({ length: children }, (_, k) => iperf(pair, innerOf(pair.b.inner, k), innerOf(pair.a.inner, k), t, 5201 + k)));
        rows.push(await measured(label, [tunnel.a.pid, tunnel.b.pid], async () => sum(await streams())));
      } finally {
        await Promise.all([tunnel.a.close(), tunnel.b.close()]);
      }
    }

    if (opts.strongswan !== false && charonAvailable().ok) {
      const esp = algorithm;
      const peers = [new StrongSwanPeer(pair, 'a', { esp, kernel: 'libipsec', logLevel: 1 }), new StrongSwanPeer(pair, 'b', { esp, kernel: 'libipsec', logLevel: 1 })];
      try {
        await Promise.all(peers.map((p) => p.start()));
        const r = await peers[0]!.initiate(undefined, 15);
        if (!r.ok) throw new Error(`strongSwan initiate failed: ${r.output}`);
        rows.push(await measured(`strongSwan 5.9 kernel-libipsec, ${algorithm}`, peers.map((p) => p.pid), () => iperf(pair, pair.b.inner, pair.a.inner, t)));
      } finally {
        await Promise.all(peers.map((p) => p.stop()));
      }
    }
  } finally {
    await pair.destroy();
  }
  return rows;
}

export function tunnelTable(rows: TunnelRow[]): string {
  const ss = rows.find((r) => r.path.startsWith('strongSwan'));
  const lines = [
    '| path | Gbit/s | TCP retransmits | iperf3 sender / receiver CPU % | tunnel CPU (cores) | tunnel cores per Gbit/s | machine CPU (cores) | machine cores per Gbit/s | vs strongSwan |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const per = (cores: number, gbps: number) => (gbps > 0 ? (cores / gbps).toFixed(2) : '-');
  for (const r of rows) {
    const vs = ss ? `${(r.gbps / ss.gbps).toFixed(2)}x` : '-';
    lines.push(
      `| ${r.path} | ${r.gbps.toFixed(2)} | ${r.retransmits} | ${r.cpuSender.toFixed(0)} / ${r.cpuReceiver.toFixed(0)} | ${r.tunnelCores.toFixed(2)} | ${per(r.tunnelCores, r.gbps)} | ${r.machineCores.toFixed(2)} | ${per(r.machineCores, r.gbps)} | ${vs} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = benchArgs(
    command({
      name: 'node dist/bench/tunnel.js',
      summary: 'TCP through the tunnel (TUN data plane: each engine, 1 and 2 workers) between two namespaces, beside strongSwan and the bare veth, in Gbit/s and CPU per Gbit/s.',
      options: {
        seconds: { kind: 'duration', min: 1, help: 'each iperf run (default 5s)' },
        algorithm: { kind: 'string', value: 'ESP', help: 'ESP algorithm (default aes128gcm16)' },
        'no-strongswan': { kind: 'flag', help: 'leave strongSwan out' },
        json: { kind: 'flag', help: 'the rows as JSON' },
      },
    }),
  );
  const n = netnsAvailable();
  if (!n.ok) {
    console.error(`tunnel bench needs network namespaces: ${n.why}`);
    process.exitCode = 1;
    return;
  }
  const rows = await runTunnelBench({
    seconds: args.seconds ?? 5,
    algorithm: (args.algorithm ?? 'aes128gcm16') as EspAlgorithm,
    strongswan: !args['no-strongswan'],
  });
  console.log(args.json ? JSON.stringify(rows, null, 2) : tunnelTable(rows));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
