// Helpers for data attributes (RFC 2408 3.3): TV (AF=1, 16-bit value) and TLV (AF=0, variable value).

import { IsakmpEncodeError } from './errors.js';
import type { Attribute, Transform } from './types.js';

/** TV attribute (value 0..65535). */
export function tv(type: number, value: number): Attribute {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new IsakmpEncodeError(`TV attribute ${type}: value ${value} does not fit 16 bits`);
  return { type, value };
}

/** TLV attribute with the given bytes. */
export function tlv(type: number, value: Uint8Array): Attribute {
  return { type, value: Buffer.isBuffer(value) ? value : Buffer.from(value) };
}

/**
 * A variable-length integer attribute such as a life duration (RFC 2409 App. A "B/V", RFC 2407 4.5):
 * TV if it fits 16 bits, else a 4-byte TLV, else an 8-byte TLV.
 */
export function lifeValueAttr(type: number, n: number | bigint): Attribute {
  // Lifetimes are written into every proposal we send: the common cases skip the BigInt arithmetic.
  if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff) {
    if (n <= 0xffff) return { type, value: n };
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n, 0);
    return { type, value: b };
  }
  const v = BigInt(n);
  if (v < 0n || v > 0xffffffffffffffffn) throw new IsakmpEncodeError(`attribute ${type}: value ${v} does not fit 64 bits`);
  if (v <= 0xffffn) return { type, value: Number(v) };
  if (v <= 0xffffffffn) {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(Number(v), 0);
    return { type, value: b };
  }
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(v, 0);
  return { type, value: b };
}

/**
 * Integer value of an attribute: the TV value, or a TLV of 1..8 bytes read big-endian (number when it is a
 * safe integer, else bigint). null for a TLV of 0 or more than 8 bytes (not an integer attribute).
 */
export function attrValue(attr: Attribute): number | bigint | null {
  const v = attr.value;
  if (typeof v === 'number') return v;
  if (v.length === 0 || v.length > 8) return null;
  if (v.length <= 6) return v.readUIntBE(0, v.length);
  let x = 0n;
  for (let i = 0; i < v.length; i++) x = (x << 8n) | BigInt(v[i]!);
  return x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
}

/** attrValue as a number, or null when absent, not an integer, or above Number.MAX_SAFE_INTEGER. */
export function attrNumber(attr: Attribute | undefined): number | null {
  if (attr === undefined) return null;
  const v = attrValue(attr);
  return typeof v === 'number' ? v : null;
}

/** First attribute of the given type in a list (or a transform), or undefined. */
export function findAttr(attrs: readonly Attribute[] | Transform, type: number): Attribute | undefined {
  const list = Array.isArray(attrs) ? (attrs as readonly Attribute[]) : (attrs as Transform).attributes;
  for (const a of list) if (a.type === type) return a;
  return undefined;
}
