// Shared by the crypto tests: vector loading and the list of providers every test runs against.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';

// dist/test/crypto/*.js -> <package root>/test/vectors (JSON is not compiled, so read it from the source tree)
const vectorsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'vectors');

export function loadVectors(file: string): any {
  return JSON.parse(readFileSync(path.join(vectorsDir, file), 'utf8'));
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** Both providers; the native one is skipped (with the reason) only if the addon failed to load. */
export const PROVIDERS: { name: string; p: CryptoProvider | null; skip: string | false }[] = [
  { name: 'native', p: nativeCrypto, skip: nativeCrypto ? false : 'native addon not loaded' },
  { name: 'node', p: nodeCrypto, skip: false },
];
