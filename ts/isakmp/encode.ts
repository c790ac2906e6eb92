// Encoding: typed message -> bytes. One allocation per call: sizes are computed first, then everything is
// written into a single Buffer. Invalid arguments (values that do not fit their field) throw IsakmpEncodeError:
// they are bugs in the caller, not input from the network.

import { ISAKMP_HEADER_LENGTH } from './constants.js';
import { IsakmpEncodeError, payloadName } from './errors.js';
import type { Attribute, DeletePayload, IsakmpHeader, NatOaPayload, NotifyPayload, Payload, Proposal, SaPayload, Transform } from './types.js';

// The checks run on every field of every message we send: where the error text names a type, it is only
// formatted when the check fails (a template string per field was a good part of the encoder's garbage).
function fits(v: number, max: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= max;
}
function check(v: number, max: number, what: string): number {
  if (!fits(v, max)) throw new IsakmpEncodeError(`${what} ${v} does not fit (0..${max})`);
  return v;
}
function buf(v: unknown, what: string): Buffer {
  if (!(v instanceof Uint8Array)) throw new IsakmpEncodeError(`${what} must be a Buffer`);
  return v as Buffer;
}
/** The `data` of a payload, which must be bytes. */
function dataOf(p: Payload): Buffer {
  const d = (p as { data?: unknown }).data;
  return d instanceof Uint8Array ? (d as Buffer) : buf(d, `${payloadName(p.type)} data`);
}

function attrsLength(attrs: readonly Attribute[]): number {
  let n = 0;
  for (const a of attrs) n += typeof a.value === 'number' ? 4 : 4 + (a.value instanceof Uint8Array ? a.value : buf(a.value, `attribute ${a.type} value`)).length;
  return n;
}
function transformLength(t: Transform): number {
  return 8 + attrsLength(t.attributes);
}
function proposalLength(p: Proposal): number {
  let n = 8 + buf(p.spi, 'proposal SPI').length;
  for (const t of p.transforms) n += transformLength(t);
  return n;
}

/** Length of the payload body (without the 4-byte generic header). */
function bodyLength(p: Payload): number {
  switch (p.type) {
    case 1: {
      const sa = p as Extract<Payload, { type: 1 }>;
      let n = 4 + buf(sa.situation, 'SA situation').length;
      for (const pr of sa.proposals) n += proposalLength(pr);
      return n;
    }
    case 5:
      return 4 + buf((p as Extract<Payload, { type: 5 }>).data, 'ID data').length;
    case 6:
    case 7:
      return 1 + dataOf(p).length;
    case 11: {
      const n = p as Extract<Payload, { type: 11 }>;
      return 8 + buf(n.spi, 'Notification SPI').length + buf(n.data, 'Notification data').length;
    }
    case 12: {
      const d = p as Extract<Payload, { type: 12 }>;
      return 8 + d.spiSize * d.spis.length;
    }
    case 14:
      return 4 + attrsLength((p as Extract<Payload, { type: 14 }>).attributes);
    case 21:
    case 131:
    case 132:
      return 4 + dataOf(p).length;
    default:
      // KE, HASH, SIG, NONCE, VID, NAT-D and unknown payloads: opaque data.
      return dataOf(p).length;
  }
}

function writeAttrs(out: Buffer, o: number, attrs: readonly Attribute[]): number {
  for (const a of attrs) {
    const type = check(a.type, 0x7fff, 'attribute type');
    if (typeof a.value === 'number') {
      const v = fits(a.value, 0xffff) ? a.value : check(a.value, 0xffff, `TV attribute ${a.type} value`);
      out[o] = (type >> 8) | 0x80;
      out[o + 1] = type & 0xff;
      out[o + 2] = v >> 8;
      out[o + 3] = v & 0xff;
      o += 4;
    } else {
      const v = a.value;
      const len = fits(v.length, 0xffff) ? v.length : check(v.length, 0xffff, `TLV attribute ${a.type} length`);
      out[o] = type >> 8;
      out[o + 1] = type & 0xff;
      out[o + 2] = len >> 8;
      out[o + 3] = len & 0xff;
      if (len > 0) out.set(v, o + 4);
      o += 4 + len;
    }
  }
  return o;
}

/** Writes the body of `p` (what follows its generic header) at `o`; returns the offset after it. */
function writeBody(out: Buffer, o: number, p: Payload): number {
  switch (p.type) {
    case 1:
      return writeSa(out, o, p as SaPayload);
    case 5: {
      const id = p as Extract<Payload, { type: 5 }>;
      out[o] = check(id.idType, 0xff, 'ID type');
      out[o + 1] = check(id.protocolId, 0xff, 'ID protocol');
      out.writeUInt16BE(check(id.port, 0xffff, 'ID port'), o + 2);
      return o + 4 + id.data.copy(out, o + 4);
    }
    case 6:
    case 7: {
      const c = p as Extract<Payload, { type: 6 }>;
      out[o] = check(c.encoding, 0xff, 'certificate encoding');
      return o + 1 + c.data.copy(out, o + 1);
    }
    case 11:
      return writeNotification(out, o, p as NotifyPayload);
    case 12:
      return writeDelete(out, o, p as DeletePayload);
    case 14: {
      const a = p as Extract<Payload, { type: 14 }>;
      out[o] = check(a.cfgType, 0xff, 'mode-config type');
      out[o + 1] = 0;
      out.writeUInt16BE(check(a.identifier, 0xffff, 'mode-config identifier'), o + 2);
      return writeAttrs(out, o + 4, a.attributes);
    }
    case 21:
    case 131: {
      const n = p as NatOaPayload;
      out[o] = check(n.idType, 0xff, 'NAT-OA ID type');
      out[o + 1] = 0;
      out[o + 2] = 0;
      out[o + 3] = 0;
      return o + 4 + n.data.copy(out, o + 4);
    }
    case 132: {
      const f = p as Extract<Payload, { type: 132 }>;
      out.writeUInt16BE(check(f.fragmentId, 0xffff, 'fragment ID'), o);
      out[o + 2] = check(f.fragmentNumber, 0xff, 'fragment number');
      out[o + 3] = check(f.flags, 0xff, 'fragment flags');
      return o + 4 + f.data.copy(out, o + 4);
    }
    default:
      return o + (p as { data: Buffer }).data.copy(out, o);
  }
}

/** SA payload (RFC 2408 3.4): DOI, situation, then the proposals, each announcing the next (payload type 2). */
function writeSa(out: Buffer, o: number, sa: SaPayload): number {
  out.writeUInt32BE(check(sa.doi, 0xffffffff, 'SA DOI'), o);
  o += 4;
  o += sa.situation.copy(out, o);
  for (let i = 0; i < sa.proposals.length; i++) o = writeProposal(out, o, sa.proposals[i]!, i === sa.proposals.length - 1);
  return o;
}

/** Proposal (RFC 2408 3.5): header, SPI, then its transforms; `last` ends the proposal list (next payload 0). */
function writeProposal(out: Buffer, o: number, pr: Proposal, last: boolean): number {
  const plen = check(proposalLength(pr), 0xffff, 'proposal length');
  out[o] = last ? 0 : 2;
  out[o + 1] = 0;
  out.writeUInt16BE(plen, o + 2);
  out[o + 4] = check(pr.number, 0xff, 'proposal number');
  out[o + 5] = check(pr.protocolId, 0xff, 'protocol ID');
  out[o + 6] = check(pr.spi.length, 0xff, 'SPI size');
  out[o + 7] = check(pr.transforms.length, 0xff, 'transform count');
  o += 8;
  o += pr.spi.copy(out, o);
  for (let j = 0; j < pr.transforms.length; j++) o = writeTransform(out, o, pr.transforms[j]!, j === pr.transforms.length - 1);
  return o;
}

/** Transform (RFC 2408 3.6): header and SA attributes; `last` ends the proposal's transforms (next payload 0, else 3). */
function writeTransform(out: Buffer, o: number, t: Transform, last: boolean): number {
  out[o] = last ? 0 : 3;
  out[o + 1] = 0;
  out.writeUInt16BE(check(transformLength(t), 0xffff, 'transform length'), o + 2);
  out[o + 4] = check(t.number, 0xff, 'transform number');
  out[o + 5] = check(t.transformId, 0xff, 'transform ID');
  out[o + 6] = 0;
  out[o + 7] = 0;
  return writeAttrs(out, o + 8, t.attributes);
}

/** Notification payload (RFC 2408 3.14): DOI, protocol, SPI size, notify type, SPI, notification data. */
function writeNotification(out: Buffer, o: number, n: NotifyPayload): number {
  out.writeUInt32BE(check(n.doi, 0xffffffff, 'Notification DOI'), o);
  out[o + 4] = check(n.protocolId, 0xff, 'Notification protocol');
  out[o + 5] = check(n.spi.length, 0xff, 'Notification SPI size');
  out.writeUInt16BE(check(n.notifyType, 0xffff, 'notify type'), o + 6);
  o += 8;
  o += n.spi.copy(out, o);
  return o + n.data.copy(out, o);
}

/** Delete payload (RFC 2408 3.15): DOI, protocol, SPI size, SPI count, then the SPIs, each exactly SPI size bytes. */
function writeDelete(out: Buffer, o: number, d: DeletePayload): number {
  out.writeUInt32BE(check(d.doi, 0xffffffff, 'Delete DOI'), o);
  out[o + 4] = check(d.protocolId, 0xff, 'Delete protocol');
  out[o + 5] = check(d.spiSize, 0xff, 'Delete SPI size');
  out.writeUInt16BE(check(d.spis.length, 0xffff, 'Delete SPI count'), o + 6);
  o += 8;
  for (const spi of d.spis) {
    if (buf(spi, 'Delete SPI').length !== d.spiSize) {
      throw new IsakmpEncodeError(`Delete SPI of ${spi.length} bytes, spiSize says ${d.spiSize}`);
    }
    o += spi.copy(out, o);
  }
  return o;
}

function chainLength(payloads: readonly Payload[]): number {
  let n = 0;
  for (const p of payloads) {
    check(p.type, 0xff, 'payload type');
    const len = 4 + bodyLength(p);
    n += fits(len, 0xffff) ? len : check(len, 0xffff, `${payloadName(p.type)} payload length`);
  }
  return n;
}

function writeChain(out: Buffer, o: number, payloads: readonly Payload[]): number {
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    const start = o;
    out[o] = i + 1 < payloads.length ? payloads[i + 1]!.type : 0;
    // RESERVED octet: zero, except the critical bit a caller kept on an unknown payload.
    out[o + 1] = (p as { critical?: boolean }).critical === true ? 0x80 : 0;
    o = writeBody(out, o + 4, p);
    out.writeUInt16BE(o - start, start + 2);
  }
  return o;
}

/** Encodes a payload chain; the first payload's type is payloads[0].type (put it in header.nextPayload). */
export function encodePayloads(payloads: readonly Payload[]): Buffer {
  const out = Buffer.allocUnsafe(chainLength(payloads));
  writeChain(out, 0, payloads);
  return out;
}

/** The length encodePayloads would give (checks every field like it). */
export function payloadsLength(payloads: readonly Payload[]): number {
  return chainLength(payloads);
}

/**
 * Encodes a payload chain into `out` at `offset` (out must have payloadsLength(payloads) bytes there), for
 * callers that lay out a whole message in one buffer. Returns the offset after the chain.
 */
export function encodePayloadsInto(out: Buffer, offset: number, payloads: readonly Payload[]): number {
  return writeChain(out, offset, payloads);
}

/** The body of one payload without its generic header, e.g. SAi_b or IDii_b when we are the sender. */
export function encodePayloadBody(p: Payload): Buffer {
  return encodePayloads([p]).subarray(4);
}

function writeHeader(out: Buffer, h: IsakmpHeader, nextPayload: number, length: number): void {
  if (buf(h.initiatorCookie, 'initiator cookie').length !== 8 || buf(h.responderCookie, 'responder cookie').length !== 8) {
    throw new IsakmpEncodeError('cookies must be 8 bytes');
  }
  h.initiatorCookie.copy(out, 0);
  h.responderCookie.copy(out, 8);
  out[16] = check(nextPayload, 0xff, 'next payload');
  out[17] = check(h.version, 0xff, 'version');
  out[18] = check(h.exchangeType, 0xff, 'exchange type');
  out[19] = check(h.flags, 0xff, 'flags');
  out.writeUInt32BE(check(h.messageId, 0xffffffff, 'message ID'), 20);
  out.writeUInt32BE(check(length, 0xffffffff, 'length'), 24);
}

/** The 28-byte header exactly as given (the caller computed nextPayload and length). */
export function encodeHeader(header: IsakmpHeader): Buffer {
  const out = Buffer.allocUnsafe(ISAKMP_HEADER_LENGTH);
  writeHeader(out, header, header.nextPayload, header.length);
  return out;
}

/** Same, written into the first 28 bytes of `out` (a message laid out by the caller). */
export function encodeHeaderInto(out: Buffer, header: IsakmpHeader): void {
  if (out.length < ISAKMP_HEADER_LENGTH) throw new IsakmpEncodeError('no room for the 28-byte header');
  writeHeader(out, header, header.nextPayload, header.length);
}

/**
 * Encodes a whole message. With `payloads`: nextPayload and length are computed (flags kept as given).
 * With `encrypted` (an already encrypted body): length is computed, nextPayload is header.nextPayload
 * (the type of the first payload inside the encrypted body).
 */
export function encodeMessage(msg: { header: IsakmpHeader; payloads: readonly Payload[] } | { header: IsakmpHeader; encrypted: Uint8Array }): Buffer {
  if ('encrypted' in msg) {
    const body = buf(msg.encrypted, 'encrypted body');
    const out = Buffer.allocUnsafe(ISAKMP_HEADER_LENGTH + body.length);
    writeHeader(out, msg.header, msg.header.nextPayload, out.length);
    out.set(body, ISAKMP_HEADER_LENGTH);
    return out;
  }
  const n = chainLength(msg.payloads);
  const out = Buffer.allocUnsafe(ISAKMP_HEADER_LENGTH + n);
  writeHeader(out, msg.header, msg.payloads.length > 0 ? msg.payloads[0]!.type : 0, out.length);
  writeChain(out, ISAKMP_HEADER_LENGTH, msg.payloads);
  return out;
}
