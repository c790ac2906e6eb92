// The soak run (bench/soak.ts) in CI size: 22 s with a child rekey every ~2.6 s and an ISAKMP rekey every
// ~9 s, numbered ESP both ways, through the real `ike soak` command. The 30-minute run is the same code
// with longer lifetimes (docs/SCALING.md). Also the loss bookkeeping on its own, so that a soak that
// reports zero losses is known to be able to report some.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SequenceTracker, slope, type SoakResult } from '../../bench/soak.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

test('sequence tracker: a gap is lost once the grace has passed, a second copy is a duplicate, a copy after the grace is late', () => {
  const t = new SequenceTracker(100, 4); // a ring of 16: the run below wraps it
  for (let k = 0; k < 40; k++) {
    const seq = t.send(k * 10);
    assert.equal(seq, k);
    if (k !== 7 && k !== 30) assert.equal(t.receive(seq), 'ok');
    if (k === 12) assert.equal(t.receive(12), 'duplicate');
    // settle as the soak does, on every tick: the ring never holds more than the grace's worth
    const lost = t.settle(k * 10);
    if (k === 17) assert.deepEqual(lost, [{ seq: 7, sentAt: 70 }]);
  }
  assert.equal(t.receive(7), 'late');
  assert.equal(t.receive(7), 'duplicate');
  assert.equal(t.receive(99), 'unknown');
  assert.deepEqual(t.settle(390, true), [{ seq: 30, sentAt: 300 }]);
  assert.deepEqual({ sent: t.sent, received: t.received, lost: t.lost, duplicated: t.duplicated, late: t.late }, { sent: 40, received: 38, lost: 2, duplicated: 2, late: 1 });
});

test('sequence tracker: a full ring settles its oldest packet early instead of forgetting it', () => {
  const t = new SequenceTracker(1e9, 3);
  for (let k = 0; k < 10; k++) t.send(0);
  // 0 and 1 were pushed out unreceived: lost, even though their grace had not passed
  assert.equal(t.lost, 2);
  assert.equal(t.receive(1), 'late');
  assert.equal(t.receive(9), 'ok');
});

test('least-squares slope', () => {
  assert.equal(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }]), 2);
  assert.equal(slope([{ x: 0, y: 4 }, { x: 1, y: 4 }]), 0);
  assert.equal(slope([{ x: 1, y: 4 }]), 0);
});

test('ike soak, 22 s: child and ISAKMP rekeys under traffic both ways lose no packet; SA tables and the heap stay bounded', { timeout: 90_000 }, () => {
  const r = spawnSync(
    process.execPath,
    [IKE, 'soak', '--seconds', '22', '--rate', '300', '--child-lifetime', '3', '--ike-lifetime', '10', '--sample', '1', '--max-heap-slope', '8192', '--max-rss-slope', '65536', '--json'],
    { encoding: 'utf8', timeout: 80_000 },
  );
  assert.ok(r.stdout.trim().length > 0, `no result; stderr:\n${r.stderr}`);
  const s = JSON.parse(r.stdout) as SoakResult;
  assert.equal(s.gcExposed, true, 'ike soak runs with --expose-gc');
  // 22 s / (0.9 x 3 s + a Quick Mode) and 22 s / (0.9 x 10 s + a Main Mode): what the soak itself expects
  assert.deepEqual([s.expectedChildRekeys, s.expectedIkeRekeys], [7, 2]);
  assert.ok(s.childRekeys >= 7, `child rekeys: ${s.childRekeys}`);
  assert.ok(s.ikeRekeys >= 2, `ISAKMP rekeys: ${s.ikeRekeys}`);
  assert.equal(s.sent, 2 * 300 * 22);
  assert.deepEqual(
    { lost: s.lost, duplicated: s.duplicated, late: s.late, sendFailures: s.sendFailures, corrupted: s.corrupted, errors: s.gatewayErrors },
    { lost: 0, duplicated: 0, late: 0, sendFailures: 0, corrupted: 0, errors: [] },
    JSON.stringify(s.losses.slice(0, 5)),
  );
  assert.equal(s.received, s.sent);
  // Old SAs live through their overlap, then go: per side at most two ISAKMP SAs and two child SAs.
  assert.ok(Math.max(...s.samples.map((x) => x.phase1Sas)) <= 4, `ISAKMP SAs: ${s.samples.map((x) => x.phase1Sas)}`);
  assert.ok(Math.max(...s.samples.map((x) => x.childSas)) <= 4, `child SAs: ${s.samples.map((x) => x.childSas)}`);
  assert.equal(s.samples[s.samples.length - 1]!.phase1Sas, 2);
  // Heap after a full collection, from a quarter of the run (JIT and first-use allocations done) to the end.
  // ~7 rekeys cannot show a leak of a few KiB per rekey (the 30-minute soak's slope does); this bound
  // catches a rekey that keeps whole SAs or per-packet objects alive.
  const from = s.samples[Math.floor(s.samples.length / 4)]!.heapUsed;
  const to = s.samples[s.samples.length - 1]!.heapUsed;
  assert.ok(to - from < 2 * 1048576, `heap after gc ${from} -> ${to} bytes`);
  assert.equal(s.verdict, 'pass', s.reasons.join('; '));
  assert.equal(r.status, 0, 'exit code of a passing soak');
});

test('ike soak: a usage error exits with code 2 before running anything', () => {
  const r = spawnSync(process.execPath, [IKE, 'soak', '--rate', 'fast'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^ike soak: --rate must be a number, not 'fast'/);
});
