// Message 1 admission on its own: per-source and total limits, eviction of unproven exchanges only, busy
// mode preferring known sources, the Aggressive Mode rate under busy mode, and its cost per message 1.
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { Admission } from '../../ts/gateway/admission.js';
import { newEntry, SaTable, type IsakmpEntry } from '../../ts/gateway/sa-table.js';
import type { IsakmpSa, IsakmpSaContext, Phase1 } from '../../ts/ike/index.js';
import { ExchangeType } from '../../ts/isakmp/index.js';

let next = 0;
function entry(address: string): IsakmpEntry {
  const cookieI = Buffer.alloc(8);
  cookieI.writeUInt32BE(++next, 4);
  return newEntry({ cookieI } as unknown as Phase1, {} as IsakmpSaContext, { children: [] }, 'c', { address, port: 500 }, false, false);
}

const MM = ExchangeType.IDENTITY_PROTECTION;
const AM = ExchangeType.AGGRESSIVE;

/** An ISAKMP header of a message 1 of that exchange type, with a fresh initiator cookie (or the one given). */
function header(type: number, cookie: Buffer = randomBytes(8)): Buffer {
  const h = Buffer.alloc(28);
  cookie.copy(h, 0);
  h[18] = type;
  return h;
}

/** Admits a message 1 as the phase 1 driver does: evicts, adds the exchange, settles. */
function offer(a: Admission, t: SaTable, address: string, now = 0, type: number = MM, cookie?: Buffer): IsakmpEntry | string {
  const v = a.admit(address, header(type, cookie), now);
  if (!v.admit) return v.reason;
  if (v.evict) t.remove(v.evict);
  const e = entry(address);
  t.add(e, true);
  a.settled(address);
  return e;
}

test('admission: per-source limit refuses (never evicts the same source\'s exchange); a full table drops the oldest unproven', () => {
  const t = new SaTable();
  const a = new Admission(t, { maxHalfOpen: 4, maxHalfOpenPerPeer: 2, busyThreshold: 100 });
  const a1 = offer(a, t, '192.0.2.1') as IsakmpEntry;
  offer(a, t, '192.0.2.1');
  assert.equal(offer(a, t, '192.0.2.1'), 'perPeer');
  const b1 = offer(a, t, '192.0.2.2') as IsakmpEntry;
  t.proven(b1);
  offer(a, t, '192.0.2.3');
  assert.equal(t.halfOpenCount, 4);
  offer(a, t, '192.0.2.4');
  assert.equal(t.halfOpenCount, 4, 'the total stays at its cap');
  assert.equal(t.get(a1.key), undefined, 'the oldest unproven went');
  assert.equal(t.get(b1.key), b1, 'a proven exchange stays');
  assert.equal(a.stats().evicted, 1);
  assert.equal(a.stats().refused.perPeer, 1);
});

test('admission: exchanges still being made (an Aggressive Mode DH) count against the limits', () => {
  const t = new SaTable();
  const a = new Admission(t, { maxHalfOpen: 3, maxHalfOpenPerPeer: 2, busyThreshold: 100 });
  assert.equal(a.admit('192.0.2.1', header(MM), 0).admit, true);
  assert.equal(a.admit('192.0.2.1', header(MM), 0).admit, true);
  assert.deepEqual(a.admit('192.0.2.1', header(MM), 0), { admit: false, reason: 'perPeer' });
  assert.equal(a.admit('192.0.2.2', header(MM), 0).admit, true);
  assert.deepEqual(a.admit('192.0.2.3', header(MM), 0), { admit: false, reason: 'full' }, 'nothing unproven to drop yet');
  a.settled('192.0.2.1');
  assert.equal(a.admit('192.0.2.1', header(MM), 0).admit, true);
});

test('admission: busy mode limits unknown sources (and their Aggressive Mode rate); known sources keep the normal limits', () => {
  const t = new SaTable();
  const a = new Admission(t, { maxHalfOpen: 1000, maxHalfOpenPerPeer: 50, busyThreshold: 10, busyHalfOpenPerPeer: 1, busyAggressivePerSecond: 2, recentSeconds: 60 });
  for (let k = 0; k < 10; k++) offer(a, t, `198.51.100.${k}`);
  assert.equal(a.busy, false);
  // a peer whose SA came up a while ago (and is gone)
  a.established('192.0.2.7', 0);
  assert.equal(offer(a, t, '198.51.100.0', 1000), 'busyPerPeer');
  assert.equal(a.busy, true);
  assert.equal(a.stats().busyEntered, 1);
  assert.ok(typeof offer(a, t, '203.0.113.1', 1000) !== 'string', 'a new source gets one exchange');
  assert.equal(offer(a, t, '203.0.113.1', 1000), 'busyPerPeer');
  for (let k = 0; k < 5; k++) assert.ok(typeof offer(a, t, '192.0.2.7', 1000) !== 'string', 'a recent source is not limited by busy mode');
  assert.ok(typeof offer(a, t, '203.0.113.2', 1000, AM) !== 'string');
  assert.ok(typeof offer(a, t, '203.0.113.3', 1000, AM) !== 'string');
  assert.equal(offer(a, t, '203.0.113.4', 1000, AM), 'busyAggressive', 'two Aggressive Mode DHs a second for unknown sources');
  assert.ok(typeof offer(a, t, '203.0.113.4', 1600, AM) !== 'string', 'the rate refills');
  assert.ok(typeof offer(a, t, '192.0.2.7', 1600, AM) !== 'string', 'a known source is not rate limited');
  assert.equal(offer(a, t, '203.0.113.5', 1000 + 61_000 * 0, AM), 'busyAggressive');
  a.established('192.0.2.8', 0);
  assert.equal(a.known('192.0.2.8', 59_000), true);
  assert.equal(a.known('192.0.2.8', 61_000), false, 'recent means recentSeconds');
  const up = entry('192.0.2.9');
  t.add(up);
  up.sa = { establishedAt: 0, expiresAt: 1e9 } as IsakmpSa;
  t.established(up);
  assert.equal(a.known('192.0.2.9', 1e12), true, 'an established SA makes its source known');
});

test('admission: busy, fresh message 1s from unknown sources share a rate; the repeat of a refused one has its own', () => {
  const t = new SaTable();
  const a = new Admission(t, { maxHalfOpen: 100_000, maxHalfOpenPerPeer: 50, busyThreshold: 0, busyHalfOpenPerPeer: 5, busyNewPerSecond: 10 });
  let admitted = 0;
  for (let k = 0; k < 100; k++) if (typeof offer(a, t, `198.51.100.${k}`, 1000) !== 'string') admitted++;
  assert.equal(admitted, 10, 'a flood of 100 fresh message 1s in one instant: the rate (10) is admitted');
  assert.equal(a.stats().refused.busyRate, 90);
  // a genuine initiator, refused once, repeats its message 1 (same cookie) while the flood goes on
  const cookie = randomBytes(8);
  assert.equal(offer(a, t, '203.0.113.9', 1000, MM, cookie), 'busyRate');
  for (let k = 0; k < 100; k++) offer(a, t, `198.51.101.${k}`, 1100);
  assert.ok(typeof offer(a, t, '203.0.113.9', 1100, MM, cookie) !== 'string', 'its repeat gets in: the flood used up only the fresh rate');
  assert.equal(a.stats().repeatsAdmitted, 1);
  assert.equal(offer(a, t, '203.0.113.9', 1100, MM, randomBytes(8)), 'busyRate', 'a new cookie is a fresh message 1 again');
  assert.ok(typeof offer(a, t, '192.0.2.7', 1100) === 'string', 'unknown');
  a.established('192.0.2.7', 1100);
  assert.ok(typeof offer(a, t, '192.0.2.7', 1100) !== 'string', 'a known source is not rate limited');
});

test('admission: busy, the rate of new exchanges is cut while the event loop is saturated and grows back after', () => {
  const t = new SaTable();
  let utilisation = 1;
  const a = new Admission(t, { maxHalfOpen: 1_000_000, maxHalfOpenPerPeer: 1_000_000, busyThreshold: 0, busyHalfOpenPerPeer: 1_000_000, busyNewPerSecond: 1000 }, () => utilisation);
  let now = 1000;
  const step = () => {
    now += 250;
    a.admit('198.51.100.1', header(MM), now);
  };
  step(); // the first reading covers the time before
  for (let k = 0; k < 10; k++) step();
  const cut = a.stats().newPerSecond;
  assert.ok(cut < 100, `saturated: cut to ${cut}/s`);
  assert.ok(cut >= 20, 'never below the floor');
  utilisation = 0.3;
  for (let k = 0; k < 40; k++) step();
  assert.equal(a.stats().newPerSecond, 1000, 'relaxed: back to busyNewPerSecond');
});

test('admission: a decision costs O(1) whatever the size of the half-open table', () => {
  const time = (n: number): number => {
    const t = new SaTable();
    const a = new Admission(t, { maxHalfOpen: n, maxHalfOpenPerPeer: n, busyThreshold: 2 * n });
    for (let k = 0; k < n; k++) offer(a, t, `10.0.${k >> 8}.${k & 255}`);
    const t0 = performance.now();
    for (let k = 0; k < 20_000; k++) offer(a, t, `10.1.${(k >> 8) & 255}.${k & 255}`);
    return performance.now() - t0;
  };
  // best of three: a GC pause in a 50k-entry heap is not the cost of a decision
  const best = (n: number) => Math.min(time(n), time(n), time(n));
  const small = best(1000);
  const large = best(50_000);
  assert.ok(large < small * 8, `20k admissions: ${small.toFixed(1)} ms at 1k half-open, ${large.toFixed(1)} ms at 50k (a scan would be ~50x)`);
});
