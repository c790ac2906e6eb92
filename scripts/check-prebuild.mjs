#!/usr/bin/env node
// Loads one addon binary (a prebuilt one, possibly of another architecture under qemu-user) and checks that it
// computes: a MODP 2048 Diffie-Hellman between two of its own keys agrees, and its HMAC-SHA-256 prf equals
// node:crypto's. Plain JavaScript with no
// dependency, so that it runs on the node of the binary's platform:
//   node scripts/check-prebuild.mjs prebuilds/linux-x64/ikev1_native.glibc.node
//   qemu-aarch64 -L ROOT ROOT/usr/bin/node scripts/check-prebuild.mjs prebuilds/linux-arm64/ikev1_native.glibc.node
// With `--reference NODE` it also checks against another runtime's answers, computed by that node (e.g. the
// host's glibc node, when the binary runs in a musl runtime, scripts/check-prebuild-musl.sh): a MODP 2048 DH
// between the addon's key and one of NODE's node:crypto agrees on the secret, and NODE's HMAC-SHA-256 of the
// same key and data equals the addon's prf.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import path from 'node:path';

const file = path.resolve(process.argv[2] ?? '');
const refAt = process.argv.indexOf('--reference');
const reference = refAt > 0 ? process.argv[refAt + 1] : undefined;
const addon = createRequire(import.meta.url)(file);
const fail = (what) => {
  console.error(`check-prebuild: ${file}: ${what}`);
  process.exit(1);
};
const sha256 = 2; // HashAlg kSha256 of native/codes.h
const a = new addon.DhKey(14);
const b = new addon.DhKey(14);
a.generate();
b.generate();
const s1 = a.computeSecret(b.publicValue());
const s2 = b.computeSecret(a.publicValue());
if (s1.length !== 256 || !s1.equals(s2)) fail('DH group 14: the two sides disagree');
const key = crypto.randomBytes(32);
const data = crypto.randomBytes(100);
const out = Buffer.alloc(32);
addon.prf(out, sha256, key, data);
if (!out.equals(crypto.createHmac('sha256', key).update(data).digest())) fail('prf HMAC-SHA-256 differs from node:crypto');
let against = '';
if (reference) {
  // the reference node runs with a clean environment: none of this runtime's loader variables (LD_PRELOAD...)
  const script = `const c = require('node:crypto'); const [pub, key, data] = process.argv.slice(1).map((h) => Buffer.from(h, 'hex'));
const dh = c.getDiffieHellman('modp14'); dh.generateKeys();
const pad = (b) => Buffer.concat([Buffer.alloc(256), b]).subarray(-256);
const secret = pad(dh.computeSecret(pub));
console.log(JSON.stringify({ pub: pad(dh.getPublicKey()).toString('hex'), secret: secret.toString('hex'), hmac: c.createHmac('sha256', key).update(data).digest('hex'), version: process.version, libc: process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'other' }));`;
  const r = spawnSync(reference, ['-e', script, a.publicValue().toString('hex'), key.toString('hex'), data.toString('hex')], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8' });
  if (r.status !== 0) fail(`reference ${reference} failed: ${r.stderr}`);
  const ref = JSON.parse(r.stdout);
  if (!a.computeSecret(Buffer.from(ref.pub, 'hex')).equals(Buffer.from(ref.secret, 'hex'))) fail(`DH group 14 with ${reference}: the secrets differ`);
  if (!out.equals(Buffer.from(ref.hmac, 'hex'))) fail(`prf HMAC-SHA-256 differs from ${reference}'s`);
  against = `; against ${reference} (node ${ref.version}, ${ref.libc}): DH 2048 secret agrees, prf = its HMAC-SHA-256`;
}
console.log(`check-prebuild: ${path.basename(path.dirname(file))}/${path.basename(file)} on ${process.platform}-${process.arch}, node ${process.version}: DH 2048 agrees, prf = node:crypto HMAC-SHA-256${against}`);
