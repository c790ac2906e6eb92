// Identification payload data (RFC 2407 4.6.2.1) <-> a friendly form, for configuration and logs.
// Used for phase 1 identities (IDii/IDir) and Quick Mode traffic selectors (IDci/IDcr).

import { IdType, NotifyType } from './constants.js';
import { codecError, IsakmpEncodeError } from './errors.js';
import type { CodecResult, IdPayload } from './types.js';

export type Identity =
  | { kind: 'ipv4'; address: string }
  | { kind: 'ipv6'; address: string }
  | { kind: 'ipv4-subnet'; subnet: string } // '10.1.0.0/24'
  | { kind: 'ipv6-subnet'; subnet: string } // '2001:db8::/32'
  | { kind: 'ipv4-range'; start: string; end: string }
  | { kind: 'ipv6-range'; start: string; end: string }
  | { kind: 'fqdn'; value: string }
  | { kind: 'user-fqdn'; value: string }
  | { kind: 'key-id'; data: Buffer }
  | { kind: 'der-dn'; data: Buffer } // DER of an X.501 Name, kept raw
  | { kind: 'der-gn'; data: Buffer }
  | { kind: 'other'; idType: number; data: Buffer };

// ---- addresses ----

/** Dotted quad -> 4 bytes, or null. */
export function parseIpv4(s: string): Buffer | null {
  const out = Buffer.allocUnsafe(4);
  return writeIpv4(s, out, 0) ? out : null;
}

/**
 * Writes a dotted quad (four groups of 1-3 ASCII digits, each <= 255; leading zeros allowed) as 4 bytes at
 * out[offset]; false (out untouched past what it wrote) if `s` is not one. Scans the characters instead of
 * split + regex: NAT-D hashes, cookies and traffic selectors parse addresses on every handshake, and the
 * split arrays and strings were a measurable share of the garbage.
 */
export function writeIpv4(s: string, out: Uint8Array, offset: number): boolean {
  const n = s.length;
  if (n < 7 || n > 15) return false;
  let group = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? s.charCodeAt(i) : 46; // the end closes the last group like a '.'
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return false;
      value = value * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || value > 255 || group > 3) return false;
      out[offset + group++] = value;
      digits = 0;
      value = 0;
    } else {
      return false;
    }
  }
  return group === 4;
}

/** RFC 4291 text (with '::' and an optional dotted-quad tail) -> 16 bytes, or null. */
export function parseIpv6(s: string): Buffer | null {
  let head = s;
  let v4: Buffer | null = null;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) > lastColon) {
    v4 = parseIpv4(s.slice(lastColon + 1));
    if (v4 === null) return null;
    head = s.slice(0, lastColon + 1) + '0:0'; // placeholder groups, overwritten below
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return null;
  const parseGroups = (t: string): number[] | null => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const a = parseGroups(head.slice(0, dbl));
    const b = parseGroups(head.slice(dbl + 2));
    if (a === null || b === null || a.length + b.length > 7) return null;
    groups = [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  } else {
    const g = parseGroups(head);
    if (g === null || g.length !== 8) return null;
    groups = g;
  }
  const out = Buffer.allocUnsafe(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i]!, i * 2);
  if (v4 !== null) v4.copy(out, 12);
  return out;
}

export function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 form: lowercase, longest run (>= 2) of zero groups compressed to '::'. */
export function formatIpv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

function prefixToMask(len: number, bytes: number): Buffer {
  const m = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    m[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return m;
}

/** Prefix length of a contiguous netmask, or -1 if the mask is not contiguous. */
function maskToPrefix(m: Uint8Array): number {
  let len = 0;
  let i = 0;
  for (; i < m.length && m[i] === 0xff; i++) len += 8;
  if (i < m.length) {
    const byte = m[i]!;
    let bits = 0;
    while (bits < 8 && (byte & (0x80 >> bits)) !== 0) bits++;
    if (((byte << bits) & 0xff) !== 0) return -1;
    len += bits;
    for (i++; i < m.length; i++) if (m[i] !== 0) return -1;
  }
  return len;
}

function parsePrefix(s: string, family: 4 | 6): { addr: Buffer; mask: Buffer } | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const addr = family === 4 ? parseIpv4(s.slice(0, slash)) : parseIpv6(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (addr === null || !/^\d{1,3}$/.test(lenText)) return null;
  const len = Number(lenText);
  if (len > addr.length * 8) return null;
  return { addr, mask: prefixToMask(len, addr.length) };
}

// ---- Identity <-> ID data ----

/** Identity -> ID type and identification data. Throws IsakmpEncodeError on an unparsable address. */
export function encodeIdentity(id: Identity): { idType: number; data: Buffer } {
  const need = <T>(v: T | null, what: string): T => {
    if (v === null) throw new IsakmpEncodeError(`invalid ${what} in ${id.kind} identity`);
    return v;
  };
  switch (id.kind) {
    case 'ipv4':
      return { idType: IdType.IPV4_ADDR, data: need(parseIpv4(id.address), `address '${id.address}'`) };
    case 'ipv6':
      return { idType: IdType.IPV6_ADDR, data: need(parseIpv6(id.address), `address '${id.address}'`) };
    case 'ipv4-subnet': {
      const p = need(parsePrefix(id.subnet, 4), `subnet '${id.subnet}'`);
      return { idType: IdType.IPV4_ADDR_SUBNET, data: Buffer.concat([p.addr, p.mask]) };
    }
    case 'ipv6-subnet': {
      const p = need(parsePrefix(id.subnet, 6), `subnet '${id.subnet}'`);
      return { idType: IdType.IPV6_ADDR_SUBNET, data: Buffer.concat([p.addr, p.mask]) };
    }
    case 'ipv4-range':
      return {
        idType: IdType.IPV4_ADDR_RANGE,
        data: Buffer.concat([need(parseIpv4(id.start), `start '${id.start}'`), need(parseIpv4(id.end), `end '${id.end}'`)]),
      };
    case 'ipv6-range':
      return {
        idType: IdType.IPV6_ADDR_RANGE,
        data: Buffer.concat([need(parseIpv6(id.start), `start '${id.start}'`), need(parseIpv6(id.end), `end '${id.end}'`)]),
      };
    case 'fqdn':
      return { idType: IdType.FQDN, data: Buffer.from(id.value, 'utf8') };
    case 'user-fqdn':
      return { idType: IdType.USER_FQDN, data: Buffer.from(id.value, 'utf8') };
    case 'key-id':
      return { idType: IdType.KEY_ID, data: id.data };
    case 'der-dn':
      return { idType: IdType.DER_ASN1_DN, data: id.data };
    case 'der-gn':
      return { idType: IdType.DER_ASN1_GN, data: id.data };
    case 'other':
      return { idType: id.idType, data: id.data };
  }
}

/** An ID payload for an identity (protocol 0 / port 0 = any, as phase 1 IDs usually carry). */
export function idPayload(id: Identity, protocolId = 0, port = 0): IdPayload {
  const { idType, data } = encodeIdentity(id);
  return { type: 5, idType, protocolId, port, data };
}

/** ID type + data -> Identity. INVALID_ID_INFORMATION on a wrong length or a non-contiguous netmask. */
export function decodeIdentity(idType: number, data: Buffer): CodecResult<Identity> {
  const wrong = (what: string): CodecResult<Identity> => ({
    ok: false,
    error: codecError(NotifyType.INVALID_ID_INFORMATION, 0, `ID type ${idType}: ${what}`),
  });
  const addr = (n: number) => (data.length === n ? null : wrong(`data of ${data.length} bytes, expected ${n}`));
  switch (idType) {
    case IdType.IPV4_ADDR:
      return addr(4) ?? { ok: true, value: { kind: 'ipv4', address: formatIpv4(data) } };
    case IdType.IPV6_ADDR:
      return addr(16) ?? { ok: true, value: { kind: 'ipv6', address: formatIpv6(data) } };
    case IdType.IPV4_ADDR_SUBNET:
    case IdType.IPV6_ADDR_SUBNET: {
      const n = idType === IdType.IPV4_ADDR_SUBNET ? 4 : 16;
      const e = addr(2 * n);
      if (e !== null) return e;
      const len = maskToPrefix(data.subarray(n));
      if (len < 0) return wrong('netmask is not contiguous');
      const a = n === 4 ? formatIpv4(data) : formatIpv6(data.subarray(0, 16));
      return { ok: true, value: n === 4 ? { kind: 'ipv4-subnet', subnet: `${a}/${len}` } : { kind: 'ipv6-subnet', subnet: `${a}/${len}` } };
    }
    case IdType.IPV4_ADDR_RANGE:
      return addr(8) ?? { ok: true, value: { kind: 'ipv4-range', start: formatIpv4(data), end: formatIpv4(data.subarray(4)) } };
    case IdType.IPV6_ADDR_RANGE:
      return addr(32) ?? { ok: true, value: { kind: 'ipv6-range', start: formatIpv6(data), end: formatIpv6(data.subarray(16)) } };
    case IdType.FQDN:
      return { ok: true, value: { kind: 'fqdn', value: data.toString('utf8') } };
    case IdType.USER_FQDN:
      return { ok: true, value: { kind: 'user-fqdn', value: data.toString('utf8') } };
    case IdType.KEY_ID:
      return { ok: true, value: { kind: 'key-id', data } };
    case IdType.DER_ASN1_DN:
      return { ok: true, value: { kind: 'der-dn', data } };
    case IdType.DER_ASN1_GN:
      return { ok: true, value: { kind: 'der-gn', data } };
    default:
      return { ok: true, value: { kind: 'other', idType, data } };
  }
}

/** Decodes the identity of an ID payload. */
export function decodeIdPayload(p: IdPayload): CodecResult<Identity> {
  return decodeIdentity(p.idType, p.data);
}

/** One-line text for logs: '10.1.0.0/24', 'vpn.example.com', 'keyid:0a0b', ...; an ID payload with a protocol
 * or port gets '[proto/port]' appended. Never throws. */
export function idToString(id: Identity | IdPayload): string {
  if ('type' in id) {
    const d = decodeIdentity(id.idType, id.data);
    const base = d.ok ? idToString(d.value) : `invalid-id(type ${id.idType}, ${id.data.length} bytes)`;
    return id.protocolId !== 0 || id.port !== 0 ? `${base}[${id.protocolId}/${id.port}]` : base;
  }
  switch (id.kind) {
    case 'ipv4':
    case 'ipv6':
      return id.address;
    case 'ipv4-subnet':
    case 'ipv6-subnet':
      return id.subnet;
    case 'ipv4-range':
    case 'ipv6-range':
      return `${id.start}-${id.end}`;
    case 'fqdn':
    case 'user-fqdn':
      return JSON.stringify(id.value).slice(1, -1); // escapes control characters a peer might send
    case 'key-id':
      return `keyid:${id.data.toString('hex')}`;
    case 'der-dn':
      return `dn:${id.data.toString('hex')}`;
    case 'der-gn':
      return `gn:${id.data.toString('hex')}`;
    case 'other':
      return `id-type-${id.idType}:${id.data.toString('hex')}`;
  }
}
