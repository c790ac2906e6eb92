// Against Libreswan 4.10 (pluto), the second IKEv1 implementation of the interop suite, in network namespaces:
// Main and Aggressive Mode with PSK in both roles and several proposals, RSA signatures with a two-level chain
// and DN identities in both roles, IKE fragmentation both ways, Quick Mode with PFS, a wrong key, XAUTH + Mode-Config
// with Libreswan as the server, Quick Mode in both directions, Deletes. Our side runs as `ike gateway`.
// This machine's kernel has no ESP, so pluto stops where it installs a child SA into the kernel; it does that
// only after it accepted the Quick Mode message it got from us (QM1 as responder, QM2 as initiator), which
// is what the Quick Mode cases check. Traffic through ESP is the strongSwan suites' part.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makePki, type Issued, type KeyAlg, type Pki } from '../ike/pki.js';
import { Capture, LibreswanPeer, NetnsPair, classifyUdp, interopSkipReason, libreswanAvailable, netnsAvailable, parseHeader, readPcap } from './harness/index.js';
import { OurGateway } from './ours.js';
import { userFileLine } from '../../ts/ike/index.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? libreswanAvailable() : netns);
const PSK = 'libreswan-interop-secret';
/** pluto's kernel step failing for want of ESP: it had accepted the exchange's message before. */
const KERNEL_REFUSES_ESP = /netlink response for Add SA esp\.[0-9a-f]+@[\d.]+: Protocol not supported/;

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'iklsw' });
});
after(async () => {
  await pair?.destroy();
});

function ours(connection: Record<string, unknown>): OurGateway {
  return new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      s: {
        remote: pair.b.addr,
        auth: { psk: PSK },
        localTs: `${pair.a.inner}/32`,
        remoteTs: `${pair.a.peerInner}/32`,
        retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
        ...connection,
      },
    },
  });
}

async function run(peer: LibreswanPeer, gw: OurGateway, body: () => Promise<void>): Promise<void> {
  await peer.start();
  try {
    await gw.start();
    await body();
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- pluto ---\n${peer.logTail(30)}`, { cause: e });
  } finally {
    await gw.stop();
    await peer.stop();
  }
}

/** Starts the exchange from `initiator` (ours initiates by its config) and waits for our phase1-up. */
async function phase1Up(peer: LibreswanPeer, gw: OurGateway, initiator: 'ours' | 'libreswan') {
  if (initiator === 'libreswan') assert.equal((await peer.initiate()).code, 0);
  const up = await gw.waitFor((e) => e.event === 'phase1-up' || e.event === 'error', 15_000);
  assert.equal(up.event, 'phase1-up', `${initiator}: ${JSON.stringify(up)}`);
  return up;
}

const MAIN_MODE_CASES = [
  { ours: 'aes128-sha1-modp2048', theirs: 'aes128-sha1;modp2048', established: 'cipher=AES_CBC_128 integ=HMAC_SHA1 group=MODP2048' },
  { ours: 'aes256-sha256-modp3072', theirs: 'aes256-sha2_256;modp3072', established: 'cipher=AES_CBC_256 integ=HMAC_SHA2_256 group=MODP3072' },
  { ours: 'aes128-sha512-ecp256', theirs: 'aes128-sha2_512;dh19', established: 'cipher=AES_CBC_128 integ=HMAC_SHA2_512 group=DH19' },
];

for (const c of MAIN_MODE_CASES) {
  test(`Main Mode PSK ${c.ours}, we initiate: Libreswan establishes, takes our Quick Mode, and our Delete`, { skip, timeout: 30_000 }, async () => {
    const peer = new LibreswanPeer(pair, 'b', { psk: PSK, ike: c.theirs, esp: 'aes128-sha2_256' });
    const gw = ours({ ike: [c.ours], esp: ['aes128-sha256'], initiate: true });
    await run(peer, gw, async () => {
      const up = await phase1Up(peer, gw, 'ours');
      assert.deepEqual([up.role, up.mode, up.algorithms, up.remoteId], ['initiator', 'main', c.ours, pair.b.addr]);
      assert.ok(await peer.waitForLog(new RegExp(`"ours" #1: IKE SA established \\{auth=PRESHARED_KEY ${c.established}\\}`), 5000));
      // our QM1 passed pluto's checks (HASH(1), SA, IDs): it answers it, and stops only at the kernel
      assert.ok(await peer.waitForLog(/"ours" #2: responding to Quick Mode proposal/, 5000));
      assert.match(peer.log(), KERNEL_REFUSES_ESP);
      assert.doesNotMatch(peer.log(), /INVALID_HASH_INFORMATION|PAYLOAD_MALFORMED|NO_PROPOSAL_CHOSEN/);
      const mark = peer.logMark();
      await gw.stop();
      assert.ok(await peer.waitForLog(/received Delete SA payload: self-deleting ISAKMP State #1/, 5000, mark));
    });
  });
}

test('Main Mode PSK, Libreswan initiates: we answer, and our QM2 passes its checks (it then stops at the kernel)', { skip, timeout: 30_000 }, async () => {
  const peer = new LibreswanPeer(pair, 'b', { psk: PSK, ike: 'aes256-sha2_256;modp2048', esp: 'aes256-sha1' });
  const gw = ours({ ike: ['aes128-sha1-modp2048', 'aes256-sha256-modp2048'], esp: ['aes256-sha1'] });
  await run(peer, gw, async () => {
    const up = await phase1Up(peer, gw, 'libreswan');
    assert.deepEqual([up.role, up.algorithms], ['responder', 'aes256-sha256-modp2048']);
    assert.ok(await peer.waitForLog(/IKE SA established \{auth=PRESHARED_KEY cipher=AES_CBC_256 integ=HMAC_SHA2_256 group=MODP2048\}/, 5000));
    // pluto installs a child after it verified QM2 (HASH(2), the chosen transform, our SPI and nonce)
    assert.ok(await peer.waitForLog(KERNEL_REFUSES_ESP, 10_000));
    assert.doesNotMatch(peer.log(), /INVALID_HASH_INFORMATION|PAYLOAD_MALFORMED|NO_PROPOSAL_CHOSEN|malformed/i);
  });
});

test('Quick Mode with PFS (a KE payload, modp2048): pluto takes our QM1; then it deletes, and our ISAKMP SA goes with its Delete', { skip, timeout: 30_000 }, async () => {
  const peer = new LibreswanPeer(pair, 'b', { psk: PSK, pfs: true, ike: 'aes128-sha2_256;modp2048', esp: 'aes128-sha2_256;modp2048' });
  const gw = ours({ ike: ['aes128-sha256-modp2048'], esp: ['aes128-sha256-modp2048'], initiate: true });
  await run(peer, gw, async () => {
    await phase1Up(peer, gw, 'ours');
    assert.ok(await peer.waitForLog(/"ours" #2: responding to Quick Mode proposal/, 10_000));
    assert.match(peer.log(), KERNEL_REFUSES_ESP);
    assert.doesNotMatch(peer.log(), /INVALID_KEY_INFORMATION|INVALID_HASH_INFORMATION|NO_PROPOSAL_CHOSEN/);
    const t = await peer.terminate();
    assert.equal(t.code, 0, t.stdout + t.stderr);
    const down = await gw.waitFor((e) => e.event === 'phase1-down', 10_000);
    assert.equal(down.reason, 'deleted by the peer');
  });
});

test('Aggressive Mode PSK with FQDN identities, both roles', { skip, timeout: 40_000 }, async () => {
  for (const initiator of ['ours', 'libreswan'] as const) {
    const peer = new LibreswanPeer(pair, 'b', { psk: PSK, aggressive: true, localId: '@libreswan.test', remoteId: '@ours.test', ike: 'aes128-sha2_256;modp2048' });
    const gw = ours({
      mode: 'aggressive',
      auth: { psk: PSK, allowAggressivePsk: true },
      localId: '@ours.test',
      remoteId: '@libreswan.test',
      ike: ['aes128-sha256-modp2048'],
      esp: ['aes128-sha1'],
      initiate: initiator === 'ours',
    });
    await run(peer, gw, async () => {
      const up = await phase1Up(peer, gw, initiator);
      assert.deepEqual([up.mode, up.role, up.remoteId], ['aggressive', initiator === 'ours' ? 'initiator' : 'responder', 'libreswan.test']);
      assert.ok(await peer.waitForLog(/Peer ID is ID_FQDN: '@ours\.test'/, 5000), initiator);
      assert.ok(await peer.waitForLog(/IKE SA established \{auth=PRESHARED_KEY cipher=AES_CBC_128 integ=HMAC_SHA2_256 group=MODP2048\}/, 5000), initiator);
      assert.ok(await peer.waitForLog(KERNEL_REFUSES_ESP, 10_000), `${initiator}: Quick Mode reached pluto's kernel step`);
    });
  }
});

test('a wrong pre-shared key: no SA on either side, and each says why', { skip, timeout: 30_000 }, async () => {
  const peer = new LibreswanPeer(pair, 'b', { psk: PSK });
  const gw = ours({ auth: { psk: 'not-the-right-key' }, ike: ['aes128-sha1-modp2048'], esp: ['aes128-sha1'], initiate: true });
  await run(peer, gw, async () => {
    // our MM5 does not decrypt for pluto (the key is in SKEYID): it says so and waits for a retransmission;
    // we get no MM6 and say what that most often means
    assert.ok(await peer.waitForLog(/"ours" #1: probable authentication failure \(mismatch of preshared secrets\?\)/, 10_000));
    const err = await gw.waitFor((e) => e.event === 'error' || e.event === 'phase1-up', 15_000);
    assert.equal(err.event, 'error', JSON.stringify(err));
    assert.equal(err.kind, 'TIMEOUT');
    assert.match(String(err.message), /no answer to message 5: the peer could not verify us \(most often a pre-shared key mismatch/);
    assert.equal(gw.events.filter((e) => e.event === 'phase1-up').length, 0);
    assert.doesNotMatch(peer.log(), /IKE SA established/);
  });
});

test('XAUTH + Mode-Config with Libreswan as the server: our client logs in, pulls an address and asks for a child with it', { skip, timeout: 30_000 }, async () => {
  const peer = new LibreswanPeer(pair, 'b', {
    psk: PSK,
    remoteTs: '10.88.0.0/24',
    extra: {
      leftxauthserver: 'yes',
      leftmodecfgserver: 'yes',
      rightxauthclient: 'yes',
      rightmodecfgclient: 'yes',
      xauthby: 'alwaysok',
      rightaddresspool: '10.88.0.10-10.88.0.20',
      modecfgpull: 'yes',
      modecfgdns: '10.99.2.53',
    },
  });
  const gw = ours({
    ike: ['aes128-sha1-modp2048'],
    esp: ['aes128-sha1'],
    localTs: undefined,
    xauth: { user: 'alice', password: 'alice pw' },
    modeConfig: { client: 'pull' },
    initiate: true,
  });
  await run(peer, gw, async () => {
    const cfg = await gw.waitFor((e) => (e.event === 'remote-access' && e.type === 'modeCfg') || e.event === 'error', 15_000);
    assert.equal(cfg.event, 'remote-access', JSON.stringify(gw.events));
    assert.equal((cfg.config as { address?: string }).address, '10.88.0.10');
    assert.deepEqual((cfg.config as { dns?: string[] }).dns, ['10.99.2.53']);
    assert.ok(gw.events.some((e) => e.event === 'remote-access' && e.type === 'xauthOk'), JSON.stringify(gw.events));
    assert.ok(await peer.waitForLog(/XAUTH: User alice: Authentication Successful/, 5000));
    assert.ok(await peer.waitForLog(/sent ModeCfg reply/, 5000));
    // the Quick Mode that follows carries the address Libreswan gave us, which it accepts
    assert.ok(await peer.waitForLog(/the peer proposed: 10\.99\.2\.1\/32 -<all>-> 10\.88\.0\.10\/32/, 10_000));
    assert.ok(await peer.waitForLog(/responding to Quick Mode proposal/, 5000));
  });
});

test('XAUTH + Mode-Config with our gateway as the server and Libreswan as the client: login, an address from our pool', { skip, timeout: 30_000 }, async () => {
  const peer = new LibreswanPeer(pair, 'b', {
    psk: PSK,
    localTs: '',
    secrets: ['@alice : XAUTH "alice pw"'],
    extra: { leftxauthclient: 'yes', leftmodecfgclient: 'yes', leftusername: 'alice', rightxauthserver: 'yes', rightmodecfgserver: 'yes', modecfgpull: 'yes' },
  });
  const gw = ours({
    ike: ['aes128-sha1-modp2048'],
    esp: ['aes128-sha1'],
    remoteTs: undefined,
    xauth: { users: 'users', maxAttempts: 1 },
    modeConfig: { pool: '10.99.60.1-10.99.60.9', dns: ['10.99.1.53'], mode: 'pull' },
  });
  // a cheap scrypt cost: the format is the one `ike passwd` writes
  writeFileSync(path.join(gw.dir, 'users'), `${await userFileLine('alice', 'alice pw', { N: 1024, r: 8, p: 1 })}\n`);
  await run(peer, gw, async () => {
    assert.equal((await peer.initiate()).code, 0);
    const ok = await gw.waitFor((e) => (e.event === 'remote-access' && e.type === 'xauthOk') || e.event === 'error', 15_000);
    assert.equal(ok.user, 'alice', JSON.stringify(gw.events));
    const cfg = await gw.waitFor((e) => e.event === 'remote-access' && e.type === 'modeCfg', 10_000);
    assert.equal((cfg.config as { address?: string }).address, '10.99.60.1');
    assert.ok(await peer.waitForLog(/XAUTH: Successfully Authenticated/, 5000));
    assert.ok(await peer.waitForLog(/received IPv4 lease 10\.99\.60\.1|Received IPv4 address: 10\.99\.60\.1/, 5000), peer.logTail(20));
  });
});

interface Certs {
  pki: Pki;
  theirs: Issued;
  mine: Issued;
}

/** A two-level PKI in a temporary directory, a certificate for Libreswan and one for us; gone after `body`. */
async function withCerts(alg: KeyAlg, body: (c: Certs) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-lsw-pki-'));
  try {
    const pki = makePki(dir, alg);
    await body({ pki, theirs: pki.issue('libreswan'), mine: pki.issue('ours') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Libreswan signing with its certificate (in its NSS database) and expecting ours by its DN; `extra` adds keywords. */
function signingPeer(c: Certs, extra: Record<string, string>): LibreswanPeer {
  return new LibreswanPeer(pair, 'b', {
    psk: PSK,
    certs: { certFile: c.theirs.certFile, keyFile: c.theirs.keyFile, chainFiles: [c.pki.intermediateFile], caFiles: [c.pki.rootFile] },
    ike: 'aes128-sha2_256;modp2048',
    extra: { authby: 'rsasig', leftcert: 'libreswan', leftid: '%fromcert', leftsendcert: 'always', rightid: `"${c.mine.subject}"`, ...extra },
  });
}

/** Our gateway signing with its certificate, trusting `ca`. */
function signingOurs(c: Certs, ca: readonly string[], more: Record<string, unknown>): OurGateway {
  return ours({ auth: { cert: c.mine.chainFile, key: c.mine.keyFile, ca: [...ca] }, ike: ['aes128-sha256-modp2048'], esp: ['aes128-sha1'], ...more });
}

test('RSA signatures: Main Mode with a two-level chain and DN identities, both roles (certificates in Libreswan\'s NSS database)', { skip, timeout: 60_000 }, async () => {
  await withCerts('rsa2048', async (c) => {
    // Libreswan 4.10 sends its end certificate alone in IKEv1 unless told `sendca=all`: without that the
    // intermediate must be one of our CAs, or the chain stops short of the root (INVALID_CERT_AUTHORITY)
    const cases = [
      { initiator: 'ours', sendca: 'issuer', ca: [c.pki.rootFile, c.pki.intermediateFile] },
      { initiator: 'libreswan', sendca: 'all', ca: [c.pki.rootFile] },
    ] as const;
    for (const { initiator, sendca, ca } of cases) {
      const peer = signingPeer(c, { sendca });
      const gw = signingOurs(c, ca, { initiate: initiator === 'ours' });
      await run(peer, gw, async () => {
        const up = await phase1Up(peer, gw, initiator);
        assert.equal(up.remoteId, c.theirs.subject, initiator);
        assert.ok(await peer.waitForLog(/IKE SA established \{auth=RSA_SIG cipher=AES_CBC_128 integ=HMAC_SHA2_256 group=MODP2048\}/, 5000), initiator);
        assert.ok(await peer.waitForLog(/Peer ID is ID_DER_ASN1_DN: 'C=CH, O=ikev1-engine tests, CN=ours'/, 5000), initiator);
        assert.ok(await peer.waitForLog(KERNEL_REFUSES_ESP, 10_000), `${initiator}: Quick Mode reached pluto's kernel step`);
      });
    }
  });
});

test('IKE fragmentation (vendor ID + payload 132) with a 4096-bit RSA chain, forced on both sides: each reassembles the other\'s', { skip, timeout: 60_000 }, async () => {
  await withCerts('rsa4096', async (c) => {
    const peer = signingPeer(c, { sendca: 'all', fragmentation: 'force' });
    const gw = signingOurs(c, [c.pki.rootFile], { fragmentation: 'force', fragmentSize: 576, initiate: true });
    const cap = await Capture.start(pair, 'a', { filter: 'udp port 500 or udp port 4500' });
    await run(peer, gw, async () => {
      const up = await phase1Up(peer, gw, 'ours');
      assert.equal(up.remoteId, c.theirs.subject);
      assert.ok(await peer.waitForLog(/IKE SA established \{auth=RSA_SIG cipher=AES_CBC_128 integ=HMAC_SHA2_256 group=MODP2048\}/, 5000));
    });
    // the certificate messages went as fragments (ISAKMP next payload 132) both ways, each under the size cut
    const ike = readPcap(await cap.stop()).map(classifyUdp).filter((d) => d.kind === 'ike');
    const fragments = (from: string) => ike.filter((d) => d.src === from && parseHeader(d.message).nextPayload === 132);
    assert.ok(fragments(pair.a.addr).length >= 4, `our fragments: ${fragments(pair.a.addr).length}`);
    assert.ok(fragments(pair.a.addr).every((d) => d.message.length <= 576), 'ours within fragmentSize');
    assert.ok(fragments(pair.b.addr).length >= 2, `Libreswan's fragments: ${fragments(pair.b.addr).length}`);
  });
});
