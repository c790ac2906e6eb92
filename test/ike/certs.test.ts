// Signature authentication (RSA, ECDSA) in Main and Aggressive Mode between two engines in memory, with a
// two-level CA chain made by the openssl CLI: the handshake, and each way it must fail (wrong CA, expired,
// revoked, identity mismatch, a forged signature) with the error and notify the peer is told.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { parseIkeProposal, type Phase1Policy } from '../../ts/ike/index.js';
import { endEntityFirst, parseCertificate, parseCrl, parseDn, pemBlocks, verifyChain } from '../../ts/ike/certificates.js';
import { signatureMethodFor } from '../../ts/ike/signatures.js';
import type { CertAuth } from '../../ts/ike/phase1-core.js';
import { AuthMethod, NotifyType, PayloadType, encodeMessage, parseMessage, type Identity } from '../../ts/isakmp/index.js';
import { makePki, type Issued, type KeyAlg, type Pki } from './pki.js';
import { runPhase1 } from './pair.js';

const crypto: CryptoProvider = nativeCrypto ?? nodeCrypto;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-certs-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const pkis = new Map<string, Pki>();
function pki(alg: KeyAlg, name = 'Root'): Pki {
  const key = `${alg}-${name}`;
  let p = pkis.get(key);
  if (!p) pkis.set(key, (p = makePki(path.join(dir, key), alg, `${name} ${alg}`)));
  return p;
}

type Held = CertAuth & Required<Pick<CertAuth, 'cert' | 'key'>>;

function certs(p: Pki, ee: Issued, opts: { crl?: string; trust?: Pki } = {}): Held {
  const chain = pemBlocks(readFileSync(ee.chainFile, 'utf8'), 'CERTIFICATE').map((d, i) => parseCertificate(d, `${ee.chainFile} ${i}`));
  const anchors = pemBlocks(readFileSync((opts.trust ?? p).rootFile, 'utf8'), 'CERTIFICATE').map((d) => parseCertificate(d, 'root'));
  const crls = opts.crl ? pemBlocks(readFileSync(opts.crl, 'utf8'), 'X509 CRL').map((d) => parseCrl(d, opts.crl!)) : [];
  return { cert: chain[0]!, chain: chain.slice(1), key: createPrivateKey(readFileSync(ee.keyFile)), trust: { anchors, crls } };
}

function dn(text: string): Identity {
  const r = parseDn(text);
  assert.ok(r.ok);
  return { kind: 'der-dn', data: r.value };
}

function sigPolicy(mode: 'main' | 'aggressive', auth: Held, over: Partial<Phase1Policy> = {}): Phase1Policy {
  const r = parseIkeProposal('aes128-sha256-modp2048', { authMethod: signatureMethodFor(auth.key) });
  assert.ok(r.ok);
  return { name: 'cert', mode, proposals: r.value, certs: auth, localId: { kind: 'der-dn', data: auth.cert.subjectDer }, ...over };
}

const run = (i: Phase1Policy, r: Phase1Policy) => runPhase1(crypto, i, [r], undefined, 600_000, Date.now());

for (const alg of ['rsa2048', 'ec256', 'ec384', 'ec521'] as const) {
  for (const mode of ['main', 'aggressive'] as const) {
    test(`${mode} mode with ${alg} certificates from a two-level chain: both sides authenticate the other's subject`, async () => {
      const p = pki(alg);
      const moon = p.issue('moon.example', { san: ['DNS:moon.example'] });
      const sun = p.issue('sun.example', { san: ['DNS:sun.example'] });
      const res = await run(sigPolicy(mode, certs(p, moon), { remoteId: dn(sun.subject) }), sigPolicy(mode, certs(p, sun)));
      assert.ok(res.initiator.sa, res.initiator.error?.message);
      assert.ok(res.responder.sa, res.responder.error?.message);
      assert.deepEqual(res.initiator.sa.skeyidE, res.responder.sa.skeyidE);
      assert.equal(res.initiator.sa.proposal.authMethod, signatureMethodFor(certs(p, moon).key));
      assert.equal(res.responder.sa.remoteId.kind, 'der-dn');
      // what went over the wire: CERTREQ early, the end entity and the intermediate, a SIG and no HASH
      const clear = res.wire.map((w) => parseMessage(w.bytes)).flatMap((m) => (m.ok && 'payloads' in m.value ? m.value.payloads : []));
      assert.ok(clear.some((x) => x.type === PayloadType.CR));
      if (mode === 'aggressive') {
        assert.equal(clear.filter((x) => x.type === PayloadType.CERT).length, 2, 'message 2: end entity + intermediate');
        assert.ok(clear.some((x) => x.type === PayloadType.SIG));
      }
    });
  }
}

test('the peer\'s certificates in any order: its own is found first (vpnc sends it last); unrelated extras keep the order', () => {
  const p = pki('rsa2048');
  const held = certs(p, p.issue('order.example'));
  const [ee, im] = [held.cert, held.chain[0]!];
  const root = held.trust!.anchors[0]!;
  assert.deepEqual(endEntityFirst([im, ee]), [ee, im]);
  assert.deepEqual(endEntityFirst([root, im, ee]), [ee, root, im]);
  assert.deepEqual(endEntityFirst([ee, im]), [ee, im]);
  const other = certs(pki('rsa2048', 'Other'), pki('rsa2048', 'Other').issue('other.example')).cert;
  assert.deepEqual(endEntityFirst([im, ee, other]), [im, ee, other], 'two leaves: as sent');
});

test('aggressive mode: a responder that sends the intermediate before its certificate is still authenticated', async () => {
  const p = pki('rsa2048');
  const moon = p.issue('moon.example', { san: ['DNS:moon.example'] });
  const sun = p.issue('sun.example', { san: ['DNS:sun.example'] });
  // message 2 travels in clear: swap its two CERT payloads (no hash or signature covers them)
  let swapped = 0;
  const reorder = (bytes: Buffer): Buffer[] => {
    const m = parseMessage(bytes);
    if (!m.ok || !('payloads' in m.value)) return [bytes];
    const certsAt = m.value.payloads.flatMap((x, i) => (x.type === PayloadType.CERT ? [i] : []));
    if (certsAt.length !== 2) return [bytes];
    const payloads = [...m.value.payloads];
    [payloads[certsAt[0]!], payloads[certsAt[1]!]] = [payloads[certsAt[1]!]!, payloads[certsAt[0]!]!];
    swapped++;
    return [encodeMessage({ header: m.value.header, payloads })];
  };
  const res = await runPhase1(crypto, sigPolicy('aggressive', certs(p, moon), { remoteId: dn(sun.subject) }), [sigPolicy('aggressive', certs(p, sun))], reorder, 600_000, Date.now());
  assert.ok(swapped >= 1, 'message 2 had its CERT payloads swapped');
  assert.ok(res.initiator.sa, res.initiator.error?.message);
  assert.ok(res.responder.sa, res.responder.error?.message);
});

test('an FQDN identity is matched against the subjectAltName', async () => {
  const p = pki('ec256');
  const moon = p.issue('moon', { san: ['DNS:moon.example'] });
  const sun = p.issue('sun', { san: ['DNS:sun.example', 'IP:10.99.0.2'] });
  const res = await run(
    sigPolicy('main', certs(p, moon), { localId: { kind: 'fqdn', value: 'moon.example' }, remoteId: { kind: 'ipv4', address: '10.99.0.2' } }),
    sigPolicy('main', certs(p, sun), { localId: { kind: 'ipv4', address: '10.99.0.2' }, remoteId: { kind: 'fqdn', value: 'moon.example' } }),
  );
  assert.ok(res.initiator.sa && res.responder.sa, res.initiator.error?.message ?? res.responder.error?.message);
});

async function failure(i: Phase1Policy, r: Phase1Policy) {
  const res = await run(i, r);
  assert.equal(res.initiator.sa, undefined);
  assert.equal(res.responder.sa, undefined);
  return res;
}

test('a peer certificate from another CA fails with INVALID_CERT_AUTHORITY naming the issuer', async () => {
  const p = pki('rsa2048');
  const other = pki('rsa2048', 'Other');
  const res = await failure(sigPolicy('main', certs(other, other.issue('intruder'))), sigPolicy('main', certs(p, p.issue('gw'))));
  assert.equal(res.responder.error?.kind, 'CERTIFICATE');
  assert.equal(res.responder.error?.notifyType, NotifyType.INVALID_CERT_AUTHORITY);
  assert.match(res.responder.error!.message, /chain ends at 'C=CH, O=ikev1-engine tests, CN=Other rsa2048 Intermediate': its issuer 'C=CH, O=ikev1-engine tests, CN=Other rsa2048' is not a trusted CA/);
});

test('an expired certificate fails with INVALID_CERTIFICATE saying when it expired', async () => {
  const p = pki('ec256');
  const res = await failure(sigPolicy('main', certs(p, p.issue('old', { days: -1 }))), sigPolicy('main', certs(p, p.issue('gw'))));
  assert.equal(res.responder.error?.notifyType, NotifyType.INVALID_CERTIFICATE);
  assert.match(res.responder.error!.message, /peer certificate 'C=CH, O=ikev1-engine tests, CN=old' expired on/);
});

test('a revoked certificate fails, named with the CRL', async () => {
  const p = pki('ec256');
  const bad = p.issue('revoked');
  const crl = p.crl([bad]);
  const gw = p.issue('gw');
  const res = await failure(sigPolicy('main', certs(p, bad)), sigPolicy('main', certs(p, gw, { crl })));
  assert.match(res.responder.error!.message, new RegExp(`serial ${bad.serial.replace(/^0+/, '')}\\) is revoked by .*im\\.crl\\.pem`));
});

test('an identity the certificate does not hold fails with INVALID_ID_INFORMATION naming both', async () => {
  const p = pki('ec256');
  const res = await failure(
    sigPolicy('main', certs(p, p.issue('moon', { san: ['DNS:moon.example'] })), { localId: { kind: 'fqdn', value: 'mars.example' } }),
    sigPolicy('main', certs(p, p.issue('gw'))),
  );
  assert.equal(res.responder.error?.notifyType, NotifyType.INVALID_ID_INFORMATION);
  assert.match(res.responder.error!.message, /sent ID 'mars.example' that its certificate does not hold: .*has no subjectAltName dNSName 'mars.example' \(it has dns:moon.example\)/);
});

test('a valid certificate of another identity than the configured remote ID is refused by the initiator', async () => {
  const p = pki('rsa2048');
  // Main Mode: the responder has finished with message 6 before the initiator reads it
  const res = await run(
    sigPolicy('main', certs(p, p.issue('moon')), { remoteId: dn('C=CH, O=ikev1-engine tests, CN=expected-gw') }),
    sigPolicy('main', certs(p, p.issue('impostor'))),
  );
  assert.equal(res.initiator.error?.notifyType, NotifyType.INVALID_ID_INFORMATION);
  assert.match(res.initiator.error!.message, /authenticated as 'C=CH, O=ikev1-engine tests, CN=impostor' but connection 'cert' expects 'C=CH, O=ikev1-engine tests, CN=expected-gw'/);
  // the responder, already done, is told under the phase 1 keys: a notify, then a Delete of the ISAKMP SA
  const after = res.wire.filter((w) => w.from === 'i').map((w) => parseMessage(w.bytes)).slice(-2);
  for (const m of after) assert.ok(m.ok && m.value.header.exchangeType === 5 && 'encrypted' in m.value, 'two encrypted Informationals');
});

test('a signature made with another key than the certificate\'s fails with INVALID_SIGNATURE', async () => {
  const p = pki('ec256');
  const moon = certs(p, p.issue('moon'));
  const thief = { ...moon, key: certs(p, p.issue('thief')).key };
  const res = await failure(sigPolicy('main', thief), sigPolicy('main', certs(p, p.issue('gw'))));
  assert.equal(res.responder.error?.notifyType, NotifyType.INVALID_SIGNATURE);
});

test('chain checks: a CA without keyCertSign and an end entity posing as CA are refused', () => {
  const p = pki('ec256');
  const anchors = pemBlocks(readFileSync(p.rootFile, 'utf8'), 'CERTIFICATE').map((d) => parseCertificate(d, 'root'));
  const ee = certs(p, p.issue('ee', { keyUsage: 'keyEncipherment' }));
  assert.throws(() => verifyChain(ee.cert, ee.chain, { anchors, crls: [] }, Date.now()), /keyUsage without digitalSignature/);
  const ok = certs(p, p.issue('fine'));
  assert.throws(() => verifyChain(ok.cert, [], { anchors, crls: [] }, Date.now()), /is not a trusted CA nor a certificate the peer sent/);
  assert.equal(verifyChain(ok.cert, ok.chain, { anchors, crls: [] }, Date.now()).length, 3);
  assert.throws(() => parseCertificate(Buffer.from('3003020100', 'hex'), 'junk'), /junk is not an X.509 certificate/);
});

test('methods: RSA signs with RSA_SIG, the curves with ECDSA_256/384/521', () => {
  assert.equal(signatureMethodFor(certs(pki('rsa2048'), pki('rsa2048').issue('m')).key), AuthMethod.RSA_SIG);
  assert.equal(signatureMethodFor(certs(pki('ec384'), pki('ec384').issue('m')).key), AuthMethod.ECDSA_384);
});
