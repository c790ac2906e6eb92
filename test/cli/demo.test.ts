// `npm start` / `ike demo` as a user runs it: a full narrated negotiation and traffic, exit code 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

const ROOT = path.resolve(path.dirname(IKE), '..');

test('npm start (ike demo, as the README shows it) negotiates Main Mode + Quick Mode over loopback, narrates all 9 messages and pushes ESP', { timeout: 60_000 }, () => {
  const r = spawnSync('npm', ['start', '--silent'], { cwd: ROOT, encoding: 'utf8', timeout: 50_000 });
  assert.equal(r.status, 0, r.stderr);
  for (let i = 1; i <= 6; i++) assert.match(r.stdout, new RegExp(`Main Mode ${i}/6`));
  for (let i = 1; i <= 3; i++) assert.match(r.stdout, new RegExp(`Quick Mode ${i}/3`));
  assert.match(r.stdout, /ISAKMP SA established \(aes128-sha256-modp2048\)/);
  assert.match(r.stdout, /Child SA aes128gcm16-modp2048 tunnel 10\.1\.0\.0\/24 <=> 10\.2\.0\.0\/24/);
  assert.match(r.stdout, /ESP in memory: \d+ packets .* Gbit\/s|Gbit\/s seal\+open/);
  const m = /ESP over UDP .*: (\d+)\/(\d+) packets arrived/.exec(r.stdout);
  assert.ok(m && Number(m[1]) > Number(m[2]) * 0.9, 'most UDP ESP packets arrive and open');
  assert.match(r.stdout, /stopped: the initiator sent Deletes/);
  assert.equal(r.stderr, '');
});

test('ike demo --auth cert: the same negotiation with ECDSA certificates from a throw-away CA, narrated (CERTREQ, CERT, SIG)', { timeout: 60_000 }, () => {
  const r = spawnSync(process.execPath, [IKE, 'demo', '--auth', 'cert'], { cwd: ROOT, encoding: 'utf8', timeout: 50_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ECDSA P-256 certificates from a throw-away demo CA/);
  assert.match(r.stdout, /Main Mode 3\/6 .*\n.*payloads on the wire: KE NONCE CR NAT-D NAT-D/);
  assert.match(r.stdout, /Main Mode 5\/6  encrypted: IDii .* CERT \+ SIG/);
  assert.match(r.stdout, /peer authenticated as O=ike demo, CN=responder\.demo/);
  for (let i = 1; i <= 3; i++) assert.match(r.stdout, new RegExp(`Quick Mode ${i}/3`));
  assert.equal(r.stderr, '');
});
