// Certificate authentication against a real strongSwan 5.9 (charon + swanctl) in network namespaces: RSA and
// ECDSA, Main and Aggressive Mode, both roles, with a two-level CA chain made by the openssl CLI in the test
// (root -> intermediate -> end entities; each side sends its end entity and the intermediate and trusts the
// root). Then the failures, each from both sides: a certificate of another CA, an expired certificate, and
// an identity the other side does not expect; the side that refuses names the cause, nothing is established.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway } from './ours.js';
import { makePki, type Issued, type KeyAlg, type Pki } from '../ike/pki.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);

let pair: NetnsPair;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-interop-certs-'));
const pkis = new Map<string, Pki>();
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikc' });
});
after(async () => {
  await pair?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function pki(alg: KeyAlg, name = 'Root'): Pki {
  const k = `${alg}-${name}`;
  let p = pkis.get(k);
  if (!p) pkis.set(k, (p = makePki(path.join(dir, k), alg, `${name} ${alg}`)));
  return p;
}

interface Case {
  mode: 'main' | 'aggressive';
  alg: KeyAlg;
  initiator: 'ours' | 'strongswan';
  ike?: string;
  /** Our certificate and the PKI whose root we trust (default: one PKI for both). */
  ours?: Issued;
  theirs?: Issued;
  ourTrust?: Pki;
  theirTrust?: Pki;
  /** The identity each side expects of the other (default: the other's subject for strongSwan, any for us). */
  ourRemoteId?: string;
  theirRemoteId?: string;
  /** IKE fragmentation on both sides: forced, or announced and used when both did. */
  fragment?: 'force' | 'yes';
}

const q = (s: string) => `"${s}"`;


function setup(c: Case) {
  const p = pki(c.alg);
  const ours = c.ours ?? p.issue('ours.example', { san: ['DNS:ours.example'] });
  const theirs = c.theirs ?? p.issue('strongswan.example', { san: ['DNS:strongswan.example'] });
  const ourTrust = c.ourTrust ?? p;
  const theirTrust = c.theirTrust ?? p;
  const ike = c.ike ?? 'aes128-sha256-modp2048';
  const ss = new StrongSwanPeer(pair, 'b', {
    mode: c.mode,
    ike,
    kernel: 'netlink',
    retransmitTries: 2,
    retransmitTimeout: 1,
    localId: q(theirs.subject),
    remoteId: q(c.theirRemoteId ?? ours.subject),
    extraLocal: { auth: 'pubkey', certs: theirs.certFile },
    // the intermediate as a CA too, so that strongSwan sends it with its certificate
    extraRemote: { auth: 'pubkey', cacerts: `${theirTrust.rootFile},${pki(c.alg).intermediateFile}` },
    ...(c.fragment ? { extraConn: { fragmentation: c.fragment } } : {}),
  });
  const ourConfig = {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      s: {
        remote: pair.b.addr,
        mode: c.mode,
        auth: { cert: ours.chainFile, key: ours.keyFile, ca: [ourTrust.rootFile] },
        ...(c.ourRemoteId ? { remoteId: c.ourRemoteId } : {}),
        ike: [ike],
        initiate: c.initiator === 'ours',
        retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
        ...(c.fragment ? { fragmentation: c.fragment, fragmentSize: 1280 } : {}),
      },
    },
  };
  return { ss, ours: new OurGateway(pair, 'a', ourConfig), ourCert: ours, theirCert: theirs };
}

async function withPeers(c: Case, body: (ours: OurGateway, ss: StrongSwanPeer, s: ReturnType<typeof setup>) => Promise<void>): Promise<void> {
  const s = setup(c);
  await s.ss.start();
  // swanctl loads private keys only from rsa/ or ecdsa/ beside the swanctl.conf it is given (a `secrets`
  // entry names a passphrase, not a key): put strongSwan's key there and load the credentials again
  const keyDir = path.join(s.ss.dir, c.alg.startsWith('rsa') ? 'rsa' : 'ecdsa');
  mkdirSync(keyDir, { recursive: true });
  copyFileSync(s.theirCert.legacyKeyFile, path.join(keyDir, 'strongswan.pem'));
  const loaded = await s.ss.swanctl(['--load-creds', '--noprompt', '--file', path.join(s.ss.dir, 'swanctl.conf')]);
  assert.match(loaded.stdout, /loaded (rsa|ecdsa) key/i, loaded.stdout + loaded.stderr);
  try {
    await s.ours.start();
    if (c.initiator === 'strongswan') await s.ss.initiateIke(8);
    await body(s.ours, s.ss, s);
  } finally {
    await s.ours.stop();
    await s.ss.stop(1000);
  }
}

async function established(ss: StrongSwanPeer) {
  let sas = await ss.listSas();
  for (let i = 0; i < 30 && !sas.some((s) => s.state === 'ESTABLISHED'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    sas = await ss.listSas();
  }
  return sas.filter((s) => s.state === 'ESTABLISHED');
}

const handshakes: Case[] = [];
for (const alg of ['rsa2048', 'ec256', 'ec384'] as const)
  for (const mode of ['main', 'aggressive'] as const) for (const initiator of ['ours', 'strongswan'] as const) handshakes.push({ mode, alg, initiator });

for (const c of handshakes) {
  test(`strongSwan interop: ${c.mode} mode, ${c.alg} certificates (two-level chain), ${c.initiator === 'ours' ? 'we initiate' : 'strongSwan initiates'}`, { skip, timeout: 60_000 }, async () => {
    await withPeers(c, async (ours, ss, s) => {
      const up = await ours.waitFor((e) => e.event === 'phase1-up' || e.event === 'error', 15_000);
      assert.equal(up.event, 'phase1-up', `our gateway: ${JSON.stringify(up)}\n${ss.logTail(30)}`);
      const sas = await established(ss);
      const sa = sas.find((x) => x.cookieI === up.cookieI);
      assert.ok(sa, `strongSwan has no established IKE SA ${up.cookieI}:\n${ss.logTail(40)}`);
      // strongSwan authenticated our subject, and we its subject (sent as ID_DER_ASN1_DN)
      assert.equal(sa.remoteId, s.ourCert.subject);
      assert.equal(sa.localId, s.theirCert.subject);
      assert.ok(await ss.waitForLog(/authentication of 'C=CH, O=ikev1-engine tests, CN=ours.example' with (RSA_EMSA_PKCS1_NULL|ECDSA_WITH_NULL) successful/, 2000), ss.logTail(30));
    });
  });
}

const fragmented: Array<[Case['mode'], Case['initiator'], 'force' | 'yes']> = [
  ['main', 'ours', 'force'],
  ['main', 'strongswan', 'force'],
  ['aggressive', 'ours', 'force'],
  ['aggressive', 'strongswan', 'force'],
  ['main', 'ours', 'yes'],
];
for (const [mode, initiator, fragment] of fragmented) {
  {
    const how = fragment === 'force' ? 'forced on both sides' : 'announced by both sides (vendor ID) and used';
    test(`strongSwan interop: ${mode} mode, 4096-bit RSA chain, IKE fragmentation ${how}, ${initiator === 'ours' ? 'we initiate' : 'strongSwan initiates'}`, { skip, timeout: 90_000 }, async () => {
      const c: Case = { mode, alg: 'rsa4096', initiator, fragment };
      await withPeers(c, async (ours, ss, s) => {
        const up = await ours.waitFor((e) => e.event === 'phase1-up' || e.event === 'error', 20_000);
        assert.equal(up.event, 'phase1-up', `our gateway: ${JSON.stringify(up)}\n${ss.logTail(30)}`);
        const sa = (await established(ss)).find((x) => x.cookieI === up.cookieI);
        assert.ok(sa, ss.logTail(40));
        assert.equal(sa.remoteId, s.ourCert.subject);
        // both directions went in fragments: strongSwan reassembled ours and cut its own
        assert.ok(await ss.waitForLog(/received fragment #\d+, reassembled fragmented IKE message \(\d+ bytes\)/, 2000), `strongSwan got no fragment:\n${ss.logTail(40)}`);
        assert.ok(await ss.waitForLog(/splitting IKE message \(\d+ bytes\) into \d+ fragments/, 2000), ss.logTail(40));
      });
    });
  }
}

/** Neither side has an established SA; returns our error event (if our side refused) for the test to check. */
async function refused(c: Case, ourMessage: RegExp | null, theirLog: RegExp | null, weRefuse = theirLog === null): Promise<OurGateway> {
  let gateway: OurGateway | undefined;
  await withPeers(c, async (ours, ss) => {
    gateway = ours;
    if (ourMessage) {
      const e = await ours.waitFor((x) => x.event === 'error' || x.event === 'phase1-up', 15_000);
      assert.equal(e.event, 'error', JSON.stringify(e));
      assert.match(String(e.message), ourMessage);
    }
    if (theirLog) assert.ok(await ss.waitForLog(theirLog, 10_000), `strongSwan log lacks ${theirLog}:\n${ss.logTail(40)}`);
    // when we refuse strongSwan's message 6 it has already finished: our encrypted notify makes it delete the SA
    if (weRefuse) assert.ok(await ss.waitForLog(/received (INVALID_\w+|AUTHENTICATION_FAILED) error notify/, 10_000), `strongSwan did not get our notify:\n${ss.logTail(30)}`);
    let up = await ss.listSas().then((l) => l.filter((x) => x.state === 'ESTABLISHED'));
    for (let i = 0; i < 40 && up.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      up = await ss.listSas().then((l) => l.filter((x) => x.state === 'ESTABLISHED'));
    }
    assert.deepEqual(up, [], 'strongSwan keeps no established SA');
    assert.equal(ours.events.filter((x) => x.event === 'phase1-up' && x.role === 'initiator').length, 0);
  });
  return gateway!;
}

/** As responder we finished with message 6; strongSwan, refusing it, deletes the SA: we report it down. */
async function deletedByPeer(ours: OurGateway): Promise<void> {
  const down = await ours.waitFor((e) => e.event === 'phase1-down', 5000);
  assert.equal(down.reason, 'deleted by the peer');
}

test('strongSwan interop: strongSwan shows a certificate of another CA: we refuse it naming the untrusted issuer', { skip, timeout: 60_000 }, async () => {
  const other = pki('rsa2048', 'Other');
  await refused({ mode: 'main', alg: 'rsa2048', initiator: 'ours', theirs: other.issue('strongswan.example'), theirTrust: pki('rsa2048') }, /its issuer 'C=CH, O=ikev1-engine tests, CN=Other rsa2048 Intermediate' is not a trusted CA/, null);
});

test('strongSwan interop: we show a certificate of another CA: strongSwan finds no trusted key and deletes the SA', { skip, timeout: 60_000 }, async () => {
  const other = pki('rsa2048', 'Other');
  const ours = await refused({ mode: 'main', alg: 'rsa2048', initiator: 'strongswan', ours: other.issue('ours.example'), ourTrust: pki('rsa2048') }, null, /no trusted RSA public key found for 'C=CH, O=ikev1-engine tests, CN=ours.example'/);
  await deletedByPeer(ours);
});

test('strongSwan interop: strongSwan\'s certificate has expired: we refuse it saying when', { skip, timeout: 60_000 }, async () => {
  await refused({ mode: 'main', alg: 'ec256', initiator: 'ours', theirs: pki('ec256').issue('strongswan.example', { days: -1 }) }, /peer certificate 'C=CH, O=ikev1-engine tests, CN=strongswan.example' expired on/, null);
});

test('strongSwan interop: our certificate has expired: strongSwan refuses it and deletes the SA', { skip, timeout: 60_000 }, async () => {
  const ours = await refused({ mode: 'main', alg: 'ec256', initiator: 'strongswan', ours: pki('ec256').issue('ours.example', { days: -1 }) }, null, /certificate .*ours.example.* (not valid|expired)|no trusted ECDSA public key found/);
  await deletedByPeer(ours);
});

test('strongSwan interop: strongSwan is not the identity we expect: INVALID_ID_INFORMATION naming both', { skip, timeout: 60_000 }, async () => {
  await refused({ mode: 'main', alg: 'rsa2048', initiator: 'ours', ourRemoteId: '@expected-gw.example' }, /authenticated as 'C=CH, O=ikev1-engine tests, CN=strongswan.example' but connection 's' expects 'expected-gw.example'/, null);
});

test('strongSwan interop: we are not the identity strongSwan expects: strongSwan finds no config and tells us (encrypted AUTHENTICATION_FAILED)', { skip, timeout: 60_000 }, async () => {
  // strongSwan answers message 5 with AUTHENTICATION_FAILED under the phase 1 keys: we read it and stop at once
  await refused({ mode: 'main', alg: 'rsa2048', initiator: 'ours', theirRemoteId: 'C=CH, O=ikev1-engine tests, CN=someone-else' }, /peer 10\.99\.0\.2 refused our authentication: AUTHENTICATION_FAILED/, /no peer config found/, false);
});
