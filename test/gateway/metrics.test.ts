// The Prometheus endpoint (ts/gateway/metrics.ts) of two real gateways on loopback: setups, SA gauges, per
// child SA traffic, the setup-time histogram, failures by kind and downs by reason, scraped over HTTP as
// Prometheus would; no key bytes in the text; and `ike gateway` with "metrics" in its config serving it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, MetricsServer, parseConfig } from '../../ts/gateway/index.js';
import { reasonClass } from '../../ts/gateway/metrics.js';
import { events, peerJson, until } from './peers.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
const base = 43000 + (process.pid % 1000) * 6;
const gw = (json: Record<string, unknown>) => {
  const r = parseConfig(json, { baseDir: '.', env: {} });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return new Gateway(r.config);
};

let r: Gateway;
let i: Gateway;
let server: MetricsServer;
let url: string;

before(async () => {
  r = gw(peerJson(base + 2, base));
  i = gw(peerJson(base, base + 2, { initiate: true }));
  const ev = events(i);
  server = await MetricsServer.listen(r, { address: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${server.address.port}/metrics`;
  await r.start();
  await i.start();
  await until(() => ev.childUp.length === 1, 10_000, 'the child SA');
});

after(async () => {
  await i?.stop();
  await r?.stop();
  await server?.close();
});

/** The value of one series in exposition text, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('a scrape shows the setups, current SAs, child traffic and the setup time; never key bytes', async () => {
  i.sendEsp('peer', Buffer.from('45000014000000004001000001010101', 'hex'));
  await until(() => r.status().sas[0]?.children[0]?.in.packets === 1, 5_000, 'the ESP packet');
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  assert.equal(value(text, 'ike_phase1_setups_total{connection="peer",role="responder",mode="main"}'), 1);
  assert.equal(value(text, 'ike_child_setups_total{connection="peer",role="responder"}'), 1);
  assert.equal(value(text, 'ike_sas{state="established"}'), 1);
  assert.equal(value(text, 'ike_sas{state="child"}'), 1);
  assert.equal(value(text, 'ike_sas{state="half_open"}'), 0);
  const spiIn = r.status().sas[0]!.children[0]!.spiIn;
  assert.equal(value(text, `ike_child_sa_packets{connection="peer",spi="${spiIn}",direction="in"}`), 1);
  assert.equal(value(text, 'ike_phase1_setup_seconds_count{role="responder"}'), 1);
  assert.ok(value(text, 'ike_phase1_setup_seconds_sum{role="responder"}')! > 0);
  for (const sa of r.phase1Sas()) for (const k of [sa.skeyidD, sa.skeyidA, sa.skeyidE]) assert.ok(!text.includes(k.toString('hex')));
  assert.equal((await fetch(url.replace('/metrics', '/'))).status, 404);
});

test('a Delete from the peer counts as a down by reason; the child series go with the SA', async () => {
  i.delete('peer');
  await until(() => r.stats().phase1 === 0, 5_000, 'the responder to drop the SA');
  const text = await (await fetch(url)).text();
  assert.equal(value(text, 'ike_sa_down_total{sa="isakmp",reason="deleted_by_peer"}'), 1, text);
  assert.equal(value(text, 'ike_sas{state="established"}'), 0);
  assert.ok(!text.includes('ike_child_sa_packets{'), 'no series for an SA that is gone');
});

test('reasons map to a few classes', () => {
  assert.deepEqual(
    ['DPD: no answer from the peer', 'ISAKMP SA lifetime expired', 'replaced by a rekey', 'deleted by the peer', 'gateway stopped', 'changed in the configuration', 'whatever'].map(reasonClass),
    ['dpd', 'expired', 'replaced', 'deleted_by_peer', 'stopped', 'local', 'other'],
  );
});

test('ike gateway serves the endpoint of its config; a bad listen value is a config error', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-metrics-'));
  try {
    const file = path.join(dir, 'gw.json');
    writeFileSync(file, JSON.stringify({ ...peerJson(base + 4, base + 2), metrics: { listen: '127.0.0.1:0' } }), { mode: 0o600 });
    const child = spawn(process.execPath, [IKE, 'gateway', '--config', file, '--no-control'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    await until(() => /metrics url=\S+/.test(out) || child.exitCode !== null, 10_000, 'the metrics line');
    const at = /metrics url=(\S+)/.exec(out)![1]!;
    const text = await (await fetch(at)).text();
    assert.match(text, /^# HELP ike_sas /m);
    child.kill('SIGTERM');
    assert.equal(await new Promise((res) => child.once('exit', res)), 0);
    writeFileSync(file, JSON.stringify({ ...peerJson(base + 4, base + 2), metrics: { listen: 'localhost' } }), { mode: 0o600 });
    const bad = spawn(process.execPath, [IKE, 'gateway', '--config', file, '--no-control'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    bad.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    assert.equal(await new Promise((res) => bad.once('exit', res)), 2);
    assert.match(err, /metrics\.listen: must be ADDRESS:PORT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
