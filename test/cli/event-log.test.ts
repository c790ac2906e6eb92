// The event lines of `ike gateway` (ts/cli/event-log.ts): time and level on every line, a level threshold, and
// quiet under load (the first lines of each kind, then one summary line) - in memory, then with a real
// `ike gateway` responder that `ike load` sets up 12 tunnels with over loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventLog, formatEvent } from '../../ts/cli/event-log.js';
import { peerJson } from '../gateway/peers.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
const T = new Date('2026-12-06T04:20:00.123Z');

test('event log: text lines start with time and level; JSON has both fields; undefined fields are left out', () => {
  assert.equal(formatEvent(T, 'info', 'phase1-up', { connection: 'a', remote: '10.0.0.1:500', none: undefined, reason: 'peer deleted it' }, false), '2026-12-06T04:20:00.123Z info phase1-up connection=a remote=10.0.0.1:500 reason="peer deleted it"');
  assert.deepEqual(JSON.parse(formatEvent(T, 'error', 'error', { kind: 'X' }, true)), { time: '2026-12-06T04:20:00.123Z', level: 'error', event: 'error', kind: 'X' });
});

test('event log: a level threshold, and past the burst per kind only a count, summed up when the window ends', () => {
  const lines: string[] = [];
  const log = new EventLog({ json: false, level: 'warn', burst: 3, windowMs: 60_000, write: (l) => lines.push(l), clock: () => T });
  for (let i = 0; i < 10; i++) log.log('info', 'phase1-up', { n: i });
  for (let i = 0; i < 5; i++) log.log('error', 'error', { n: i });
  log.log('warn', 'remote-access', { type: 'xauthFailed' });
  assert.equal(lines.length, 4, 'info is below warn; three errors, then only counted; one warning');
  log.flush();
  assert.equal(lines[4], '2026-12-06T04:20:00.123Z info summary window=60s error.notShown=2');
  log.log('error', 'error', {});
  assert.equal(lines.length, 6, 'a new window prints again');
  log.close();
  assert.equal(lines.length, 6, 'nothing suppressed: no summary');

  const json: string[] = [];
  const j = new EventLog({ json: true, burst: 1, windowMs: 60_000, write: (l) => json.push(l), clock: () => T });
  for (let i = 0; i < 4; i++) j.log('info', 'child-up', {});
  j.close();
  assert.deepEqual(JSON.parse(json[1]!), { time: T.toISOString(), level: 'info', event: 'summary', windowSeconds: 60, notShown: { 'child-up': 3 } });
});

test('ike gateway under load: --burst lines per kind, then a summary line; every line has time and level', { timeout: 60_000 }, async () => {
  const base = 41000 + (process.pid % 1000) * 4;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-event-log-'));
  try {
    writeFileSync(path.join(dir, 'responder.json'), JSON.stringify(peerJson(base, base + 2)));
    writeFileSync(path.join(dir, 'initiator.json'), JSON.stringify(peerJson(base + 2, base)));
    const gw = spawn(process.execPath, [IKE, 'gateway', '--config', path.join(dir, 'responder.json'), '--no-control', '--burst', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    gw.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((res) => gw.on('exit', (c) => res(c)));
    const end = Date.now() + 10_000;
    while (!out.includes(' listening ') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.ok(out.includes(' listening '), out);
    const load = spawnSync(process.execPath, [IKE, 'load', '--config', path.join(dir, 'initiator.json'), '--connection', 'peer', '--count', '12', '--concurrency', '4', '--json'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(load.status, 0, load.stderr);
    gw.kill('SIGINT');
    assert.equal(await exited, 0);
    const lines = out.trimEnd().split('\n');
    for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|error) [a-z0-9-]+( |$)/);
    const count = (event: string) => lines.filter((l) => l.split(' ')[2] === event).length;
    assert.equal(count('phase1-up'), 3);
    assert.equal(count('child-up'), 3);
    const summary = lines.find((l) => l.split(' ')[2] === 'summary');
    assert.ok(summary, out);
    assert.match(summary, /phase1-up\.notShown=9/);
    assert.match(summary, /child-up\.notShown=9/);
    assert.equal(lines[lines.length - 1]!.split(' ')[2], 'summary', 'the summary comes last, when the gateway stops');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
