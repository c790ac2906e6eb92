#!/usr/bin/env node
// `npm pack` / `npm publish` (package.json "prepack"): what the tarball carries must exist first. In a fresh
// clone nothing is installed yet, so the build tools (typescript, prebuildify, node-gyp: devDependencies) are
// installed without running the package's own install step; then dist/ is compiled and the prebuilt addons
// are made (scripts/prebuild.mjs).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`prepack: ${cmd} ${args.join(' ')} failed (exit ${r.status})\n`);
    process.exit(1);
  }
};
const installed = ['typescript', 'prebuildify', 'node-gyp'].every((m) => existsSync(path.join(root, 'node_modules', m, 'package.json')));
if (!installed) run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund']);
run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
if (process.env.IKE_SKIP_PREBUILD !== '1') run(process.execPath, [path.join(root, 'scripts', 'prebuild.mjs')]);
