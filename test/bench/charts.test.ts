// The SVG charts of the benchmark reports (bench/svg.ts, bench/charts.ts): round ticks, one bar per value,
// text escaped, and the charts of real suite results (a soak run's samples, a latency histogram).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChart, lineChart, ticks } from '../../bench/svg.js';
import { latencyChart } from '../../bench/charts.js';
import { latencyHistogram } from '../../ts/load/load-tester.js';

test('ticks: about five round steps from 0 past the maximum', () => {
  assert.deepEqual(ticks(9.3), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(ticks(480), [0, 100, 200, 300, 400, 500]);
  assert.deepEqual(ticks(0.07), [0, 0.02, 0.04, 0.06, 0.08]);
  assert.deepEqual(ticks(0), [0, 1]);
});

test('a bar chart has one rect per value, skips nulls, and escapes its text', () => {
  const svg = barChart({ title: 'a < b & "c"', yLabel: 'Gbit/s', categories: ['64 B', '1400 B'], series: [{ name: 'ours', values: [1, 5] }, { name: 'raw', values: [2, null] }] });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 3, 'a bar (with its tooltip) per value');
  assert.ok(svg.includes('a &lt; b &amp; &quot;c&quot;'));
  assert.ok(!svg.includes('NaN'));
});

test('a line chart draws one path per series over the x range', () => {
  const svg = lineChart({ title: 't', xLabel: 'minutes', yLabel: 'MiB', series: [{ name: 'rss', points: [[0, 60], [0.5, 70]] }, { name: 'heap', points: [[0, 6], [0.5, 7]] }] });
  assert.equal((svg.match(/<path d="M/g) ?? []).length, 2);
});

test('the latency histogram counts each setup once, in its bucket; the chart shows the buckets', () => {
  const h = latencyHistogram([1, 4, 5, 6, 30, 99, 20000]);
  assert.deepEqual(h.filter((b) => b.count > 0).map((b) => [b.upToMs, b.count]), [[5, 3], [10, 1], [50, 1], [100, 1], [Infinity, 1]]);
  assert.equal(h.reduce((n, b) => n + b.count, 0), 7);
  const svg = latencyChart({ setups: 7, concurrency: 1, latencyHistogram: JSON.parse(JSON.stringify(h)) } as never)!;
  assert.ok(svg.includes('>more</text>'), 'the open bucket, null after JSON');
});
