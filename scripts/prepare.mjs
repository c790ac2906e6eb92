#!/usr/bin/env node
// package.json "prepare" (after `npm install` in a clone, and in `npm pack`): compiles dist/ with tsc. When
// typescript is not installed (`npm pack` in a fresh clone runs prepack first, which installs it; an install
// with --omit=dev has no use for it) it says so and does nothing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  process.stderr.write('prepare: typescript is not installed; dist/ not compiled (npm install, or npm run build)\n');
} else {
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}
