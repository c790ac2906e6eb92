// The shape rules of the project (DESIGN.md): no file in ts/ over 600 lines, no function over 80. A function
// is found by its declaration line (a function, a method, an accessor or a constructor ending in `{`) and ends
// at the first line that closes it at the same indentation: the sources are formatted, so that is enough.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX_FILE_LINES = 600;
const MAX_FUNCTION_LINES = 80;
// dist/test/structure -> the package root
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const DECLARATION = /^(\s*)(export )?(default )?(async )?(function\*?\s+[\w$]+|((private|public|protected|static|readonly|async|get|set|override) )*\*?[\w$#]+\s*(<[^>]*>)?\()/;
const NOT_A_DECLARATION = /^\s*(if|for|while|switch|catch|return|else|do|try)\b/;

/** [name, first line, length] of each function longer than `max` lines. */
function longFunctions(text: string, max: number): [string, number, number][] {
  const lines = text.split('\n');
  const long: [string, number, number][] = [];
  lines.forEach((line, i) => {
    const m = DECLARATION.exec(line);
    if (!m || !line.trimEnd().endsWith('{') || NOT_A_DECLARATION.test(line)) return;
    const indent = m[1]!;
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.startsWith(indent + '}') && l.trim().length <= 3) {
        if (j - i + 1 > max) long.push([line.trim().slice(0, 60), i + 1, j - i + 1]);
        return;
      }
    }
  });
  return long;
}

test('the scanner finds a long function and passes a short one', () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `    const x${i} = ${i};`).join('\n');
  const text = `export function short(): void {\n${body(3)}\n}\nclass A {\n  private long(a: number): number {\n${body(90)}\n    return a;\n  }\n}\n`;
  assert.deepEqual(longFunctions(text, MAX_FUNCTION_LINES).map(([, line, n]) => [line, n]), [[7, 93]]);
});

test(`no file in ts/ over ${MAX_FILE_LINES} lines, no function over ${MAX_FUNCTION_LINES}`, () => {
  const problems: string[] = [];
  for (const file of sources(path.join(root, 'ts'))) {
    const text = readFileSync(file, 'utf8');
    const rel = path.relative(root, file);
    const n = text.split('\n').length;
    if (n > MAX_FILE_LINES) problems.push(`${rel}: ${n} lines`);
    for (const [name, line, len] of longFunctions(text, MAX_FUNCTION_LINES)) problems.push(`${rel}:${line}: ${name} is ${len} lines`);
  }
  assert.deepEqual(problems, [], `split these into rooms / functions with one job each:\n${problems.join('\n')}`);
});
