// The in-memory handshake benchmark does what it says: complete phase 1 + Quick Mode handshakes (both
// child SAs), the DH ceiling counts the second exchange of PFS, and worker threads add up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runHandshakeBench, formatHandshakeBench } from '../../bench/handshakes.js';

test('handshake bench: main mode + quick mode with PFS, aggressive mode, phase 1 only', async () => {
  const pfs = await runHandshakeBench({ durationMs: 150, pfs: true, esp: 'aes128gcm16' });
  assert.ok(pfs.handshakes > 0);
  assert.equal(pfs.quickMode, 'aes128gcm16-modp2048');
  assert.equal(pfs.dhPerHandshake, 2);
  assert.ok(pfs.ceilingPerSec > 0 && pfs.p99Ms >= pfs.p50Ms && pfs.cpuMsPerHandshake > 0);
  const am = await runHandshakeBench({ durationMs: 100, mode: 'aggressive', ike: 'aes128-sha256-ecp256' });
  assert.ok(am.handshakes > 0);
  assert.equal(am.dhPerHandshake, 1);
  const p1 = await runHandshakeBench({ durationMs: 100, phase1Only: true, fakeDh: true });
  assert.equal(p1.quickMode, 'phase1');
  assert.ok(Number.isNaN(p1.ceilingPerSec));
  assert.match(formatHandshakeBench([pfs, am, p1]), /\| aes128gcm16-modp2048 \|/);
});

test('handshake bench: two worker threads, rates summed', async () => {
  const r = await runHandshakeBench({ durationMs: 150, workers: 2, fakeDh: true });
  assert.equal(r.workers, 2);
  assert.ok(r.handshakes > 0 && r.handshakesPerSec > 0);
});

test('handshake bench: a proposal the responder cannot parse is an error, not a hang', async () => {
  await assert.rejects(runHandshakeBench({ durationMs: 50, esp: 'nonsense' }), /unknown keyword/);
});

test('memory bench, gateway mode: a responder Gateway in a child process keeps every SA; no Buffer pool slab pinned per SA', { timeout: 120_000 }, async () => {
  const { runGatewayMemoryBench } = await import('../../bench/memory.js');
  const r = await runGatewayMemoryBench(200, 20);
  assert.equal(r.done, 200, JSON.stringify(r));
  assert.equal(r.failed, 0);
  assert.deepEqual([r.settled.phase1, r.settled.children, r.settled.halfOpen], [200, 200, 0]);
  // a long-lived key sliced from Node's 8 KiB Buffer pool kept a whole slab per SA (5.6 KiB each at 100,000)
  assert.ok(r.settled.externalBytesPerPair < 1536, `external ${r.settled.externalBytesPerPair} bytes per SA pair`);
  assert.ok(r.settled.heapBytesPerPair > 0);
});
