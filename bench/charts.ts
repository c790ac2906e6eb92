// The charts of the benchmark reports, from the suites' JSON results (bench/svg.ts draws them):
//   espChart        ESP Gbit/s by packet size, one bar per implementation (ours per engine, their raw loops, node:crypto)
//   handshakeChart  handshakes/s of each configuration beside its DH ceiling
//   latencyChart    setup latency histogram of the gateway benchmark (over UDP)
//   soakChart       heap and RSS over a soak run
import type { EspBenchRow } from './esp.js';
import type { GatewayBenchResult } from './gateway-handshakes.js';
import type { HandshakeBenchResult } from './handshakes.js';
import type { SoakResult } from './soak.js';
import { barChart, lineChart } from './svg.js';

/** One chart per algorithm and direction would be many: seal only, the algorithms side by side per size. */
export function espChart(rows: EspBenchRow[]): string {
  // seal, at the largest batch measured (batch 1 is the per-packet call, a different question)
  const batch = Math.max(...rows.map((r) => r.batch));
  const seal = rows.filter((r) => r.direction === 'seal' && r.batch === batch);
  const sizes = [...new Set(seal.map((r) => r.size))].sort((a, b) => a - b);
  const algorithms = [...new Set(seal.map((r) => r.algorithm))];
  const categories = algorithms.flatMap((a) => sizes.map((s) => `${a} ${s} B`));
  const pick = (f: (r: EspBenchRow) => number | undefined) =>
    algorithms.flatMap((a) => sizes.map((s) => {
      const r = seal.find((x) => x.algorithm === a && x.size === s);
      const v = r ? f(r) : undefined;
      return v === undefined || !Number.isFinite(v) ? null : v;
    }));
  const series = [
    { name: 'ours, intel-ipsec-mb engine', values: pick((r) => r.mbGbps ?? undefined) },
    { name: 'raw intel-ipsec-mb loop', values: pick((r) => r.rawMbGbps ?? undefined) },
    { name: 'ours, OpenSSL EVP engine', values: pick((r) => r.evpGbps) },
    { name: 'raw OpenSSL EVP loop', values: pick((r) => r.rawEvpGbps) },
    { name: 'node:crypto', values: pick((r) => r.nodeCryptoGbps) },
  ];
  return barChart({ title: `ESP seal, Gbit/s of payload by algorithm and packet size (batches of ${batch})`, yLabel: 'Gbit/s', categories, series });
}

export function handshakeChart(rows: Array<{ label: string; result: HandshakeBenchResult }>): string {
  return barChart({
    title: 'Handshakes/s (phase 1 + Quick Mode, in memory) beside the DH ceiling',
    yLabel: 'per second',
    categories: rows.map((r) => r.label),
    series: [
      { name: 'handshakes/s', values: rows.map((r) => r.result.handshakesPerSec) },
      { name: 'DH ceiling', values: rows.map((r) => (r.result.fakeDh ? null : r.result.ceilingPerSec)) },
    ],
  });
}

export function latencyChart(r: GatewayBenchResult): string | null {
  const h = r.latencyHistogram;
  if (!h || h.length === 0) return null;
  return barChart({
    title: `Setup latency over UDP (${r.setups} setups, concurrency ${r.concurrency})`,
    yLabel: 'setups',
    xLabel: 'latency up to (ms)',
    categories: h.map((b) => (Number.isFinite(b.upToMs) ? `${b.upToMs}` : 'more')),
    series: [{ name: 'setups', values: h.map((b) => b.count) }],
  });
}

export function soakChart(r: SoakResult): string {
  const mib = (b: number) => b / 1048576;
  const at = (f: (s: SoakResult['samples'][number]) => number) => r.samples.map((s) => [s.elapsedSeconds / 60, mib(f(s))] as [number, number]);
  return lineChart({
    title: `Soak: memory after full collections (${r.verdict})`,
    xLabel: 'minutes',
    yLabel: 'MiB',
    series: [
      { name: 'heap used', points: at((s) => s.heapUsed) },
      { name: 'external', points: at((s) => s.external) },
      { name: 'RSS', points: at((s) => s.rss) },
    ],
  });
}
