// The SA table's lifecycle and limits, and the one scheduler, on their own (the races they prevent are in
// races.test.ts, through the whole gateway).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newEntry, SaTable, type IsakmpEntry } from '../../ts/gateway/sa-table.js';
import { Scheduler } from '../../ts/gateway/scheduler.js';
import type { IsakmpSa, IsakmpSaContext, Phase1 } from '../../ts/ike/index.js';

let next = 0;
/** An entry as the phase 1 driver makes one; only the cookie of the exchange matters to the table. */
function entry(address: string, connection = 'c'): IsakmpEntry {
  const cookieI = Buffer.alloc(8);
  cookieI.writeUInt32BE(++next, 4);
  const phase1 = { cookieI } as unknown as Phase1;
  return newEntry(phase1, {} as IsakmpSaContext, { children: [] }, connection, { address, port: 500 }, false, false);
}

function establish(t: SaTable, e: IsakmpEntry, establishedAt: number): void {
  e.sa = { establishedAt, expiresAt: establishedAt + 3_600_000 } as IsakmpSa;
  t.established(e);
}

test('SA table: half-open -> established -> closed; alive() only while in the table and not closing', () => {
  const t = new SaTable();
  const e = entry('192.0.2.1');
  assert.equal(e.state, 'half-open');
  assert.equal(t.alive(e), false, 'not yet added');
  assert.equal(t.add(e), true);
  assert.equal(t.alive(e), true);
  assert.deepEqual(t.counts(), { halfOpen: 1, phase1: 0, children: 0 });
  establish(t, e, 1);
  assert.equal(e.state, 'established');
  assert.deepEqual(t.counts(), { halfOpen: 0, phase1: 1, children: 0 });
  e.state = 'closing';
  assert.equal(t.alive(e), false, 'a closing SA takes no continuation');
  t.remove(e);
  assert.equal(e.state, 'closed');
  assert.equal(t.get(e.key), undefined);
  assert.deepEqual(t.counts(), { halfOpen: 0, phase1: 0, children: 0 });
});

test('SA table: a second exchange with a cookie already taken is refused; the first stays', () => {
  const t = new SaTable();
  const a = entry('192.0.2.1');
  const b = { ...a };
  assert.equal(t.add(a), true);
  assert.equal(t.add(b), false);
  assert.equal(t.get(a.key), a);
  assert.equal(t.alive(b), false);
});

test('SA table: half-open and established counts per source, O(1); the oldest unproven exchange is the one to drop', () => {
  const t = new SaTable();
  const ours = entry('192.0.2.1');
  const a1 = entry('192.0.2.1');
  const b1 = entry('192.0.2.2');
  const a2 = entry('192.0.2.1');
  t.add(ours); // one we started: never dropped for room
  for (const e of [a1, b1, a2]) t.add(e, true);
  assert.equal(t.halfOpenFrom('192.0.2.1'), 3);
  assert.equal(t.halfOpenFrom('192.0.2.2'), 1);
  assert.equal(t.halfOpenCount, 4);
  assert.equal(t.oldestUnproven(), a1);
  t.proven(a1); // its peer sent message 3
  assert.equal(t.oldestUnproven(), b1);
  establish(t, a1, 1);
  assert.equal(t.halfOpenFrom('192.0.2.1'), 2);
  assert.equal(t.upFrom('192.0.2.1'), 1);
  a1.state = 'closing'; // a teardown marks it before it goes
  t.remove(a1);
  t.remove(a1);
  assert.equal(t.upFrom('192.0.2.1'), 0, 'counted down once, whatever its state when removed');
  t.remove(b1);
  assert.equal(t.halfOpenFrom('192.0.2.2'), 0);
  assert.equal(t.oldestUnproven(), a2);
  t.remove(a2);
  assert.equal(t.oldestUnproven(), undefined);
  assert.equal(t.halfOpenCount, 1);
});

test('SA table: deletedSince tells an exchange still being created that its connection was deleted', () => {
  const t = new SaTable();
  const mark = t.mark();
  t.noteDeleted('other');
  assert.equal(t.deletedSince('c', mark), false);
  t.noteDeleted('c');
  assert.equal(t.deletedSince('c', mark), true);
  assert.equal(t.deletedSince('c', t.mark()), false, 'a later mark does not see the earlier delete');
});

test('SA table: newest() is the latest established SA of the connection and peer; an independent SA is its own', () => {
  const t = new SaTable();
  const old = entry('192.0.2.1');
  const young = entry('192.0.2.1');
  const elsewhere = entry('192.0.2.9');
  const other = entry('192.0.2.1', 'd');
  for (const e of [old, young, elsewhere, other]) t.add(e);
  establish(t, old, 1);
  establish(t, young, 2);
  establish(t, elsewhere, 3);
  establish(t, other, 4);
  assert.equal(t.newest(old), young);
  assert.equal(t.newest(young), young);
  old.independent = true;
  assert.equal(t.newest(old), old);
});

test('scheduler: an entry waits for the first of its deadlines; a closed one and deferred work leave nothing behind', async () => {
  const fired: IsakmpEntry[] = [];
  const s = new Scheduler((e) => fired.push(e));
  const e = entry('192.0.2.1');
  const now = Date.now();
  e.phase1Due = now + 60_000;
  e.keepaliveAt = now + 5;
  e.raDue = now + 30_000;
  s.wake(e);
  assert.equal(e.wakeAt, now + 5, 'the earliest deadline');
  assert.equal(s.size, 1);
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(fired, [e]);
  e.keepaliveAt = null;
  s.wake(e);
  assert.equal(e.wakeAt, now + 30_000);
  e.state = 'closed';
  s.wake(e);
  assert.equal(s.size, 0, 'a closed entry is out of the heap');
  let ran = 0;
  void s.after(10, () => ran++);
  assert.equal(s.size, 1);
  await s.settle();
  assert.equal(ran, 1);
  assert.equal(s.size, 0, 'nothing left: no Node timer keeps the process alive');
});
