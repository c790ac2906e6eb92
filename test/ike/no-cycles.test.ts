// No import cycle in ts/, type-only imports included (DESIGN.md: shared types live in leaf modules that
// import nothing of the exchanges). Reads the .ts sources, not the compiled output: tsc drops type-only
// imports, and those are cycles in the design all the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const tsRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../ts');

/** Every .ts file under dir, as absolute paths. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative modules a source imports or re-exports (`import ... from './x.js'`, `export ... from`, `import('./x.js')`). */
export function relativeImports(text: string): string[] {
  const found: string[] = [];
  // Statements may span lines (`import {\n a,\n b\n} from './x.js'`): match up to `from '...'`, stopping at a `;`.
  const fromRe = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.[^'"]+)['"]/g;
  const bareRe = /(?:^|\n)\s*import\s*['"](\.[^'"]+)['"]/g;
  const dynRe = /\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (const re of [fromRe, bareRe, dynRe]) {
    for (const m of text.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

function resolve(from: string, spec: string): string {
  const p = path.resolve(path.dirname(from), spec);
  if (p.endsWith('.js')) return p.slice(0, -3) + '.ts';
  if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) return path.join(p, 'index.ts');
  return p.endsWith('.ts') ? p : p + '.ts';
}

/** The import graph of ts/: file -> files it imports. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sources(tsRoot)) {
    g.set(f, [...new Set(relativeImports(readFileSync(f, 'utf8')).map((s) => resolve(f, s)))]);
  }
  return g;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.map((f) => path.relative(tsRoot, f)).sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

test('the import parser sees multi-line, type-only, re-export and side-effect imports', () => {
  const text = [
    "import {\n  a,\n  type B,\n} from './a.js';",
    "import type { C } from '../c/index.js';",
    "export * from './d.js';",
    "export { e } from './e.js';",
    "export type { F } from './f.js';",
    "import './g.js';",
    "import { h } from 'node:fs';",
    "const x = await import('./i.js');",
  ].join('\n');
  assert.deepEqual(relativeImports(text).sort(), ['../c/index.js', './a.js', './d.js', './e.js', './f.js', './g.js', './i.js']);
});

test('no import cycle in ts/ (type-only imports count)', () => {
  const g = graph();
  assert.ok(g.size > 50, `found only ${g.size} sources under ${tsRoot}`);
  for (const [f, deps] of g) {
    for (const d of deps) assert.ok(g.has(d), `${path.relative(tsRoot, f)} imports ${path.relative(tsRoot, d)}, which does not exist`);
  }
  const found = cycles(g);
  assert.deepEqual(found, [], `import cycles:\n${found.map((c) => '  ' + c.join(' <-> ')).join('\n')}`);
});
