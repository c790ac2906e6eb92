// The crypto layer's public API: the CryptoProvider interface, its two implementations and algorithm facts.
import { nativeCrypto } from './native.js';
import { nodeCrypto } from './node.js';
import type { CryptoProvider } from './types.js';

export type * from './types.js';
export * from './algorithms.js';
export { nativeCrypto } from './native.js';
export { nodeCrypto } from './node.js';

/** The provider the engine uses unless told otherwise: the addon if it loaded, else node:crypto. */
export function defaultCrypto(): CryptoProvider {
  return nativeCrypto ?? nodeCrypto;
}

/** defaultCrypto(), resolved once at import. */
export const crypto: CryptoProvider = defaultCrypto();
