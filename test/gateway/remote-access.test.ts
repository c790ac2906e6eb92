// Remote access between two of our gateways over UDP on loopback: XAUTH against a user file, Mode-Config
// from a pool, then Quick Mode with the client's virtual address; and the failure path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Gateway, parseConfig, type ChildUpEvent, type GatewayConfig, type GatewayErrorEvent, type Phase1DownEvent } from '../../ts/gateway/index.js';
import { userFileLine, type RemoteAccessEvent } from '../../ts/ike/index.js';
import { until } from './peers.js';

const base = 36000 + (process.pid % 1500) * 4;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-ra-'));

function config(listenPort: number, remotePort: number, over: Record<string, unknown>): GatewayConfig {
  const r = parseConfig(
    {
      listen: { address: '127.0.0.1', port: listenPort, nattPort: listenPort + 1 },
      connections: {
        ra: {
          remote: '127.0.0.1',
          remotePort,
          remoteNattPort: remotePort + 1,
          auth: { psk: 'group secret' },
          localId: `@gw${listenPort}`,
          remoteId: `@gw${remotePort}`,
          ike: ['aes128-sha256-modp2048'],
          esp: ['aes128-sha256'],
          retransmit: { tries: 2, timeout: '0.3s', factor: 1.5 },
          ...over,
        },
      },
    },
    { baseDir: dir, env: { RA_PASSWORD: 'correct pw' } },
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.config;
}

function watch(gw: Gateway) {
  const ra: RemoteAccessEvent[] = [];
  const childUp: ChildUpEvent[] = [];
  const errors: GatewayErrorEvent[] = [];
  const down: Phase1DownEvent[] = [];
  gw.on('remote-access', (e) => ra.push(e.event));
  gw.on('child-up', (e) => childUp.push(e));
  gw.on('error', (e) => errors.push(e));
  gw.on('phase1-down', (e) => down.push(e));
  return { ra, childUp, errors, down };
}

async function pair(port: number, passwordEnv: string | null) {
  writeFileSync(path.join(dir, 'users'), `${await userFileLine('alice', 'correct pw', { N: 1024, r: 8, p: 1 })}\n`);
  const server = new Gateway(
    config(port, port + 2, {
      xauth: { users: 'users', maxAttempts: 1 },
      modeConfig: { pool: '10.8.0.0/24', dns: ['10.1.0.53'], splitInclude: ['10.1.0.0/16'], banner: 'hello' },
      localTs: '10.1.0.0/16',
    }),
  );
  const client = new Gateway(
    config(port + 2, port, {
      xauth: passwordEnv === null ? { user: 'alice', password: 'wrong' } : { user: 'alice', passwordEnv },
      modeConfig: { client: 'pull' },
      remoteTs: '10.1.0.0/16',
      initiate: true,
    }),
  );
  return { server, client, s: watch(server), c: watch(client) };
}

test('gateway remote access: XAUTH from a user file, Mode-Config address, Quick Mode on the virtual IP', async () => {
  const { server, client, s, c } = await pair(base, 'RA_PASSWORD');
  await server.start();
  await client.start();
  try {
    await until(() => s.childUp.length === 1 && c.childUp.length === 1, 10_000);
    assert.deepEqual(s.ra.map((e) => e.type), ['xauthOk', 'modeCfg']);
    assert.deepEqual(c.ra.map((e) => e.type), ['xauthOk', 'modeCfg']);
    const cfg = c.ra.find((e) => e.type === 'modeCfg');
    assert.ok(cfg && cfg.type === 'modeCfg');
    assert.equal(cfg.config.address, '10.8.0.1');
    assert.deepEqual(cfg.config.dns, ['10.1.0.53']);
    assert.equal(cfg.config.banner, 'hello');
    assert.equal(c.childUp[0]!.localTs, '10.8.0.1');
    assert.equal(c.childUp[0]!.remoteTs, '10.1.0.0/16');
    assert.equal(s.childUp[0]!.remoteTs, '10.8.0.1');
    assert.deepEqual(s.errors, []);
    assert.deepEqual(c.errors, []);
  } finally {
    await client.stop();
    await server.stop();
  }
});

test('gateway remote access: a wrong password fails XAUTH, no child SA, the ISAKMP SA goes', async () => {
  const { server, client, s, c } = await pair(base + 40, null);
  await server.start();
  await client.start();
  try {
    await until(() => s.down.length >= 1 && c.errors.some((e) => /XAUTH/.test(e.message)), 10_000);
    assert.ok(s.errors.some((e) => e.kind === 'AUTHENTICATION_FAILED' && /wrong password for 'alice'/.test(e.message)));
    assert.deepEqual(s.childUp, []);
    assert.deepEqual(c.childUp, []);
    assert.ok(!s.ra.some((e) => e.type === 'modeCfg'));
  } finally {
    await client.stop();
    await server.stop();
  }
});

test('config: xauth / modeConfig sections, with errors naming the key', async () => {
  const { loadConfig } = await import('../../ts/gateway/config.js');
  const { fileURLToPath } = await import('node:url');
  const ex = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples');
  const env = { IKE_PSK_SITE_A: '0x' + 'ab'.repeat(32) };
  const srv = (await loadConfig(path.join(ex, 'remote-access-server.json'), env)).connections[0]!;
  assert.equal(srv.xauth?.role, 'server');
  assert.ok(srv.ike.every((p) => p.authMethod === 65001));
  assert.equal(srv.xauth?.role === 'server' && (await srv.xauth.users.verify('alice', 'change me too')), true);
  assert.deepEqual(srv.modeConfig, { role: 'server', pool: '10.8.0.0/24', dns: ['10.1.0.53'], nbns: ['10.1.0.137'], splitInclude: [{ address: '10.1.0.0', prefix: 16 }], banner: 'Authorised users only.', mode: 'pull' });
  const cli = (await loadConfig(path.join(ex, 'remote-access-client.json'), env)).connections[0]!;
  assert.ok(cli.xauth?.role === 'client' && cli.xauth.password === 'change me too');
  assert.ok(!JSON.stringify(cli).includes('change me too'), 'the password is redacted');
  assert.deepEqual(cli.modeConfig, { role: 'client', mode: 'pull' });

  const bad = parseConfig(
    {
      connections: {
        a: { remote: '%any', auth: { psk: 'x' }, xauth: { users: 'nope.txt' }, modeConfig: { pool: '10.8.0.1/24', dns: ['1.2.3'] } },
        b: { remote: '10.0.0.1', auth: { psk: 'x' }, xauth: { user: 'u' }, modeConfig: { client: 'pull', pool: '10.8.0.0/24' }, initiate: true },
        c: { remote: '10.0.0.2', auth: { psk: 'x' }, xauth: { users: 'users' }, initiate: true },
      },
    },
    { baseDir: dir, env: {} },
  );
  assert.ok(!bad.ok);
  const text = bad.errors.join('\n');
  assert.match(text, /connections\.a\.xauth\.users: cannot read .*nope\.txt \(ENOENT\)/);
  assert.match(text, /connections\.a\.modeConfig\.pool: '10\.8\.0\.1\/24' has host bits set/);
  assert.match(text, /connections\.a\.modeConfig\.dns\[0\]: '1\.2\.3' is not an IPv4 address/);
  assert.match(text, /connections\.b\.xauth: set exactly one of password, passwordEnv, passwordFile/);
  assert.match(text, /connections\.b\.modeConfig\.pool: is a server setting/);
  assert.match(text, /connections\.c\.initiate: an XAUTH server only responds/);
});
