// Tunnel throughput: iperf3 TCP between two network namespaces over
//   1. the bare veth (the ceiling),
//   2. our data plane (TUN + native worker thread, fixed keys), ESP in UDP 4500 and plain ESP (IP protocol 50),
//      each with and without TUN offload,
//   3. strongSwan's user-space ESP (charon with kernel-libipsec, also TUN + ESP in UDP), if charon is installed,
// same cipher for both tunnels, same TUN MTU (1400). Needs root; prints a markdown table.
//
//   node dist/bench/tunnel.js [--seconds 5] [--algorithm aes128gcm16] [--no-strongswan] [--json]
import { pathToFileURL } from 'node:url';
import { NetnsPair, StrongSwanPeer, charonAvailable, netnsAvailable } from '../test/interop/harness/index.js';
import { iperf, startTunnel, type IperfResult } from '../test/gateway/dataplane-harness.js';
import type { EspAlgorithm } from '../ts/esp/index.js';
import { benchArgs, command } from './args.js';

export interface TunnelRow extends IperfResult {
  path: string;
}

export async function runTunnelBench(opts: { seconds?: number; algorithm?: EspAlgorithm; strongswan?: boolean } = {}): Promise<TunnelRow[]> {
  const seconds = opts.seconds ?? 5;
  const algorithm = opts.algorithm ?? 'aes128gcm16';
  const rows: TunnelRow[] = [];
  const t = ['-t', String(seconds)];
  const pair = await NetnsPair.create({ prefix: 'tb' });
  try {
    rows.push({ path: 'bare veth (no tunnel)', ...(await iperf(pair, pair.b.addr, undefined, t)) });

    for (const [offload, plain] of [[true, false], [true, true], [false, false], [false, true]] as const) {
      const tunnel = await startTunnel(pair, algorithm, { offload, plain });
      try {
        const label = `ikev1-engine data plane, ${plain ? 'plain ESP' : 'ESP in UDP'}, ${algorithm}, TUN offload ${offload ? 'on' : 'off'}`;
        rows.push({ path: label, ...(await iperf(pair, pair.b.inner, pair.a.inner, t)) });
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
        rows.push({ path: `strongSwan 5.9 kernel-libipsec, ${algorithm}`, ...(await iperf(pair, pair.b.inner, pair.a.inner, t)) });
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
  const args = benchArgs(
    command({
      name: 'node dist/bench/tunnel.js',
      summary: 'TCP through the tunnel (TUN data plane) between two namespaces, beside strongSwan, in Gbit/s.',
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
