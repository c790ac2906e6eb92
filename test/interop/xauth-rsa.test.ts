// XAUTH with RSA signatures (XAUTHInitRSA, 65005) against a real strongSwan 5.9: phase 1 authenticated by
// certificates on both sides, then XAUTH, both roles. strongSwan as the server (swanctl `remote` pubkey plus a
// `remote-xauth` round) with our gateway as the client, and our gateway as the server with strongSwan the client
// (`local-xauth`). A wrong password fails XAUTH with no SA kept.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway, type OurEvent } from './ours.js';
import { userFileLine } from '../../ts/ike/index.js';
import { makePki, type Issued } from '../ike/pki.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-interop-xauth-rsa-'));

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikx' });
});
after(async () => {
  await pair?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const raEvents = (ours: OurGateway, type: string): OurEvent[] => ours.events.filter((e) => e.event === 'remote-access' && e.type === type);
const q = (s: string) => `"${s}"`;

/** strongSwan with its certificate; its key goes into rsa/ beside its swanctl.conf, then the credentials are reloaded. */
async function startStrongSwan(ss: StrongSwanPeer, cert: Issued): Promise<void> {
  await ss.start();
  mkdirSync(path.join(ss.dir, 'rsa'), { recursive: true });
  copyFileSync(cert.legacyKeyFile, path.join(ss.dir, 'rsa', 'strongswan.pem'));
  const r = await ss.swanctl(['--load-creds', '--noprompt', '--file', path.join(ss.dir, 'swanctl.conf')]);
  assert.match(r.stdout, /loaded rsa key/i, r.stdout + r.stderr);
}

test('strongSwan interop: XAUTHInitRSA, strongSwan is the XAUTH server, our gateway the client', { skip, timeout: 60_000 }, async () => {
  const pki = makePki(path.join(dir, 'a'), 'rsa2048');
  const server = pki.issue('vpn.example');
  const client = pki.issue('client.example');
  const ss = new StrongSwanPeer(pair, 'b', {
    ike: 'aes128-sha256-modp2048',
    kernel: 'netlink',
    localId: q(server.subject),
    remoteId: q(client.subject),
    extraLocal: { auth: 'pubkey', certs: server.certFile },
    extraRemote: { auth: 'pubkey', cacerts: `${pki.rootFile},${pki.intermediateFile}` },
    authRounds: { 'remote-xauth': { auth: 'xauth' } },
    extraSecrets: { 'xauth-alice': { id: 'alice', secret: 'alice pw' } },
  });
  await startStrongSwan(ss, server);
  const ours = new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      office: {
        remote: pair.b.addr,
        auth: { cert: client.chainFile, key: client.keyFile, ca: [pki.rootFile] },
        ike: ['aes128-sha256-modp2048'],
        xauth: { user: 'alice', password: 'alice pw' },
        initiate: true,
        retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
      },
    },
  });
  try {
    await ours.start();
    const ok = await ours.waitFor((e) => (e.event === 'remote-access' && e.type === 'xauthOk') || e.event === 'error', 20_000);
    assert.equal(ok.event, 'remote-access', `${JSON.stringify(ok)}\n${ss.logTail(40)}`);
    assert.ok(await ss.waitForLog(/XAuth authentication of 'alice' successful/, 5000), ss.logTail(30));
    assert.ok(await ss.waitForLog(/authentication of 'C=CH, O=ikev1-engine tests, CN=client.example' with RSA_EMSA_PKCS1_NULL successful/, 1000), ss.logTail(30));
    const up = ours.events.find((e) => e.event === 'phase1-up');
    assert.ok(up, JSON.stringify(ours.events));
    assert.match(ss.log(), /XAUTH_INIT_RSA|XAuthInitRSA/);
  } finally {
    await ours.stop();
    await ss.stop(1000);
  }
});

async function ourServer(server: Issued, rootFile: string): Promise<OurGateway> {
  const ours = new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      'road-warriors': {
        remote: '%any',
        auth: { cert: server.chainFile, key: server.keyFile, ca: [rootFile] },
        ike: ['aes128-sha256-modp2048'],
        xauth: { users: 'users', maxAttempts: 1 },
        initiate: false,
        retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
      },
    },
  });
  writeFileSync(path.join(ours.dir, 'users'), `${await userFileLine('alice', 'alice pw', { N: 1024, r: 8, p: 1 })}\n`);
  return ours.start();
}

for (const password of ['alice pw', 'wrong']) {
  test(`strongSwan interop: XAUTHInitRSA, our gateway is the XAUTH server, strongSwan the client${password === 'wrong' ? ', wrong password: refused' : ''}`, { skip, timeout: 60_000 }, async () => {
    const pki = makePki(path.join(dir, `b-${password.length}`), 'rsa2048');
    const server = pki.issue('vpn.example');
    const client = pki.issue('client.example');
    const ours = await ourServer(server, pki.rootFile);
    const ss = new StrongSwanPeer(pair, 'b', {
      ike: 'aes128-sha256-modp2048',
      kernel: 'netlink',
      localId: q(client.subject),
      remoteId: q(server.subject),
      extraLocal: { auth: 'pubkey', certs: client.certFile },
      extraRemote: { auth: 'pubkey', cacerts: `${pki.rootFile},${pki.intermediateFile}` },
      authRounds: { 'local-xauth': { auth: 'xauth', xauth_id: 'alice' } },
      extraSecrets: { 'xauth-alice': { id: 'alice', secret: password } },
    });
    try {
      await startStrongSwan(ss, client);
      await ss.initiateIke(10);
      if (password === 'alice pw') {
        const ok = await ours.waitFor((e) => (e.event === 'remote-access' && e.type === 'xauthOk') || e.event === 'error', 15_000);
        assert.equal(ok.event, 'remote-access', `${JSON.stringify(ours.events)}\n${ss.logTail(40)}`);
        assert.equal(ok.user, 'alice');
        assert.ok(await ss.waitForLog(/authentication of 'C=CH, O=ikev1-engine tests, CN=vpn.example' with RSA_EMSA_PKCS1_NULL successful/, 2000), ss.logTail(30));
      } else {
        await ours.waitFor((e) => e.event === 'remote-access' && e.type === 'xauthFailed', 15_000).catch(() => ours.waitFor((e) => e.event === 'error', 1000));
        assert.equal(raEvents(ours, 'xauthOk').length, 0);
        assert.ok(await ss.waitForLog(/XAuth authentication of 'alice' \(myself\) failed|received XAuth status: FAIL|XAuth.*failed/i, 5000), ss.logTail(30));
      }
    } finally {
      await ours.stop();
      await ss.stop(1000);
    }
  });
}

// Hybrid (HybridInitRSA, 64221): only the gateway has a certificate; the client checks it, sends a plain
// HASH_I, and proves itself with XAUTH.
test('strongSwan interop: hybrid, strongSwan is the gateway (certificate + XAUTH server), our client has only the CA', { skip, timeout: 60_000 }, async () => {
  const pki = makePki(path.join(dir, 'h1'), 'rsa2048');
  const server = pki.issue('vpn.example');
  const ss = new StrongSwanPeer(pair, 'b', {
    ike: 'aes128-sha256-modp2048',
    kernel: 'netlink',
    localId: q(server.subject),
    extraLocal: { auth: 'pubkey', certs: server.certFile },
    extraRemote: { auth: 'xauth' },
    extraSecrets: { 'xauth-alice': { id: 'alice', secret: 'alice pw' } },
  });
  await startStrongSwan(ss, server);
  const ours = new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      office: {
        remote: pair.b.addr,
        // strongSwan sends only its own certificate here (with no `cacerts` it does not know the intermediate)
        auth: { ca: [pki.rootFile, pki.intermediateFile] },
        remoteId: server.subject,
        ike: ['aes128-sha256-modp2048'],
        xauth: { user: 'alice', password: 'alice pw' },
        initiate: true,
        retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
      },
    },
  });
  try {
    await ours.start();
    const ok = await ours.waitFor((e) => (e.event === 'remote-access' && e.type === 'xauthOk') || e.event === 'error', 20_000);
    assert.equal(ok.event, 'remote-access', `${JSON.stringify(ok)}\n${ss.logTail(40)}`);
    assert.match(ss.log(), /HYBRID_INIT_RSA|HybridInitRSA/);
    assert.ok(await ss.waitForLog(/XAuth authentication of 'alice' successful/, 5000), ss.logTail(30));
  } finally {
    await ours.stop();
    await ss.stop(1000);
  }
});

test('strongSwan interop: hybrid, our gateway has the certificate and the XAUTH users, strongSwan the client with only the CA', { skip, timeout: 60_000 }, async () => {
  const pki = makePki(path.join(dir, 'h2'), 'rsa2048');
  const server = pki.issue('vpn.example');
  const ours = new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      'road-warriors': {
        remote: '%any',
        auth: { cert: server.chainFile, key: server.keyFile, ca: [pki.rootFile] },
        remoteAuth: 'xauth',
        ike: ['aes128-sha256-modp2048'],
        xauth: { users: 'users', maxAttempts: 1 },
        initiate: false,
        retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
      },
    },
  });
  writeFileSync(path.join(ours.dir, 'users'), `${await userFileLine('alice', 'alice pw', { N: 1024, r: 8, p: 1 })}\n`);
  await ours.start();
  const ss = new StrongSwanPeer(pair, 'b', {
    ike: 'aes128-sha256-modp2048',
    kernel: 'netlink',
    remoteId: q(server.subject),
    extraLocal: { auth: 'xauth', xauth_id: 'alice' },
    extraRemote: { auth: 'pubkey', cacerts: `${pki.rootFile},${pki.intermediateFile}` },
    extraSecrets: { 'xauth-alice': { id: 'alice', secret: 'alice pw' } },
  });
  try {
    await ss.start();
    await ss.initiateIke(10);
    const ok = await ours.waitFor((e) => (e.event === 'remote-access' && e.type === 'xauthOk') || e.event === 'error', 15_000);
    assert.equal(ok.event, 'remote-access', `${JSON.stringify(ours.events)}\n${ss.logTail(40)}`);
    assert.ok(await ss.waitForLog(/authentication of 'C=CH, O=ikev1-engine tests, CN=vpn.example' with RSA_EMSA_PKCS1_NULL successful/, 2000), ss.logTail(30));
  } finally {
    await ours.stop();
    await ss.stop(1000);
  }
});
