// Shared by the ESP tests: which implementations to run, vector loading, small builders.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createEspSa, espKeyLengths, nativeEsp, type EspAlgorithm, type EspSa, type EspSaParams } from '../../ts/esp/index.js';
import { NativeEspSa } from '../../ts/esp/native-esp.js';
import { resolveEspParams } from '../../ts/esp/params.js';
import { nativeTestAddon, nativeTestLoadError, type NativeTestAddon } from '../../ts/native.js';

// dist/test/esp/*.js -> <root>/test/vectors/esp
const vectorDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'vectors', 'esp');

export function loadVector<T = any>(name: string): T {
  return JSON.parse(readFileSync(path.join(vectorDir, name), 'utf8')) as T;
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex');

export type Impl = 'native' | 'node';
/** Both implementations. The native one must load unless IKE_NO_NATIVE=1 (then its tests are skipped, saying so). */
export const IMPLS: Impl[] = ['native', 'node'];
export function skipFor(impl: Impl): string | false {
  if (impl === 'native' && process.env.IKE_NO_NATIVE === '1') return 'IKE_NO_NATIVE=1: native addon disabled';
  if (impl === 'native' && nativeEsp() === null) throw new Error('native addon did not load: the ESP native path cannot be tested');
  return false;
}

/**
 * The test build of the addon (benchmark and fault-injection hooks). It must load whenever the native addon is
 * tested: `npm install` / `npm run build:native` build both. Call it inside tests that skipFor('native').
 */
export function testHooks(): NativeTestAddon {
  const a = nativeTestAddon();
  if (a === null) throw new Error(`the test build of the addon did not load: ${nativeTestLoadError()?.message.split('\n')[0]}`);
  return a;
}

/** `hooks`: native SAs of the addon's test build, so that its hooks (espFailNextWarms) act on them. */
export function saPair(
  algorithm: EspAlgorithm,
  opts: Partial<EspSaParams> & { outImpl?: Impl; inImpl?: Impl; hooks?: NativeTestAddon } = {},
): { out: EspSa; in: EspSa; keymat: Buffer } {
  const g = espKeyLengths(algorithm);
  const keymat = opts.keymat ? Buffer.from(opts.keymat) : Buffer.alloc(g.keymatLength);
  if (!opts.keymat) for (let i = 0; i < keymat.length; i++) keymat[i] = (i * 37 + 11) & 0xff;
  const { outImpl: o, inImpl: i, hooks, ...rest } = opts;
  const outImpl = o ?? i ?? 'native';
  const inImpl = i ?? outImpl;
  const base = { spi: 0xc0ffee01, algorithm, allowInsecureForTests: true, keymat, ...rest };
  const make = (p: EspSaParams): EspSa =>
    hooks && p.implementation === 'native' ? new NativeEspSa(hooks, resolveEspParams(p)) : createEspSa(p);
  return {
    out: make({ ...base, direction: 'outbound', implementation: outImpl }),
    in: make({ ...base, direction: 'inbound', implementation: inImpl }),
    keymat,
  };
}

/** Deterministic pseudo-random bytes (xorshift) so that failures reproduce. */
export function prng(seed: number): (n: number) => Buffer {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      b[i] = x & 0xff;
    }
    return b;
  };
}
