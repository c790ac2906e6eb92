// Small typed readers for a JSON document. Each records a one-line error naming the key path and returns
// undefined, so that validation goes on and the user sees every problem of the file at once.

export class Problems {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  error(path: string, problem: string): undefined {
    this.errors.push(`${path}: ${problem}`);
    return undefined;
  }
  warn(path: string, problem: string): void {
    this.warnings.push(`${path}: ${problem}`);
  }
}

export type Json = Record<string, unknown>;

/** "got ..." text for a wrong value. Secrets pass secret=true and are described by type only. */
export function got(v: unknown, secret = false): string {
  if (v === null) return 'got null';
  if (Array.isArray(v)) return 'got an array';
  if (typeof v === 'object') return 'got an object';
  if (secret) return `got a ${typeof v}`;
  const text = JSON.stringify(v) ?? String(v);
  return `got ${text.length > 60 ? text.slice(0, 57) + '...' : text}`;
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  // Close enough to be a typo: up to a third of the word (at least 2 edits), but never most of the word.
  return best !== undefined && bestD <= Math.max(2, Math.ceil(word.length / 3)) && bestD < word.length ? best : undefined;
}

/** "_comment" is allowed everywhere (JSON has no comments); any other unknown key is an error. */
export function checkKeys(p: Problems, path: string, obj: Json, known: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (k === '_comment' || known.includes(k)) continue;
    const hint = closest(k, known);
    p.error(join(path, k), `unknown key${hint ? ` (did you mean '${hint}'?)` : ''}; known keys: ${known.join(', ')}`);
  }
}

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

export function object(p: Problems, path: string, v: unknown): Json | undefined {
  return isObject(v) ? v : p.error(path, `must be an object, ${got(v)}`);
}

export function string(p: Problems, path: string, v: unknown, secret = false): string | undefined {
  if (typeof v !== 'string') return p.error(path, `must be a string, ${got(v, secret)}`);
  if (v.trim() === '') return p.error(path, 'must not be empty');
  return v;
}

export function boolean(p: Problems, path: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') return p.error(path, `must be true or false, ${got(v)}`) ?? fallback;
  return v;
}

export function integer(p: Problems, path: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    return p.error(path, `must be an integer ${min}-${max}, ${got(v)}`) ?? fallback;
  }
  return v;
}

export function oneOf<T extends string>(p: Problems, path: string, v: unknown, choices: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
  const hint = typeof v === 'string' ? closest(v, choices) : undefined;
  return p.error(path, `must be one of ${choices.map((c) => `'${c}'`).join(', ')}, ${got(v)}${hint ? ` (did you mean '${hint}'?)` : ''}`) ?? fallback;
}

/** A string or an array of strings -> [path, text] pairs; an empty list is an error. */
export function stringList(p: Problems, path: string, v: unknown): Array<[string, string]> | undefined {
  if (typeof v === 'string') return [[path, v]];
  if (!Array.isArray(v)) return p.error(path, `must be a string or an array of strings, ${got(v)}`);
  if (v.length === 0) return p.error(path, 'must not be empty');
  const out: Array<[string, string]> = [];
  v.forEach((x, i) => {
    const s = string(p, `${path}[${i}]`, x);
    if (s !== undefined) out.push([`${path}[${i}]`, s]);
  });
  return out;
}
