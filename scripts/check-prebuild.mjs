#!/usr/bin/env node
// Loads one addon binary (a prebuilt one, possibly of another architecture under qemu-user) and checks that it
// computes: a MODP 2048 Diffie-Hellman between two of its own keys agrees, and its HMAC-SHA-256 prf equals
// node:crypto's. Plain JavaScript with no
// dependency, so that it runs on the node of the binary's platform:
//   node scripts/check-prebuild.mjs prebuilds/linux-x64/ikev1_native.glibc.node
//   qemu-aarch64 -L ROOT ROOT/usr/bin/node scripts/check-prebuild.mjs prebuilds/linux-arm64/ikev1_native.glibc.node
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import path from 'node:path';

const file = path.resolve(process.argv[2] ?? '');
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
console.log(`check-prebuild: ${path.basename(path.dirname(file))}/${path.basename(file)} on ${process.platform}-${process.arch}, node ${process.version}: DH 2048 agrees, prf = node:crypto HMAC-SHA-256`);
