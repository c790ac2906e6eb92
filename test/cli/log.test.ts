// The event log of `ike gateway` (ts/cli/log.ts): time on every line, levels, and under load the SA events
// beyond the burst of a window told in one summary line; --json and debug print every event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog, type EventLogOptions } from '../../ts/cli/log.js';

function logWith(o: Partial<EventLogOptions>) {
  const lines: string[] = [];
  let t = Date.parse('2026-12-06T04:00:00Z');
  const log = new EventLog({ json: false, level: 'info', burst: 3, windowMs: 10_000, write: (l) => lines.push(l), now: () => new Date(t), ...o });
  return { log, lines, advance: (ms: number) => (t += ms) };
}

test('text lines start with the time and carry key=value pairs', () => {
  const { log, lines } = logWith({});
  log.event('phase1-up', { connection: 'a', remote: '10.0.0.1:500', natLocal: false, gone: undefined });
  assert.deepEqual(lines, ['2026-12-06T04:00:00.000Z phase1-up connection=a remote=10.0.0.1:500 natLocal=false']);
});

test('beyond the burst, SA events are counted and summarised once per window; errors always print', () => {
  const { log, lines, advance } = logWith({});
  for (let i = 0; i < 10; i++) log.event(i % 2 ? 'child-up' : 'phase1-up', { n: i });
  log.event('error', { kind: 'TIMEOUT' });
  assert.equal(lines.length, 4, 'three SA events and the error');
  advance(10_000);
  log.event('phase1-up', { n: 10 });
  assert.match(lines[4]!, /summary seconds=10 notPrinted=7 child-up=4 phase1-up=3 hint=/);
  assert.match(lines[5]!, /phase1-up n=10$/, 'a new window prints again');
  log.flush();
  assert.equal(lines.length, 6, 'nothing held, no summary');
});

test('levels filter; debug and --json print every SA event', () => {
  const quiet = logWith({ level: 'error' });
  quiet.log.event('phase1-up', {});
  quiet.log.event('listening', {});
  quiet.log.event('error', { kind: 'X' });
  assert.equal(quiet.lines.length, 1);
  for (const o of [{ level: 'debug' as const }, { json: true }]) {
    const all = logWith(o);
    for (let i = 0; i < 10; i++) all.log.event('child-up', { n: i });
    all.log.flush();
    assert.equal(all.lines.length, 10);
  }
  const json = logWith({ json: true });
  json.log.event('child-up', { spiIn: 'aa' });
  assert.deepEqual(JSON.parse(json.lines[0]!), { event: 'child-up', time: '2026-12-06T04:00:00.000Z', spiIn: 'aa' });
});
