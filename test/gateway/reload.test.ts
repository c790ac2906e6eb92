// Operating a running gateway (ts/gateway/reload.ts, the control verbs of control.ts): list-conns, initiate and
// terminate of one connection, and a reload that applies the difference of a new configuration: unchanged
// connections keep their SAs (same cookies), changed ones are set up again, removed ones deleted with Deletes
// the peer sees, new ones started; what needs a restart is reported and not applied. Real gateways on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ControlServer, controlRequest, Gateway, parseConfig, type GatewayConfig } from '../../ts/gateway/index.js';
import { diffConfig, fingerprint } from '../../ts/gateway/reload.js';
import { events, peerJson, until } from './peers.js';

const base = 36000 + (process.pid % 1500) * 6;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-reload-'));
const sock = path.join(dir, 'i.sock');

function parse(json: Record<string, unknown>): GatewayConfig {
  const r = parseConfig(json, { baseDir: '.', env: {} });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.config;
}

/** The initiator's config: `peer` towards r (initiate), and optionally `second` towards r2. */
function initiatorJson(over: { peer?: Record<string, unknown>; second?: Record<string, unknown> | null } = {}) {
  const j = peerJson(base, base + 2, { initiate: true, ...over.peer }) as { connections: Record<string, unknown> };
  if (over.second !== null && over.second !== undefined) {
    const second = (peerJson(base, base + 4, over.second) as { connections: { peer: unknown } }).connections.peer;
    j.connections.second = second;
  }
  return j as unknown as Record<string, unknown>;
}

let r: Gateway;
let r2: Gateway;
let i: Gateway;
let control: ControlServer;
let ev: ReturnType<typeof events>;
let evR: ReturnType<typeof events>;
let evR2: ReturnType<typeof events>;

before(async () => {
  r = new Gateway(parse(peerJson(base + 2, base)));
  r2 = new Gateway(parse(peerJson(base + 4, base)));
  i = new Gateway(parse(initiatorJson()));
  ev = events(i);
  evR = events(r);
  evR2 = events(r2);
  control = await ControlServer.listen(i, sock);
  await r.start();
  await r2.start();
  await i.start();
  await until(() => ev.childUp.length === 1, 10_000, 'the first child SA');
});

after(async () => {
  await i?.stop();
  await r?.stop();
  await r2?.stop();
  await control?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('list-conns: each configured connection with its state and SA counts', async () => {
  const res = await controlRequest(sock, { cmd: 'list-conns' });
  assert.deepEqual(
    res.connections.map((c) => [c.name, c.state, c.isakmpSas, c.childSas, c.initiate, c.remote]),
    [['peer', 'up', 1, 1, true, '127.0.0.1']],
  );
});

test('a reload with the same configuration keeps every SA (same cookies, no event)', () => {
  const cookie = i.phase1Sas()[0]!.cookieI.toString('hex');
  const downs = ev.down.length;
  const report = i.reload(parse(initiatorJson()));
  assert.deepEqual(report, { added: [], removed: [], changed: [], unchanged: ['peer'], restartNeeded: [], warnings: [] });
  assert.equal(i.phase1Sas()[0]!.cookieI.toString('hex'), cookie);
  assert.equal(ev.down.length, downs);
});

test('a new connection starts only when asked: initiate over the socket answers with its child SA', async () => {
  const report = i.reload(parse(initiatorJson({ second: {} })));
  assert.deepEqual([report.added, report.unchanged], [['second'], ['peer']]);
  let conns = (await controlRequest(sock, { cmd: 'list-conns' })).connections;
  assert.deepEqual(conns.map((c) => [c.name, c.state]), [['peer', 'up'], ['second', 'down']]);
  const res = await controlRequest(sock, { cmd: 'initiate', name: 'second', timeout: 10 }, 15_000);
  assert.equal(res.initiated.connection, 'second');
  assert.match(res.initiated.spiIn, /^[0-9a-f]{8}$/);
  await until(() => evR2.childUp.length === 1, 5_000, 'the second peer to have the child SA too');
  conns = (await controlRequest(sock, { cmd: 'list-conns' })).connections;
  assert.deepEqual(conns.map((c) => [c.name, c.state]), [['peer', 'up'], ['second', 'up']]);
});

test('terminate over the socket deletes that connection only, and the peer hears of it', async () => {
  const res = await controlRequest(sock, { cmd: 'terminate', name: 'second' });
  assert.equal(res.terminated, 'second');
  await until(() => evR2.down.length === 1, 5_000, 'the peer of second to see the Delete');
  const conns = (await controlRequest(sock, { cmd: 'list-conns' })).connections;
  assert.deepEqual(conns.map((c) => [c.name, c.state]), [['peer', 'up'], ['second', 'down']]);
  await assert.rejects(controlRequest(sock, { cmd: 'terminate', name: 'nope' }), /no connection named 'nope'/);
  await assert.rejects(controlRequest(sock, { cmd: 'initiate', name: 'nope' }), /no connection named 'nope'/);
  await assert.rejects(controlRequest(sock, { cmd: 'reload' }), /not started from a config file/);
});

test('a changed connection is deleted and set up again; a removed one is deleted', async () => {
  i.reload(parse(initiatorJson({ second: {} })));
  const before = i.phase1Sas().map((s) => s.cookieI.toString('hex'));
  const childUps = ev.childUp.length;
  const report = i.reload(parse(initiatorJson({ peer: { lifetime: { esp: '50m' } }, second: null })));
  assert.deepEqual([report.changed, report.removed, report.unchanged, report.added], [['peer'], ['second'], [], []]);
  assert.ok(ev.down.some((d) => d.connection === 'peer' && d.reason === 'changed in the configuration'));
  await until(() => evR.down.length >= 1, 5_000, 'the peer to see the Delete of the changed connection');
  await until(() => ev.childUp.length > childUps, 10_000, 'the changed connection to come up again');
  const after = i.phase1Sas().map((s) => s.cookieI.toString('hex'));
  assert.ok(!after.some((c) => before.includes(c)), 'a new ISAKMP SA');
  assert.equal(ev.childUp.at(-1)!.lifetimeSeconds, 3000);
  assert.deepEqual(i.connections().map((c) => c.name), ['peer']);
});

test('listen and dataplane changes are reported, not applied; the connections stay', () => {
  const cookie = i.phase1Sas()[0]!.cookieI.toString('hex');
  const json = initiatorJson({ peer: { lifetime: { esp: '50m' } } }) as { listen: { nattPort: number } };
  json.listen.nattPort = base + 5;
  const report = i.reload(parse(json as unknown as Record<string, unknown>));
  assert.deepEqual(report.restartNeeded, ['listen']);
  assert.deepEqual(report.unchanged, ['peer']);
  assert.equal(i.phase1Sas()[0]!.cookieI.toString('hex'), cookie);
  assert.equal(i.boundPorts.ike, base);
});

test('the fingerprint sees a new PSK though the config prints it redacted', () => {
  const a = parse(peerJson(base, base + 2, { auth: { psk: 'one secret' } }));
  const b = parse(peerJson(base, base + 2, { auth: { psk: 'one secreT' } }));
  assert.equal(JSON.stringify(a.connections[0]!.auth), JSON.stringify(b.connections[0]!.auth), 'both print as <redacted>');
  assert.notEqual(fingerprint(a.connections[0]), fingerprint(b.connections[0]));
  assert.deepEqual(diffConfig(a, b).report.changed, ['peer']);
  assert.deepEqual(diffConfig(a, parse(peerJson(base, base + 2, { auth: { psk: 'one secret' } }))).report.unchanged, ['peer']);
});
