// The load tester against one of our gateways on loopback (no root): many complete setups through one
// initiating Gateway, each on a fresh ISAKMP SA, deleted once up; nothing may stay behind on either side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig, type GatewayConfig, type GatewayErrorEvent } from '../../ts/gateway/index.js';
import { LoadTester, type LoadProgress } from '../../ts/load/index.js';

import { peerJson, until } from '../gateway/peers.js';

const base = 24000 + (process.pid % 2000) * 4;
const IKE_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

function raw(listenPort: number, remotePort: number, over: Record<string, unknown> = {}) {
  return peerJson(listenPort, remotePort, {
    auth: { psk: 'load test secret' },
    ike: ['aes128-sha1-modp2048'],
    esp: ['aes128-sha1'],
    retransmit: { tries: 3, timeout: '2s', factor: 1.5 },
    ...over,
  });
}

function config(listenPort: number, remotePort: number, over: Record<string, unknown> = {}): GatewayConfig {
  const r = parseConfig(raw(listenPort, remotePort, over), { baseDir: '.', env: {} });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.config;
}


test('200 setups at concurrency 16 against our responder: all done, both tables empty afterwards', async () => {
  const r = new Gateway(config(base, base + 2));
  const i = new Gateway(config(base + 2, base));
  const rErrors: GatewayErrorEvent[] = [];
  i.on('error', () => undefined); // failures reach the load tester; this keeps an unexpected one from throwing
  r.on('error', (e) => rErrors.push(e));
  let responderChildren = 0;
  r.on('child-up', () => responderChildren++);
  await r.start();
  await i.start();
  try {
    const progress: LoadProgress[] = [];
    const tester = new LoadTester(i, { connection: 'peer', count: 200, concurrency: 16, onProgress: (p) => progress.push(p), progressIntervalMs: 200 });
    const res = await tester.run();
    assert.equal(res.done, 200, JSON.stringify(res));
    assert.equal(res.failed, 0, JSON.stringify(res.failures));
    assert.deepEqual(res.failures, {});
    assert.ok(res.setupsPerSec > 0 && res.p50Ms > 0 && res.p99Ms >= res.p50Ms, JSON.stringify(res));
    // every setup was its own ISAKMP SA: the responder saw 200 children (the last QM3s may still be on their way)
    await until(() => responderChildren >= 200, 5000).catch(() => undefined);
    assert.equal(responderChildren, 200);
    assert.ok(progress.length > 0 && progress.every((p) => p.inFlight <= 16), 'concurrency bound held');
    // the last report is the final state, however short the run
    const last = progress[progress.length - 1]!;
    assert.deepEqual([last.done, last.failed, last.inFlight], [200, 0, 0]);
    // the deletes reach the responder: nothing leaks on either side
    await until(() => {
      const s = r.stats();
      return s.halfOpen + s.phase1 + s.children === 0;
    }, 5000).catch(() => assert.deepEqual(r.stats(), { halfOpen: 0, phase1: 0, children: 0 }));
    assert.deepEqual(i.stats(), { halfOpen: 0, phase1: 0, children: 0 });
    assert.deepEqual(rErrors, []);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('the rate limit spaces the starts; --keep keeps every SA up; a run shorter than the progress interval still reports its end', async () => {
  const r = new Gateway(config(base, base + 2));
  const i = new Gateway(config(base + 2, base));
  await r.start();
  await i.start();
  try {
    const t0 = performance.now();
    const progress: LoadProgress[] = [];
    const res = await new LoadTester(i, { connection: 'peer', count: 10, concurrency: 10, rate: 20, keep: true, onProgress: (p) => progress.push(p), progressIntervalMs: 60_000 }).run();
    const ms = performance.now() - t0;
    assert.equal(res.done, 10, JSON.stringify(res));
    // shorter than the progress interval: one report, the final state
    assert.deepEqual(progress.map((p) => [p.done, p.inFlight]), [[10, 0]]);
    // 10 starts at 20/s: the last starts 450 ms after the first
    assert.ok(ms >= 440, `took ${ms} ms`);
    assert.equal(i.stats().phase1, 10);
    assert.equal(i.stats().children, 10);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('a peer that does not answer: setups fail with TIMEOUT, a wrong PSK fails by kind', async () => {
  // nobody listens on base + 3 (a port of ours is base + 2 / + 3 as NAT-T; use a closed one)
  const i = new Gateway(config(base + 2, base + 1000, { retransmit: { tries: 5, timeout: '5s', factor: 1 } }));
  await i.start();
  try {
    const res = await new LoadTester(i, { connection: 'peer', count: 3, concurrency: 3, timeoutMs: 300 }).run();
    assert.equal(res.done, 0);
    assert.deepEqual(res.failures, { TIMEOUT: 3 });
    assert.equal(i.stats().halfOpen, 0, 'timed out setups are forgotten');
  } finally {
    await i.stop();
  }
  const r = new Gateway(config(base, base + 2, { auth: { psk: 'another secret' } }));
  const j = new Gateway(config(base + 2, base));
  r.on('error', () => undefined);
  await r.start();
  await j.start();
  try {
    const res = await new LoadTester(j, { connection: 'peer', count: 4, concurrency: 2, timeoutMs: 10_000 }).run();
    assert.equal(res.done, 0);
    assert.equal(res.failed, 4);
    // the responder finds the mismatch in message 5 and tells us (or we find it in message 6): no timeouts
    assert.equal(res.failures.TIMEOUT, undefined, JSON.stringify(res.failures));
    assert.ok(Object.keys(res.failures).every((k) => k === 'PEER_NOTIFY' || k === 'PSK_MISMATCH'), JSON.stringify(res.failures));
  } finally {
    await j.stop();
    await r.stop();
  }
});

test('bad options are RangeErrors', () => {
  const gw = new Gateway(config(base + 2, base));
  assert.throws(() => new LoadTester(gw, { connection: 'peer', count: 0 }), RangeError);
  assert.throws(() => new LoadTester(gw, { connection: 'peer', count: 5, concurrency: 0 }), RangeError);
  assert.throws(() => new LoadTester(gw, { connection: 'peer', count: 5, rate: -1 }), RangeError);
  assert.throws(() => new LoadTester(gw, { connection: 'nope', count: 5 }), RangeError);
});

test('ike load: JSON summary on stdout, progress on stderr, exit codes', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-load-'));
  const file = path.join(dir, 'load.json');
  writeFileSync(file, JSON.stringify(raw(base + 2, base)));
  const r = new Gateway(config(base, base + 2));
  r.on('error', () => undefined);
  await r.start();
  try {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [IKE_BIN, 'load', '--config', file, '--connection', 'peer', '--count', '30', '--concurrency', '4', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    assert.equal(code, 0, err);
    const j = JSON.parse(out) as { count: number; done: number; failed: number; setupsPerSec: number; p50Ms: number; p99Ms: number; failures: object; seconds: number };
    assert.equal(j.count, 30);
    assert.equal(j.done, 30);
    assert.equal(j.failed, 0);
    assert.deepEqual(j.failures, {});
    assert.ok(j.setupsPerSec > 0 && j.seconds > 0);
    // 30 setups take well under the 1 s progress interval: the final line is still there
    assert.match(err, /done 30\/30 failed 0 in flight 0 /);
  } finally {
    await r.stop();
  }
  const bad = spawnSync(process.execPath, [IKE_BIN, 'load', '--config', file, '--connection', 'nope', '--count', '3'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no connection named 'nope'/);
  const bad2 = spawnSync(process.execPath, [IKE_BIN, 'load', '--config', file, '--connection', 'peer', '--count', 'x'], { encoding: 'utf8' });
  assert.equal(bad2.status, 2);
  assert.match(bad2.stderr, /--count must be a whole number, not 'x'/);
});
