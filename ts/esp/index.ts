// ESP data path (RFC 4303): SA objects with batch seal/open, over the native addon or node:crypto.
import { nativeAddon } from '../native.js';
import { NativeEspSa, type NativeEspAddon } from './native-esp.js';
import { NodeEspSa } from './node-esp.js';
import { resolveEspParams } from './params.js';
import type { EspSa, EspSaParams } from './types.js';

export * from './types.js';
export { espKeyLengths, splitEspKeymat, espKeymatViews, isEspAlgorithm, ESP_ALGORITHMS, type EspKeyLengths } from './algorithms.js';
export { NodeEspSa } from './node-esp.js';
export { NativeEspSa } from './native-esp.js';
export { MAX_REPLAY_WINDOW } from './replay.js';

/** The addon's ESP part, or null when the addon is not loaded. */
export function nativeEsp(): NativeEspAddon | null {
  const a = nativeAddon();
  return a && typeof a.EspSa === 'function' ? a : null;
}

/**
 * Creates one unidirectional ESP SA. `implementation: 'auto'` (default) uses the native addon when it loads and
 * node:crypto otherwise; 'native' throws if the addon is missing. Bad parameters throw TypeError / RangeError.
 */
export function createEspSa(params: EspSaParams): EspSa {
  const p = resolveEspParams(params);
  const which = params.implementation ?? 'auto';
  if (which !== 'auto' && which !== 'native' && which !== 'node') {
    throw new TypeError("implementation must be 'auto', 'native' or 'node'");
  }
  if (which !== 'node') {
    const addon = nativeEsp();
    if (addon) return new NativeEspSa(addon, p);
    if (which === 'native') throw new Error('the native addon is not loaded (see nativeLoadError())');
  }
  return new NodeEspSa(p);
}

/** Lays out a seal batch: output offsets packed one after another, each after `headroom` free octets. */
export function layoutSealBatch(
  sa: EspSa,
  lengths: Uint32Array,
  outOffsets: Uint32Array,
  headroom = 0,
  count = lengths.length,
): number {
  let pos = 0;
  for (let i = 0; i < count; i++) {
    pos += headroom;
    outOffsets[i] = pos;
    pos += sa.sealedLength(lengths[i]!);
  }
  return pos;
}
export { classifyNatTDatagram, espSpiOf, NON_ESP_MARKER } from './udp-encap.js';
