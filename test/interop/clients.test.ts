// The client families of test/fixtures/clients/profiles.json (iOS / macOS, Android, vpnc), each replayed by a real
// strongSwan 5.9 with exactly that offer (mode, proposals, method, identity, Mode-Config pull) against our gateway
// running examples/remote-access-clients.json (with this test's certificates, key and user file). Each must land
// on the connection meant for it, pass XAUTH and get an address from that connection's pool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable, type ConfValue, type StrongSwanOptions } from './harness/index.js';
import { OurGateway } from './ours.js';
import { userFileLine } from '../../ts/ike/index.js';
import { makePki, type Pki } from '../ike/pki.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PSK = 'group-key-of-the-road-warriors';

interface Profile {
  name: string;
  client: string;
  mode: 'main' | 'aggressive';
  ike: string;
  esp: string;
  auth: 'psk-xauth' | 'rsa-xauth' | 'hybrid';
  id?: string;
  connection: string;
}
const profiles = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/clients/profiles.json'), 'utf8')) as { profiles: Profile[] }).profiles;

let pair: NetnsPair;
let pki: Pki;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-interop-clients-'));
before(async () => {
  if (skip) return;
  pair = await NetnsPair.create({ prefix: 'ikcl' });
  pki = makePki(path.join(dir, 'pki'), 'rsa2048');
});
after(async () => {
  await pair?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** examples/remote-access-clients.json as it ships, with this test's address, key, certificates and users. */
async function ourServer(): Promise<OurGateway> {
  const config = JSON.parse(readFileSync(path.join(root, 'examples/remote-access-clients.json'), 'utf8'));
  config.listen = { address: pair.a.addr, port: 500, nattPort: 4500 };
  const gw = pki.issue('vpn.example.com', { san: ['DNS:vpn.example.com'] });
  for (const c of Object.values(config.connections) as Record<string, any>[]) {
    if ('pskEnv' in c.auth) c.auth = { psk: PSK, ...(c.auth.allowAggressivePsk ? { allowAggressivePsk: true } : {}) };
    else c.auth = { cert: gw.chainFile, key: gw.keyFile, ca: [pki.rootFile] };
    c.xauth.users = 'users';
  }
  const ours = new OurGateway(pair, 'a', config);
  writeFileSync(path.join(ours.dir, 'users'), `${await userFileLine('alice', 'alice pw', { N: 1024, r: 8, p: 1 })}\n`);
  return ours.start();
}

/** The client's private key, for the certificate profiles. */
const clientKeys = new Map<StrongSwanPeer, string>();

function client(p: Profile): StrongSwanPeer {
  const cert = p.auth === 'rsa-xauth' ? pki.issue(`${p.name}.client`) : undefined;
  const xauthRound = { 'local-xauth': { auth: 'xauth', xauth_id: 'alice' } as Record<string, ConfValue> };
  const caRemote = { auth: 'pubkey', cacerts: `${pki.rootFile},${pki.intermediateFile}` };
  const byAuth: Record<Profile['auth'], StrongSwanOptions> = {
    'psk-xauth': { extraRemote: { auth: 'psk' }, authRounds: xauthRound, remoteId: '@vpn.example.com', ...(p.id ? { localId: p.id } : {}) },
    'rsa-xauth': { extraLocal: { auth: 'pubkey', certs: cert?.certFile ?? '' }, extraRemote: caRemote, authRounds: xauthRound, localId: `"${cert?.subject}"`, remoteId: '%any' },
    hybrid: { extraLocal: { auth: 'xauth', xauth_id: 'alice' }, extraRemote: caRemote, remoteId: '%any' },
  };
  const ss = new StrongSwanPeer(pair, 'b', {
    mode: p.mode,
    ike: p.ike,
    esp: p.esp,
    psk: PSK,
    kernel: 'netlink',
    retransmitTries: 2,
    retransmitTimeout: 1,
    localTs: 'dynamic',
    remoteTs: '10.1.0.0/16',
    extraConn: { vips: '0.0.0.0' },
    extraSecrets: { 'xauth-alice': { id: 'alice', secret: 'alice pw' } },
    ...byAuth[p.auth],
  });
  if (cert) clientKeys.set(ss, cert.legacyKeyFile);
  return ss;
}

async function startClient(ss: StrongSwanPeer): Promise<void> {
  await ss.start();
  const key = clientKeys.get(ss);
  if (key === undefined) return;
  mkdirSync(path.join(ss.dir, 'rsa'), { recursive: true });
  copyFileSync(key, path.join(ss.dir, 'rsa', 'client.pem'));
  const r = await ss.swanctl(['--load-creds', '--noprompt', '--file', path.join(ss.dir, 'swanctl.conf')]);
  assert.match(r.stdout, /loaded rsa key/i, r.stdout + r.stderr);
}

for (const p of profiles) {
  test(`client profile ${p.name} (${p.client}): strongSwan with its offer reaches connection '${p.connection}', XAUTH, an address from its pool`, { skip, timeout: 60_000 }, async () => {
    const ours = await ourServer();
    const ss = client(p);
    try {
      await startClient(ss);
      await ss.initiateIke(15);
      const up = await ours.waitFor((e) => e.event === 'phase1-up' || e.event === 'error', 15_000);
      assert.equal(up.event, 'phase1-up', `${JSON.stringify(ours.events)}\n${ss.logTail(40)}`);
      assert.equal(up.connection, p.connection);
      await ours.waitFor((e) => e.event === 'remote-access' && e.type === 'xauthOk', 10_000);
      const pool = JSON.parse(readFileSync(path.join(root, 'examples/remote-access-clients.json'), 'utf8')).connections[p.connection].modeConfig.pool as string;
      let vips: string[] = [];
      for (let i = 0; i < 30 && vips.length === 0; i++) {
        vips = (await ss.listSas()).flatMap((s) => (s.state === 'ESTABLISHED' ? ((s.raw['local-vips'] as string[] | undefined) ?? []) : []));
        if (vips.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(vips.length, 1, `strongSwan got no virtual IP:\n${ss.logTail(30)}`);
      assert.ok(vips[0]!.startsWith(pool.split('.').slice(0, 3).join('.') + '.'), `${vips[0]} not from ${pool}`);
    } finally {
      await ours.stop();
      await ss.stop(1000);
    }
  });
}

interface Peer {
  name: string;
  peer: string;
  ike: string;
  lifetime: number;
  esp: string;
  auth: 'rsa' | 'psk';
}
const peers = (JSON.parse(readFileSync(path.join(root, 'test/fixtures/clients/profiles.json'), 'utf8')) as { peers: Peer[] }).peers;

for (const p of peers) {
  test(`site-to-site peer ${p.name} (${p.peer}): we initiate Main Mode with its proposal and lifetime, strongSwan plays it`, { skip, timeout: 60_000 }, async () => {
    const ours = pki.issue(`${p.name}-ours`);
    const theirs = pki.issue(`${p.name}-peer`);
    const ss = new StrongSwanPeer(pair, 'b', {
      ike: p.ike,
      esp: p.esp,
      psk: PSK,
      kernel: 'netlink',
      rekeyTime: p.lifetime,
      ...(p.auth === 'rsa'
        ? { localId: `"${theirs.subject}"`, remoteId: `"${ours.subject}"`, extraLocal: { auth: 'pubkey', certs: theirs.certFile }, extraRemote: { auth: 'pubkey', cacerts: `${pki.rootFile},${pki.intermediateFile}` } }
        : {}),
    });
    if (p.auth === 'rsa') clientKeys.set(ss, theirs.legacyKeyFile);
    await startClient(ss);
    const gw = new OurGateway(pair, 'a', {
      listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
      connections: {
        s: {
          remote: pair.b.addr,
          auth: p.auth === 'rsa' ? { cert: ours.chainFile, key: ours.keyFile, ca: [pki.rootFile] } : { psk: PSK },
          ...(p.auth === 'psk' ? { localId: pair.a.addr, remoteId: pair.b.addr } : {}),
          ike: [p.ike],
          esp: [p.esp],
          lifetime: { ike: `${p.lifetime}s` },
          allowWeak: true,
          initiate: true,
          retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
        },
      },
    });
    try {
      await gw.start();
      const up = await gw.waitFor((e) => e.event === 'phase1-up' || e.event === 'error', 15_000);
      assert.equal(up.event, 'phase1-up', `${JSON.stringify(up)}\n${ss.logTail(30)}`);
      assert.equal(up.algorithms, p.ike);
      const sa = (await ss.listSas()).find((x) => x.cookieI === up.cookieI);
      assert.equal(sa?.state, 'ESTABLISHED', ss.logTail(30));
    } finally {
      await gw.stop();
      await ss.stop(1000);
    }
  });
}

test('iOS retry: Aggressive Mode with DH 14 refused by a gateway that takes group 2 only (NO_PROPOSAL_CHOSEN), the retry with group 2 gets in', { skip, timeout: 60_000 }, async () => {
  const config = JSON.parse(readFileSync(path.join(root, 'examples/remote-access-clients.json'), 'utf8'));
  const c = config.connections['ios-group-psk'];
  config.listen = { address: pair.a.addr, port: 500, nattPort: 4500 };
  config.connections = { 'ios-group-psk': { ...c, auth: { psk: PSK, allowAggressivePsk: true }, ike: ['aes256-sha256-modp1024'], allowWeak: true, xauth: { ...c.xauth, users: 'users' } } };
  const ours = new OurGateway(pair, 'a', config);
  writeFileSync(path.join(ours.dir, 'users'), `${await userFileLine('alice', 'alice pw', { N: 1024, r: 8, p: 1 })}\n`);
  await ours.start();
  const ios = (ike: string) => client({ name: 'ios-retry', client: 'iOS', mode: 'aggressive', ike, esp: 'aes256-sha256', auth: 'psk-xauth', id: 'keyid:ios-group', connection: 'ios-group-psk' });
  try {
    const first = ios('aes256-sha256-modp2048');
    await startClient(first);
    const r1 = await first.initiateIke(6);
    assert.equal(r1.ok, false);
    const refused = await ours.waitFor((e) => e.event === 'error', 10_000);
    assert.match(String(refused.message), /no matching phase 1 proposal .*peer offered \[aes256-sha256-modp2048\]/);
    assert.ok(await first.waitForLog(/received NO_PROPOSAL_CHOSEN error notify/, 5000), first.logTail(20));
    await first.stop(1000);
    const retry = ios('aes256-sha256-modp1024');
    await startClient(retry);
    await retry.initiateIke(10);
    const up = await ours.waitFor((e) => e.event === 'phase1-up', 10_000);
    assert.equal(up.algorithms, 'aes256-sha256-modp1024');
    await ours.waitFor((e) => e.event === 'remote-access' && e.type === 'xauthOk', 10_000);
    await retry.stop(1000);
  } finally {
    await ours.stop();
  }
});
