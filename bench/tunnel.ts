// Tunnel throughput: iperf3 TCP between two network namespaces over
//   1. the bare veth (the ceiling),
//   2. our data plane (TUN + native worker thread, ESP in UDP 4500, fixed keys),
//   3. strongSwan's user-space ESP (charon with kernel-libipsec, also TUN + ESP in UDP), if charon is installed,
// same cipher for both tunnels, same TUN MTU (1400). Needs root; prints a markdown table.
//
//   node dist/bench/tunnel.js [--seconds 5] [--algorithm aes128gcm16] [--no-strongswan] [--json]
import { pathToFileURL } from 'node:url';
import { NetnsPair, StrongSwanPeer, charonAvailable, netnsAvailable, sleep } from '../test/interop/harness/index.js';
import { startTunnel } from '../test/gateway/dataplane-harness.js';
import type { EspAlgorithm } from '../ts/esp/index.js';

export interface TunnelRow {
  path: string;
  gbps: number;
  retransmits: number;
  /** Sender CPU use reported by iperf3 (host total, percent). */
  cpuSender: number;
  cpuReceiver: number;
}

/** One iperf3 TCP run from a to b's `dst` (server bound there), `seconds` long. */
async function iperf(pair: NetnsPair, dst: string, src: string | undefined, seconds: number): Promise<Omit<TunnelRow, 'path'>> {
  const server = pair.spawn('b', 'iperf3', ['-s', '-1', '-B', dst, '-p', '5201']);
  try {
    await sleep(300); // the server binds
    const args = ['-c', dst, '-p', '5201', '-t', String(seconds), '-J'];
    if (src) args.push('-B', src);
    const r = await pair.run('a', 'iperf3', args, { timeoutMs: (seconds + 15) * 1000 });
    if (r.code !== 0) throw new Error(`iperf3 to ${dst} failed: ${r.stdout.slice(0, 400)}${r.stderr}`);
    const j = JSON.parse(r.stdout);
    return {
      gbps: j.end.sum_received.bits_per_second / 1e9,
      retransmits: j.end.sum_sent.retransmits ?? 0,
      cpuSender: j.end.cpu_utilization_percent?.host_total ?? 0,
      cpuReceiver: j.end.cpu_utilization_percent?.remote_total ?? 0,
    };
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

export async function runTunnelBench(opts: { seconds?: number; algorithm?: EspAlgorithm; strongswan?: boolean } = {}): Promise<TunnelRow[]> {
  const seconds = opts.seconds ?? 5;
  const algorithm = opts.algorithm ?? 'aes128gcm16';
  const rows: TunnelRow[] = [];
  const pair = await NetnsPair.create({ prefix: 'tb' });
  try {
    rows.push({ path: 'bare veth (no tunnel)', ...(await iperf(pair, pair.b.addr, undefined, seconds)) });

    const t = await startTunnel(pair, algorithm);
    try {
      rows.push({ path: `ikev1-engine data plane, ${algorithm}`, ...(await iperf(pair, pair.b.inner, pair.a.inner, seconds)) });
    } finally {
      await Promise.all([t.a.close(), t.b.close()]);
    }

    if (opts.strongswan !== false && charonAvailable().ok) {
      const esp = algorithm;
      const peers = [new StrongSwanPeer(pair, 'a', { esp, kernel: 'libipsec', logLevel: 1 }), new StrongSwanPeer(pair, 'b', { esp, kernel: 'libipsec', logLevel: 1 })];
      try {
        await Promise.all(peers.map((p) => p.start()));
        const r = await peers[0]!.initiate(undefined, 15);
        if (!r.ok) throw new Error(`strongSwan initiate failed: ${r.output}`);
        rows.push({ path: `strongSwan 5.9 kernel-libipsec, ${algorithm}`, ...(await iperf(pair, pair.b.inner, pair.a.inner, seconds)) });
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
    '| path | Gbit/s | TCP retransmits | sender CPU % | receiver CPU % | vs strongSwan |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const vs = ss ? `${(r.gbps / ss.gbps).toFixed(2)}x` : '-';
    lines.push(`| ${r.path} | ${r.gbps.toFixed(2)} | ${r.retransmits} | ${r.cpuSender.toFixed(0)} | ${r.cpuReceiver.toFixed(0)} | ${vs} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const val = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const n = netnsAvailable();
  if (!n.ok) {
    console.error(`tunnel bench needs network namespaces: ${n.why}`);
    process.exitCode = 1;
    return;
  }
  const rows = await runTunnelBench({
    seconds: Number(val('--seconds') ?? 5),
    algorithm: (val('--algorithm') ?? 'aes128gcm16') as EspAlgorithm,
    strongswan: !args.includes('--no-strongswan'),
  });
  console.log(args.includes('--json') ? JSON.stringify(rows, null, 2) : tunnelTable(rows));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
