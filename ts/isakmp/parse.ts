// Parsing: bytes -> typed message. Never throws, never reads outside the input, never allocates from an
// unchecked length: every length field is compared with the bytes actually left before it is used, and
// payload bodies are subarrays of the input (no copies). All Buffers in the result are views into the input.

import {
  DOI,
  ExchangeType,
  Flags,
  ISAKMP_HEADER_LENGTH,
  KNOWN_FLAGS_MASK,
  NotifyType,
  PayloadType,
  Situation,
} from './constants.js';
import { codecError, payloadName } from './errors.js';
import {
  MAX_DELETE_SPIS,
  MAX_MODECFG_ATTRIBUTES,
  MAX_PAYLOADS,
  MAX_PROPOSALS,
  MAX_TRANSFORM_ATTRIBUTES,
  MAX_TRANSFORMS,
} from './limits.js';
import type {
  Attribute,
  CodecError,
  CodecResult,
  EncryptedMessage,
  IsakmpHeader,
  ParsedMessage,
  Payload,
  Proposal,
  Transform,
  UnknownPayloadType,
} from './types.js';

export interface ParseOptions {
  /**
   * What may follow the last payload (next payload = NONE) inside the body:
   * - 'any'   (default of parsePayloads, for decrypted bodies): any bytes; RFC 2409 pads the plaintext
   *           to the cipher block size, with zeros (strongSwan) or with a pad-length last byte.
   * - 'zeros' (default of parseMessage for clear messages): only zero bytes (tolerates peers that pad).
   * - 'none': nothing.
   * - 'padding' (decrypted CBC bodies, with `blockSize`): fewer than blockSize bytes: anything (the sender's
   *   padding up to the block); blockSize bytes or more: zeros, the last byte may hold a pad count (RFC 2409
   *   style). IKEv1 does not authenticate the padding, so without this an on-path attacker could append a
   *   cipher block to a genuine message: HASH still verifies, and the receiver would chain its next IV on the
   *   forged block. Such a block decrypts to random bytes and is refused here. strongSwan pads 1..blockSize
   *   zero bytes, Libreswan and this engine 0..blockSize-1: both pass.
   */
  trailing?: 'any' | 'zeros' | 'none' | 'padding';
  /** Cipher block size for trailing: 'padding' (required then). */
  blockSize?: number;
  /**
   * Payload types this codec does not interpret (GDOI 15-19/22, unassigned 23-127, private 128-255 other
   * than 130-132):
   * - 'keep' (default): kept as UnknownPayload and skipped by the state machines, unless the peer set the
   *   critical bit (0x80 of the RESERVED octet, as in IKEv2 and as strongSwan reads it) -> INVALID_PAYLOAD_TYPE.
   * - 'reject': RFC 2408 5.3 read literally: any such type -> INVALID_PAYLOAD_TYPE.
   * Proposal (2) and Transform (3) are never valid in a payload chain -> INVALID_PAYLOAD_TYPE.
   */
  unknownPayloads?: 'keep' | 'reject';
}

/** Internal failure marker: parsing helpers return a value or a Fail (cheaper than result wrappers). */
class Fail {
  constructor(readonly error: CodecError) {}
}
function bad(notifyType: number, offset: number, message: string): Fail {
  return new Fail(codecError(notifyType, offset, message));
}
const MALFORMED = NotifyType.PAYLOAD_MALFORMED;
const BAD_PROPOSAL = NotifyType.BAD_PROPOSAL_SYNTAX;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
function u16(b: Buffer, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function u32(b: Buffer, o: number): number {
  return b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

const KNOWN_EXCHANGES = new Set<number>(Object.values(ExchangeType).filter((v) => v !== 0));

/** Zero-length slices share one empty Buffer: a subarray costs ~50 ns and SPIs / attribute values are often empty. */
const EMPTY = Buffer.alloc(0);
function slice(b: Buffer, s: number, e: number): Buffer {
  return s === e ? EMPTY : b.subarray(s, e);
}

function isAllZero(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Parses and checks the 28-byte ISAKMP header (RFC 2408 3.1, checks of 5.2): major version 1, minor 0 or 1,
 * a defined exchange type, only the E/C/A flags, a non-zero initiator cookie, 28 <= length <= bytes.length.
 * A datagram longer than the length field is accepted (the extra bytes are ignored): old Cisco clients append
 * 16 zero bytes to encrypted messages, and Libreswan accepts that too.
 */
export function parseHeader(bytes: Uint8Array): CodecResult<IsakmpHeader> {
  try {
    const r = header(asBuffer(bytes));
    return r instanceof Fail ? { ok: false, error: r.error } : { ok: true, value: r };
  } catch (e) {
    return internalError(e);
  }
}

function header(b: Buffer): IsakmpHeader | Fail {
  if (b.length < ISAKMP_HEADER_LENGTH) {
    return bad(MALFORMED, 0, `ISAKMP header at offset 0: message of ${b.length} bytes is shorter than the 28-byte header`);
  }
  const version = b[17]!;
  if (version >> 4 !== 1) {
    return bad(NotifyType.INVALID_MAJOR_VERSION, 17, `ISAKMP header at offset 0: major version ${version >> 4} (version octet 0x${version.toString(16).padStart(2, '0')}), only IKEv1 (1) is supported`);
  }
  if ((version & 0x0f) > 1) {
    return bad(NotifyType.INVALID_MINOR_VERSION, 17, `ISAKMP header at offset 0: minor version ${version & 0x0f}, expected 0 (or 1 from pre-RFC implementations)`);
  }
  const exchangeType = b[18]!;
  if (!KNOWN_EXCHANGES.has(exchangeType)) {
    return bad(NotifyType.INVALID_EXCHANGE_TYPE, 18, `ISAKMP header at offset 0: exchange type ${exchangeType} is not defined for IKEv1`);
  }
  const flags = b[19]!;
  if ((flags & ~KNOWN_FLAGS_MASK) !== 0) {
    return bad(NotifyType.INVALID_FLAGS, 19, `ISAKMP header at offset 0: flags 0x${flags.toString(16).padStart(2, '0')} set undefined bits (only E=1, C=2, A=4 exist)`);
  }
  if (isAllZero(b, 0, 8)) {
    return bad(NotifyType.INVALID_COOKIE, 0, 'ISAKMP header at offset 0: initiator cookie is zero');
  }
  const length = u32(b, 24);
  if (length < ISAKMP_HEADER_LENGTH) {
    return bad(MALFORMED, 24, `ISAKMP header at offset 0: length field ${length} is less than the 28-byte header`);
  }
  if (length > b.length) {
    return bad(NotifyType.UNEQUAL_PAYLOAD_LENGTHS, 24, `ISAKMP header at offset 0: length field ${length} exceeds the ${b.length} bytes received`);
  }
  return {
    initiatorCookie: b.subarray(0, 8),
    responderCookie: b.subarray(8, 16),
    nextPayload: b[16]!,
    version,
    exchangeType,
    flags,
    messageId: u32(b, 20),
    length,
  };
}

/**
 * Parses a whole message. Without the E flag the payload chain is parsed (trailing bytes after the chain:
 * zeros only, unless options.trailing says otherwise). With the E flag the body (bytes 28 .. header.length)
 * is returned still encrypted; decrypt it and call parsePayloads(header.nextPayload, plaintext, 28).
 * Exception: a message whose first payload is a Fragment (132) is parsed in clear even with the E flag.
 */
export function parseMessage(bytes: Uint8Array, options?: ParseOptions): CodecResult<ParsedMessage | EncryptedMessage> {
  try {
    const b = asBuffer(bytes);
    const h = header(b);
    if (h instanceof Fail) return { ok: false, error: h.error };
    // racoon sets the E flag on IKE fragments although the Fragment payload itself travels in clear (the
    // fragments carry pieces of the encrypted message); strongSwan parses such messages in clear, so do we.
    if ((h.flags & Flags.ENCRYPTION) !== 0 && h.nextPayload !== PayloadType.FRAGMENT) {
      if (h.length === ISAKMP_HEADER_LENGTH) {
        return { ok: false, error: codecError(MALFORMED, 28, 'ISAKMP message at offset 0: E flag set but the encrypted body is empty') };
      }
      return { ok: true, value: { header: h, encrypted: b.subarray(ISAKMP_HEADER_LENGTH, h.length) } };
    }
    const payloads = chain(b, ISAKMP_HEADER_LENGTH, h.length, h.nextPayload, 0, options?.trailing ?? 'zeros', options?.unknownPayloads ?? 'keep');
    if (payloads instanceof Fail) return { ok: false, error: payloads.error };
    return { ok: true, value: { header: h, payloads } };
  } catch (e) {
    return internalError(e);
  }
}

/**
 * Parses a payload chain that starts with a payload of type `firstPayloadType` (typically a decrypted body:
 * header.nextPayload, plaintext). `baseOffset` is added to the offsets in errors (28 for a message body).
 * Trailing bytes after the chain are accepted by default (padding of encrypted bodies).
 */
export function parsePayloads(firstPayloadType: number, body: Uint8Array, baseOffset = 0, options?: ParseOptions): CodecResult<Payload[]> {
  try {
    const b = asBuffer(body);
    const trailing = options?.trailing ?? 'any';
    const r = chain(b, 0, b.length, firstPayloadType, baseOffset, trailing, options?.unknownPayloads ?? 'keep', options?.blockSize ?? 0);
    return r instanceof Fail ? { ok: false, error: r.error } : { ok: true, value: r };
  } catch (e) {
    return internalError(e);
  }
}

// Safety net only: the parser is written so that nothing throws (the fuzz tests check that this path is never
// taken); if it ever did, a remote packet must not crash the gateway.
function internalError(e: unknown): { ok: false; error: CodecError } {
  return { ok: false, error: codecError(MALFORMED, 0, `internal parser error: ${e instanceof Error ? e.message : String(e)}`) };
}

function chain(
  b: Buffer,
  start: number,
  end: number,
  first: number,
  base: number,
  trailing: 'any' | 'zeros' | 'none' | 'padding',
  unknown: 'keep' | 'reject',
  blockSize = 0,
): Payload[] | Fail {
  const out: Payload[] = [];
  let type = first;
  let pos = start;
  while (type !== 0) {
    const at = base + pos;
    if (out.length >= MAX_PAYLOADS) {
      return bad(MALFORMED, at, `${payloadName(type)} payload at offset ${at}: more than ${MAX_PAYLOADS} payloads in one message`);
    }
    const left = end - pos;
    if (left < 4) {
      return bad(MALFORMED, at, `${payloadName(type)} payload at offset ${at}: only ${left} bytes left, less than the 4-byte payload header`);
    }
    const next = b[pos]!;
    const len = u16(b, pos + 2);
    if (len < 4) {
      return bad(MALFORMED, at + 2, `${payloadName(type)} payload at offset ${at}: payload length ${len} is less than its 4-byte header`);
    }
    if (len > left) {
      return bad(MALFORMED, at + 2, `${payloadName(type)} payload at offset ${at}: payload length ${len} exceeds the ${left} bytes left`);
    }
    const p = payload(b, type, pos, pos + len, base, unknown);
    if (p instanceof Fail) return p;
    out.push(p);
    pos += len;
    type = next;
  }
  if (trailing === 'padding') {
    // a whole block or more of padding: zeros only (the last byte may be a pad count); see ParseOptions
    if (!(blockSize > 0) || (end - pos >= blockSize && !isAllZero(b, pos, end - 1))) {
      return bad(NotifyType.UNEQUAL_PAYLOAD_LENGTHS, base + pos, `message at offset ${base + pos}: ${end - pos} bytes of padding after the last payload, a whole ${blockSize}-byte block or more and not zeros (a forged appended block?)`);
    }
  } else if (pos < end && trailing !== 'any') {
    if (trailing === 'none' || !isAllZero(b, pos, end)) {
      return bad(NotifyType.UNEQUAL_PAYLOAD_LENGTHS, base + pos, `message at offset ${base + pos}: ${end - pos} bytes follow the last payload (${trailing === 'none' ? 'none allowed' : 'only zero padding allowed'})`);
    }
  }
  return out;
}

/** Parses one payload whose generic header starts at `s` and which ends at `e` (both checked by chain). */
function payload(b: Buffer, type: number, s: number, e: number, base: number, unknown: 'keep' | 'reject'): Payload | Fail {
  const raw = b.subarray(s, e);
  const body = s + 4;
  const n = e - body; // body length
  const at = base + s;
  switch (type) {
    case 1:
      return sa(b, s, e, base, raw);
    case 4:
      return { type: 4, data: b.subarray(body, e), raw };
    case 5:
      if (n < 4) return shortBody(type, at, n, 4, 'ID type, protocol and port');
      return { type: 5, idType: b[body]!, protocolId: b[body + 1]!, port: u16(b, body + 2), data: b.subarray(body + 4, e), raw };
    case 6:
    case 7:
      if (n < 1) return shortBody(type, at, n, 1, 'the encoding octet');
      return { type, encoding: b[body]!, data: b.subarray(body + 1, e), raw } as Payload;
    case 8:
    case 9:
    case 10:
    case 13:
      return { type, data: b.subarray(body, e), raw } as Payload;
    case 11: {
      if (n < 8) return shortBody(type, at, n, 8, 'DOI, protocol, SPI size and notify type');
      const spiSize = b[body + 5]!;
      if (spiSize > n - 8) {
        return bad(MALFORMED, at + 9, `Notification payload at offset ${at}: SPI size ${spiSize} exceeds the ${n - 8} bytes left`);
      }
      return {
        type: 11,
        doi: u32(b, body),
        protocolId: b[body + 4]!,
        notifyType: u16(b, body + 6),
        spi: slice(b, body + 8, body + 8 + spiSize),
        data: slice(b, body + 8 + spiSize, e),
        raw,
      };
    }
    case 12: {
      if (n < 8) return shortBody(type, at, n, 8, 'DOI, protocol, SPI size and SPI count');
      const spiSize = b[body + 5]!;
      const count = u16(b, body + 6);
      if (count > MAX_DELETE_SPIS) {
        return bad(MALFORMED, at + 10, `Delete payload at offset ${at}: ${count} SPIs exceed the cap of ${MAX_DELETE_SPIS}`);
      }
      if (spiSize * count !== n - 8) {
        return bad(MALFORMED, at + 10, `Delete payload at offset ${at}: ${count} SPIs of ${spiSize} bytes need ${spiSize * count} bytes but ${n - 8} are present`);
      }
      const spis: Buffer[] = new Array(count);
      for (let i = 0, o = body + 8; i < count; i++, o += spiSize) spis[i] = slice(b, o, o + spiSize);
      return { type: 12, doi: u32(b, body), protocolId: b[body + 4]!, spiSize, spis, raw };
    }
    case 14: {
      if (n < 4) return shortBody(type, at, n, 4, 'type, reserved and identifier');
      const attributes = attrs(b, body + 4, e, base, MAX_MODECFG_ATTRIBUTES, at, -1);
      if (attributes instanceof Fail) return attributes;
      return { type: 14, cfgType: b[body]!, identifier: u16(b, body + 2), attributes, raw };
    }
    case 20:
    case 130:
      return { type, data: b.subarray(body, e), raw };
    case 21:
    case 131:
      if (n < 4) return shortBody(type, at, n, 4, 'ID type and reserved');
      return { type, idType: b[body]!, data: b.subarray(body + 4, e), raw };
    case 132:
      if (n < 4) return shortBody(type, at, n, 4, 'fragment ID, number and flags');
      return { type: 132, fragmentId: u16(b, body), fragmentNumber: b[body + 2]!, flags: b[body + 3]!, data: b.subarray(body + 4, e), raw };
    default: {
      const critical = (b[s + 1]! & 0x80) !== 0;
      if (type === 2 || type === 3) {
        return bad(NotifyType.INVALID_PAYLOAD_TYPE, at, `${payloadName(type)} payload at offset ${at}: only valid inside an SA payload, not in the payload chain`);
      }
      if (type === 0 || unknown === 'reject' || critical) {
        return bad(NotifyType.INVALID_PAYLOAD_TYPE, at, `payload at offset ${at}: payload type ${type} is not supported${critical ? ' and is marked critical' : ''}`);
      }
      return { type: type as UnknownPayloadType, critical, data: b.subarray(body, e), raw };
    }
  }
}

function shortBody(type: number, at: number, n: number, min: number, what: string): Fail {
  return bad(MALFORMED, at + 2, `${payloadName(type)} payload at offset ${at}: body of ${n} bytes is shorter than ${what} (${min} bytes)`);
}

/** SA payload (RFC 2408 3.4): DOI, situation, then the proposals (3.5) filling the rest of the body exactly. */
function sa(b: Buffer, s: number, e: number, base: number, raw: Buffer): Payload | Fail {
  const at = base + s;
  const body = s + 4;
  if (e - body < 8) {
    return bad(MALFORMED, at + 2, `SA payload at offset ${at}: body of ${e - body} bytes is shorter than DOI + situation (8 bytes)`);
  }
  const doi = u32(b, body);
  if (doi !== DOI.IPSEC && doi !== DOI.ISAKMP) {
    return bad(NotifyType.DOI_NOT_SUPPORTED, at + 4, `SA payload at offset ${at}: DOI ${doi} is not supported (IPsec DOI 1 or ISAKMP 0)`);
  }
  const sit = u32(b, body + 4);
  // RFC 2407 4.2: SIT_SECRECY / SIT_INTEGRITY add labeled-domain fields after the bitmap; no IKEv1
  // implementation in use supports them (strongSwan and Libreswan reject them), so neither do we.
  if (doi === DOI.IPSEC && (sit & (Situation.SIT_SECRECY | Situation.SIT_INTEGRITY)) !== 0) {
    return bad(NotifyType.SITUATION_NOT_SUPPORTED, at + 8, `SA payload at offset ${at}: situation 0x${sit.toString(16)} (secrecy/integrity labels) is not supported`);
  }
  const proposals: Proposal[] = [];
  let p = body + 8;
  if (p === e) {
    return bad(BAD_PROPOSAL, at, `SA payload at offset ${at}: carries no proposal`);
  }
  for (;;) {
    const pat = base + p;
    if (proposals.length >= MAX_PROPOSALS) {
      return bad(MALFORMED, pat, `SA payload at offset ${at}: more than ${MAX_PROPOSALS} proposals`);
    }
    const pr = proposal(b, p, e, base, at);
    if (pr instanceof Fail) return pr;
    proposals.push(pr);
    // proposal() checked both header fields: next payload is 0 or 2, the length fits in [p, e)
    const pnext = b[p]!;
    p += u16(b, p + 2);
    if (pnext === 0) break;
    if (p === e) {
      return bad(BAD_PROPOSAL, pat, `SA payload at offset ${at}: proposal at offset ${pat} announces another proposal but the SA payload ends`);
    }
  }
  if (p !== e) {
    return bad(MALFORMED, base + p, `SA payload at offset ${at}: ${e - p} bytes follow the last proposal`);
  }
  return { type: 1, doi, situation: b.subarray(body + 4, body + 8), proposals, raw };
}

/**
 * One proposal (RFC 2408 3.5) starting at `p` in the SA payload at `at` that ends at `e`: its header, SPI and
 * transforms (3.6), which must fill the proposal length exactly.
 */
function proposal(b: Buffer, p: number, e: number, base: number, at: number): Proposal | Fail {
  const pat = base + p;
  const left = e - p;
  if (left < 8) {
    return bad(MALFORMED, pat, `SA payload at offset ${at}: proposal at offset ${pat} needs 8 bytes but ${left} are left`);
  }
  const pnext = b[p]!;
  const plen = u16(b, p + 2);
  if (plen < 8 || plen > left) {
    return bad(MALFORMED, pat + 2, `SA payload at offset ${at}: proposal length ${plen} ${plen < 8 ? 'is less than 8' : `exceeds the ${left} bytes left`}`);
  }
  if (pnext !== 0 && pnext !== 2) {
    return bad(BAD_PROPOSAL, pat, `SA payload at offset ${at}: proposal at offset ${pat} has next payload ${pnext} (must be 0 or 2)`);
  }
  const pe = p + plen;
  const spiSize = b[p + 6]!;
  const count = b[p + 7]!;
  if (8 + spiSize > plen) {
    return bad(MALFORMED, pat + 6, `SA payload at offset ${at}: proposal SPI size ${spiSize} exceeds the proposal length ${plen}`);
  }
  if (count === 0) {
    return bad(BAD_PROPOSAL, pat + 7, `SA payload at offset ${at}: proposal at offset ${pat} has no transform`);
  }
  if (count > MAX_TRANSFORMS) {
    return bad(MALFORMED, pat + 7, `SA payload at offset ${at}: proposal at offset ${pat} has ${count} transforms, more than the cap of ${MAX_TRANSFORMS}`);
  }
  const transforms: Transform[] = new Array(count);
  let t = p + 8 + spiSize;
  for (let i = 0; i < count; i++) {
    const tr = transform(b, t, pe, base, at, i, count);
    if (tr instanceof Fail) return tr;
    transforms[i] = tr;
    t += u16(b, t + 2); // checked by transform(): at least 8 and within the proposal
  }
  if (t !== pe) {
    return bad(MALFORMED, base + t, `SA payload at offset ${at}: proposal at offset ${pat} has ${pe - t} bytes after its ${count} transforms`);
  }
  return { number: b[p + 4]!, protocolId: b[p + 5]!, spi: slice(b, p + 8, p + 8 + spiSize), transforms };
}

/**
 * Transform `i` of `count` (RFC 2408 3.6) starting at `t` in a proposal that ends at `pe`, in the SA payload at
 * `at`. The count in the proposal header is authoritative: every transform but the last has next payload 3.
 */
function transform(b: Buffer, t: number, pe: number, base: number, at: number, i: number, count: number): Transform | Fail {
  const tat = base + t;
  const tleft = pe - t;
  if (tleft < 8) {
    return bad(MALFORMED, tat, `SA payload at offset ${at}: transform ${i + 1} of ${count} at offset ${tat} needs 8 bytes but ${tleft} are left in the proposal`);
  }
  const tnext = b[t]!;
  const tlen = u16(b, t + 2);
  if (tlen < 8 || tlen > tleft) {
    return bad(MALFORMED, tat + 2, `SA payload at offset ${at}: transform length ${tlen} ${tlen < 8 ? 'is less than 8' : `exceeds the ${tleft} bytes left in the proposal`}`);
  }
  const expected = i === count - 1 ? 0 : 3;
  if (tnext !== expected) {
    return bad(BAD_PROPOSAL, tat, `SA payload at offset ${at}: transform ${i + 1} of ${count} at offset ${tat} has next payload ${tnext}, expected ${expected}`);
  }
  const attributes = attrs(b, t + 8, t + tlen, base, MAX_TRANSFORM_ATTRIBUTES, at, tat);
  if (attributes instanceof Fail) return attributes;
  return { number: b[t + 4]!, transformId: b[t + 5]!, attributes };
}

/**
 * Data attributes (RFC 2408 3.3) filling [s, e) exactly, of an Attribute payload at `at` (transformAt < 0) or of the transform
 * at `transformAt` in the SA payload at `at` (the place is only spelled out in an error).
 */
function attrs(b: Buffer, s: number, e: number, base: number, cap: number, at: number, transformAt: number): Attribute[] | Fail {
  const out: Attribute[] = [];
  let a = s;
  while (a < e) {
    if (out.length >= cap) {
      return bad(MALFORMED, base + a, `${attrsPlace(at, transformAt)}: more than ${cap} attributes`);
    }
    const left = e - a;
    // Some Mode-Config servers pad an Attribute payload to a 4-octet boundary (a 21-octet banner then one zero
    // octet). Up to 3 zero octets after the last attribute are that padding; anything else is still refused.
    if (left < 4 && transformAt < 0 && zeros(b, a, e)) break;
    if (left < 4) {
      return bad(MALFORMED, base + a, `${attrsPlace(at, transformAt)}: attribute at offset ${base + a} needs 4 bytes but ${left} are left`);
    }
    const t = u16(b, a);
    if ((t & 0x8000) !== 0) {
      out.push({ type: t & 0x7fff, value: u16(b, a + 2) });
      a += 4;
    } else {
      const len = u16(b, a + 2);
      if (len > left - 4) {
        return bad(MALFORMED, base + a + 2, `${attrsPlace(at, transformAt)}: attribute type ${t} at offset ${base + a} has length ${len} but ${left - 4} bytes are left`);
      }
      out.push({ type: t, value: slice(b, a + 4, a + 4 + len) });
      a += 4 + len;
    }
  }
  return out;
}

function zeros(b: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (b[i] !== 0) return false;
  return true;
}

function attrsPlace(at: number, transformAt: number): string {
  return transformAt < 0 ? `Attribute payload at offset ${at}` : `SA payload at offset ${at}: transform at offset ${transformAt}`;
}
