#!/usr/bin/env node
// The package's install step (package.json "install"): makes the C++ addon available, in this order:
//   1. a prebuilt binary of the package (prebuilds/<platform>-<arch>/, made by `npm run prebuild` with
//      prebuildify; node-gyp-build picks the one for this platform, arch and libc) that loads here;
//   2. a source build with node-gyp (npm's own, or the one on PATH), which needs python3, make and a C++
//      compiler;
//   3. neither: the engine runs on node:crypto (slower DH and ESP, no TUN data plane), and says so once here.
// In a clone of the repository (test/ exists) the source build comes first and builds the test binary too, so
// that a developer's change to native/ is what runs; IKE_NATIVE_REQUIRED=1 (CI) makes a failed build fatal.
// Never a stack trace: one line per outcome on stderr.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const clone = existsSync(path.join(root, 'test'));
const required = process.env.IKE_NATIVE_REQUIRED === '1';
const say = (line) => process.stderr.write(`ikev1-engine: ${line}\n`);

/** Does this binary load in a fresh process (the right libc, arch and N-API version)? */
function loads(file) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  return r.status === 0;
}

function prebuilt() {
  if (process.env.IKE_NO_PREBUILD === '1') return null;
  try {
    const file = require('node-gyp-build').resolve(root);
    return file.includes(`${path.sep}prebuilds${path.sep}`) && loads(file) ? file : null;
  } catch {
    return null; // none for this platform
  }
}

/** node-gyp: npm's own (npm_config_node_gyp, set for install scripts), else a local or global one. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  for (const c of candidates) if (c && existsSync(c)) return [process.execPath, c];
  return ['node-gyp'];
}

function sourceBuild() {
  const [cmd, ...pre] = nodeGyp();
  const env = { ...process.env };
  // an installed package builds only what the engine loads (no test hooks)
  if (!clone) env.IKE_PRODUCTION_BUILD = '1';
  const r = spawnSync(cmd, [...pre, 'rebuild', '-j', 'max'], { cwd: root, env, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (r.status === 0) return { ok: true };
  const err = `${r.error?.message ?? ''}\n${r.stderr ?? ''}`;
  if (r.stderr) process.stderr.write(r.stderr);
  const why = /ENOENT/.test(err) && r.error
    ? 'node-gyp was not found'
    : /not found: (make|g\+\+|c\+\+|cc)|make: .*(c\+\+|g\+\+).*No such file|Can't find Python|could not find any Python|gyp ERR! find Python/i.test(err)
      ? 'no C++ toolchain (python3, make and g++ are needed)'
      : `node-gyp failed (exit ${r.status})`;
  return { ok: false, why };
}

function main() {
  if (!clone) {
    const file = prebuilt();
    if (file) {
      say(`using the prebuilt addon ${path.relative(root, file)}`);
      return 0;
    }
  }
  const built = sourceBuild();
  if (built.ok) {
    if (!clone) say('built the addon from source (no prebuilt binary for this platform)');
    return 0;
  }
  if (required) {
    say(`the addon did not build: ${built.why}; IKE_NATIVE_REQUIRED=1 makes that fatal`);
    return 1;
  }
  say(
    `no prebuilt addon for ${process.platform}-${process.arch} and the source build failed (${built.why}): ` +
      'the engine runs on node:crypto (slower DH and ESP, no TUN data plane). For the addon, install python3, ' +
      'make and g++, then run: npm rebuild ikev1-engine',
  );
  return 0;
}

process.exitCode = main();
