// The certificate form of `auth` (ts/gateway/config/auth.ts): files read and checked, the defaults it implies
// (our identity is the certificate's subject, the peer is whoever the CAs vouch for, the method follows the
// key), and one clear line for each thing that is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../ts/gateway/config.js';
import { AuthMethod } from '../../ts/isakmp/index.js';
import { makePki } from '../ike/pki.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-config-certs-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const rsa = makePki(path.join(dir, 'rsa'), 'rsa2048');
const ec = makePki(path.join(dir, 'ec'), 'ec384');
const gw = rsa.issue('gw.example', { san: ['DNS:gw.example'] });
const gwEc = ec.issue('gw.example');

function config(auth: object, extra: object = {}) {
  return parseConfig({ connections: { c: { remote: '10.99.0.2', auth, ...extra } } }, { baseDir: dir, env: {} });
}

test('a certificate, its key and a CA file: DN identity, any remote identity, RSA_SIG proposals, chain kept', () => {
  const r = config({ cert: gw.chainFile, key: gw.keyFile, ca: [rsa.rootFile] });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  const c = r.config.connections[0]!;
  assert.ok('kind' in c.auth && c.auth.kind === 'cert');
  assert.equal(c.auth.cert?.subject, gw.subject);
  assert.equal(c.auth.chain.length, 1, 'the intermediate after our certificate is sent with it');
  assert.equal(c.localId !== 'address' && c.localId.kind, 'der-dn');
  assert.equal(c.remoteId, 'any');
  assert.ok(c.ike.every((p) => p.authMethod === AuthMethod.RSA_SIG));
  // the key never prints
  assert.doesNotMatch(JSON.stringify(c.auth), /PRIVATE|BEGIN/);
  assert.match(JSON.stringify(c.auth), /<redacted>/);
});

test('an EC P-384 key gives ECDSA_384; with XAUTH an RSA key gives XAUTH_INIT_RSA', () => {
  const r = config({ cert: gwEc.certFile, key: gwEc.keyFile, ca: [ec.rootFile] });
  assert.ok(r.ok && r.config.connections[0]!.ike.every((p) => p.authMethod === AuthMethod.ECDSA_384));
  const x = config({ cert: gw.certFile, key: gw.keyFile, ca: [rsa.rootFile] }, { xauth: { user: 'alice', password: 'pw' }, initiate: true });
  assert.ok(x.ok, x.ok ? '' : x.errors.join('\n'));
  assert.ok(x.config.connections[0]!.ike.every((p) => p.authMethod === AuthMethod.XAUTH_INIT_RSA));
});

test('sendChain false keeps the intermediates home', () => {
  const r = config({ cert: gw.chainFile, key: gw.keyFile, ca: [rsa.rootFile], sendChain: false });
  assert.ok(r.ok && 'kind' in r.config.connections[0]!.auth && r.config.connections[0]!.auth.chain.length === 0);
});

test('a CA directory is read', () => {
  const cas = path.join(dir, 'cas');
  mkdirSync(cas, { recursive: true });
  copyFileSync(rsa.rootFile, path.join(cas, 'root.pem'));
  const r = config({ cert: gw.certFile, key: gw.keyFile, ca: 'cas' });
  assert.ok(r.ok && 'kind' in r.config.connections[0]!.auth && r.config.connections[0]!.auth.trust.anchors.length === 1);
});

test('each mistake is one clear line', () => {
  const err = (auth: object) => {
    const r = config(auth);
    assert.equal(r.ok, false);
    return (r as { errors: string[] }).errors.join('\n');
  };
  assert.match(err({ cert: gw.certFile, ca: [rsa.rootFile] }), /connections\.c\.auth\.key: missing/);
  assert.match(err({ cert: gw.certFile, key: gw.keyFile }), /connections\.c\.auth\.ca: missing/);
  assert.match(err({ cert: 'nope.pem', key: gw.keyFile, ca: [rsa.rootFile] }), /auth\.cert: cannot read .*nope\.pem \(ENOENT\)/);
  assert.match(err({ cert: gw.certFile, key: gwEc.keyFile, ca: [rsa.rootFile] }), /is not the private key of .*CN=gw\.example/);
  assert.match(err({ cert: gw.certFile, key: gw.keyFile, ca: [gw.certFile] }), /is not a CA certificate/);
  assert.match(err({ cert: gw.certFile, key: gw.keyFile, ca: [rsa.rootFile], psk: 'x' }), /unknown key|psk/);
  const loose = path.join(dir, 'loose.key');
  copyFileSync(gw.keyFile, loose);
  chmodSync(loose, 0o644);
  assert.match(err({ cert: gw.certFile, key: loose, ca: [rsa.rootFile] }), /loose\.key is readable by group or others \(mode 644\); chmod 600 it/);
});
