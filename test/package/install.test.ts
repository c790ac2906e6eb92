// The package as a user gets it: `npm pack` of this checkout (prepack compiles dist/ and makes the prebuilt
// addon), then `npm install <tarball>` into an empty project and a Main Mode + Quick Mode handshake between two
// gateways on loopback from that project, in three settings:
//   - no C++ compiler on PATH: the prebuilt addon is taken (native crypto);
//   - no compiler and the prebuilt binary refused (IKE_NO_PREBUILD=1): the install still succeeds, says once
//     that it runs on node:crypto, and the handshake works on node:crypto;
//   - a compiler and no prebuilt binary: a source build of the production addon only (no test hooks).
// Also: the tarball carries no tests and no node-gyp dependency. Needs npm's registry (or its cache) for the
// dependencies, as any install does.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'ike-install-'));
let tarball = '';

/** npm's own CLI script next to this node (npm is a node program: PATH needs only node for it). */
function npmCli(): string {
  const r = spawnSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' });
  const cli = r.stdout.trim();
  assert.ok(cli && existsSync(cli), 'npm not found');
  return cli;
}

/** A PATH with node, npm, sh and the coreutils npm's scripts use, and no compiler, make or python. */
function pathWithoutCompiler(): string {
  const bin = path.join(work, 'bin-nocc');
  mkdirSync(bin, { recursive: true });
  const link = (name: string, target: string) => existsSync(path.join(bin, name)) || symlinkSync(target, path.join(bin, name));
  link('node', process.execPath);
  writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli()}" "$@"\n`, { mode: 0o755 });
  for (const tool of ['sh', 'env', 'cat', 'ls', 'rm', 'mkdir', 'cp', 'mv', 'uname', 'readlink', 'dirname', 'git']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    if (r.status === 0) link(tool, r.stdout.trim());
  }
  for (const cc of ['g++', 'c++', 'gcc', 'cc', 'make', 'python3', 'python']) assert.ok(!existsSync(path.join(bin, cc)));
  return bin;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

const HANDSHAKE = `
import { Gateway, parseConfig } from 'ikev1-engine';
import { defaultCrypto } from 'ikev1-engine/crypto';
const port = 20000 + Math.floor(Math.random() * 20000);
const side = (l, r) => {
  const c = parseConfig({ listen: { address: '127.0.0.1', port: l, nattPort: l + 1 }, connections: { peer: {
    remote: '127.0.0.1', remotePort: r, remoteNattPort: r + 1, auth: { psk: 'tarball test' }, localId: '@' + l, remoteId: '@' + r,
    ike: ['aes128-sha256-modp2048'], initiate: l === port } } }, { baseDir: '.', env: {} });
  if (!c.ok) throw new Error(c.errors.join('; '));
  return new Gateway(c.config);
};
const r = side(port + 2, port), i = side(port, port + 2);
const up = new Promise((res, rej) => { i.on('child-up', res); i.on('error', (e) => rej(new Error(e.message))); setTimeout(() => rej(new Error('no child SA in 20 s')), 20000); });
await r.start(); await i.start();
const child = await up;
console.log(JSON.stringify({ crypto: defaultCrypto().name, proposal: child.proposal }));
await i.stop(); await r.stop();
`;

/** An empty project with the tarball installed in `env`; its install output. */
function installInto(name: string, env: NodeJS.ProcessEnv): { dir: string; out: string } {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, version: '1.0.0', type: 'module', private: true }));
  writeFileSync(path.join(dir, 'handshake.mjs'), HANDSHAKE);
  const r = run(process.execPath, [npmCli(), 'install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], dir, env);
  assert.equal(r.code, 0, r.out);
  return { dir, out: r.out };
}

function handshake(dir: string, env: NodeJS.ProcessEnv): { crypto: string; proposal: string } {
  const r = run(process.execPath, ['handshake.mjs'], dir, env);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out.trim().split('\n').find((l) => l.startsWith('{'))!) as { crypto: string; proposal: string };
}

before(() => {
  const r = run(process.execPath, [npmCli(), 'pack', '--pack-destination', work], root, process.env);
  assert.equal(r.code, 0, r.out);
  tarball = path.join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);
});

after(() => rmSync(work, { recursive: true, force: true }));

test('the tarball: dist, the prebuilt addons (musl ones with zig) and the install script; no tests, no node-gyp dependency', () => {
  const r = run('tar', ['-tzf', tarball], work, process.env);
  const files = r.out.split('\n').filter(Boolean);
  assert.ok(files.includes('package/dist/ts/index.js'));
  assert.ok(files.includes('package/scripts/install-native.mjs'));
  assert.ok(files.some((f) => /^package\/prebuilds\/linux-x64\/ikev1_native\.glibc\.node$/.test(f)) || process.arch !== 'x64', files.filter((f) => f.includes('prebuilds')).join(', '));
  // musl (x64 and arm64) whenever prepack's prebuild had zig (scripts/prebuild.mjs: $ZIG or zig on PATH)
  const zig = Boolean(process.env.ZIG) || spawnSync('sh', ['-c', 'command -v zig'], { stdio: 'ignore' }).status === 0;
  for (const arch of ['x64', 'arm64']) {
    assert.ok(!zig || files.includes(`package/prebuilds/linux-${arch}/ikev1_native.musl.node`), `zig is there, no linux-${arch} musl prebuild: ${files.filter((f) => f.includes('prebuilds')).join(', ')}`);
  }
  assert.deepEqual(files.filter((f) => f.startsWith('package/dist/test/') || f.startsWith('package/test/')), []);
  const pkg = JSON.parse(run('tar', ['-xzOf', tarball, 'package/package.json'], work, process.env).out) as { dependencies: Record<string, string> };
  assert.ok(!('node-gyp' in pkg.dependencies));
});

test('no compiler: the prebuilt addon is installed and used', () => {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathWithoutCompiler() };
  delete env.npm_config_node_gyp;
  const { dir, out } = installInto('prebuilt', env);
  assert.match(out, /ikev1-engine: using the prebuilt addon prebuilds\/linux-/);
  assert.ok(!existsSync(path.join(dir, 'node_modules', 'ikev1-engine', 'build')), 'nothing compiled');
  assert.equal(handshake(dir, env).crypto, 'native');
});

test('no compiler and no prebuilt binary: the install succeeds and the engine runs on node:crypto', () => {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathWithoutCompiler(), IKE_NO_PREBUILD: '1' };
  delete env.npm_config_node_gyp;
  const { dir, out } = installInto('fallback', env);
  assert.match(out, /the engine runs on node:crypto .* install python3, make and g\+\+, then run: npm rebuild ikev1-engine/);
  // the prebuilt binary stays in the package but is refused here: take it away for the run as well
  rmSync(path.join(dir, 'node_modules', 'ikev1-engine', 'prebuilds'), { recursive: true, force: true });
  const r = handshake(dir, env);
  assert.equal(r.crypto, 'node');
  assert.match(r.proposal, /^aes/);
});

test('a compiler and no prebuilt binary: the production addon is built from source', () => {
  const env = { ...process.env, IKE_NO_PREBUILD: '1' };
  const { dir, out } = installInto('source', env);
  assert.match(out, /built the addon from source/);
  const release = path.join(dir, 'node_modules', 'ikev1-engine', 'build', 'Release');
  assert.ok(existsSync(path.join(release, 'ikev1_native.node')));
  assert.ok(!existsSync(path.join(release, 'ikev1_native_test.node')), 'no test hooks in an installed package');
  assert.equal(handshake(dir, env).crypto, 'native');
});
