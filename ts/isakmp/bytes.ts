// Comparison of short public byte strings (cookies, vendor IDs, NAT-D hashes, the situation field, addresses). For a few
// dozen bytes a loop here is several times cheaper than Buffer#equals, which calls into Node's binding, and the
// handshake path makes a few dozen such comparisons. Not for secrets: it returns at the first difference;
// hashes that prove something go through CryptoProvider.prfEqual / timingSafeEqual.

/** a and b hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** a begins with the bytes of prefix. */
export function startsWithBytes(a: Uint8Array, prefix: Uint8Array): boolean {
  if (a.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

/** Buffer.compare(a, b) (-1, 0, 1: byte by byte, then the shorter first), e.g. for the ends of address ranges. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) return a[k]! < b[k]! ? -1 : 1;
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
