// `ike bench gateway` runs what it says: MM + QM setups over UDP on loopback against a responder Gateway in a
// child process, real DH, and a ceiling measured in the same run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runGatewayBench, formatGatewayBench } from '../../bench/gateway-handshakes.js';

test('gateway bench: setups over loopback with a responder in a child process, PFS counts two DH exchanges', { timeout: 60_000 }, async () => {
  const r = await runGatewayBench({ durationMs: 700, warmup: 3, concurrency: 4, pfs: true, esp: 'aes128gcm16' });
  assert.ok(r.setups > 0, `setups ${r.setups}`);
  assert.equal(r.failed, 0, JSON.stringify(r.failures));
  assert.equal(r.dhPerSetup, 2);
  // both sides did work: the responder's CPU comes from the child process over the measured window
  assert.ok(r.initiatorCpuMsPerSetup > 0 && r.responderCpuMsPerSetup > 0, JSON.stringify(r));
  assert.ok(r.ceilingPerSec > 0 && Math.abs(r.ratioToCeiling - r.setupsPerSec / r.ceilingPerSec) < 1e-9);
  assert.ok(r.p99Ms >= r.p50Ms && r.p50Ms > 0);
  assert.match(formatGatewayBench([r]), /\| aes128-sha1-modp2048 \| aes128gcm16 \+ PFS \| async pool \| (native|dgram) \| 4 \|/);
});

test('gateway bench: a proposal it cannot parse is a RangeError before any process starts', async () => {
  await assert.rejects(runGatewayBench({ ike: 'aes129-sha1-modp2048' }), RangeError);
});
