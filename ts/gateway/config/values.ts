// Parsers for the value types of the config file: durations, addresses, traffic selectors, identities, PSKs.
// Each returns the value or a one-line problem (without the key path, which the caller adds).
import { parseDn } from '../../ike/certificates.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6, type Identity } from '../../isakmp/index.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };
const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** '30s', '15m', '8h', '1d', '2.5s', '500ms', '30' or a number -> seconds. */
export function parseDuration(v: unknown): Parsed<number> {
  const hint = "must be a duration like '30s', '15m', '8h', '1d' or a number of seconds";
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? { ok: true, value: v } : fail(`${hint}, got ${v}`);
  if (typeof v !== 'string') return fail(`${hint}, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|[smhd])?\s*$/.exec(v);
  if (!m) return fail(`${hint}, got ${JSON.stringify(v)}`);
  return { ok: true, value: m[2] === 'ms' ? Number(m[1]) / 1000 : Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']! };
}

export interface Address {
  family: 4 | 6;
  bytes: Buffer;
  /** Canonical text (RFC 5952 for IPv6). */
  text: string;
}

export function parseAddress(s: string): Address | null {
  const v4 = parseIpv4(s);
  if (v4) return { family: 4, bytes: v4, text: formatIpv4(v4) };
  const v6 = s.includes(':') ? parseIpv6(s) : null;
  if (v6) return { family: 6, bytes: v6, text: formatIpv6(v6) };
  return null;
}

/** 0.0.0.0 and :: mean "any local address": no identity can be derived from them. */
export function isUnspecified(a: Address): boolean {
  return a.bytes.every((b) => b === 0);
}

/**
 * The address part of a traffic selector as a connection's localTs / remoteTs give it: the Identity kinds
 * that describe traffic (Quick Mode IDci/IDcr). The selector itself, with protocol and port, is TrafficSelector
 * (ts/ike/traffic-selectors.ts).
 */
export type SelectorAddress = Extract<Identity, { kind: 'ipv4' | 'ipv6' | 'ipv4-subnet' | 'ipv6-subnet' | 'ipv4-range' | 'ipv6-range' }>;

function host(a: Address): SelectorAddress {
  return a.family === 4 ? { kind: 'ipv4', address: a.text } : { kind: 'ipv6', address: a.text };
}

/**
 * '10.1.0.0/24', '10.1.0.5', '10.1.0.10-10.1.0.20', IPv6 alike. A single host (also a /32 or /128, or a
 * one-address range) becomes an address selector, which is what strongSwan sends for one host.
 */
export function parseSelectorAddress(s: string): Parsed<SelectorAddress> {
  const text = s.trim();
  const notAddress = (x: string) => fail(`'${x}' is not an IPv4 or IPv6 address`);
  const slash = text.indexOf('/');
  if (slash >= 0) {
    const a = parseAddress(text.slice(0, slash));
    if (!a) return notAddress(text.slice(0, slash));
    const lenText = text.slice(slash + 1);
    const max = a.family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(lenText)) return fail(`prefix length '${lenText}' in '${text}' is not a number 0-${max}`);
    const len = Number(lenText);
    if (len > max) return fail(`prefix length ${len} is over ${max} in '${text}'`);
    const net = Buffer.from(a.bytes);
    for (let bit = len; bit < max; bit++) net[bit >> 3]! &= ~(0x80 >> (bit & 7));
    const netText = a.family === 4 ? formatIpv4(net) : formatIpv6(net);
    if (!net.equals(a.bytes)) return fail(`host bits are set in '${text}': the network address is ${netText}/${len}`);
    if (len === max) return { ok: true, value: host(a) };
    return { ok: true, value: a.family === 4 ? { kind: 'ipv4-subnet', subnet: `${netText}/${len}` } : { kind: 'ipv6-subnet', subnet: `${netText}/${len}` } };
  }
  const dash = text.indexOf('-');
  if (dash >= 0) {
    const a = parseAddress(text.slice(0, dash).trim());
    const b = parseAddress(text.slice(dash + 1).trim());
    if (!a) return notAddress(text.slice(0, dash).trim());
    if (!b) return notAddress(text.slice(dash + 1).trim());
    if (a.family !== b.family) return fail(`range '${text}' mixes IPv4 and IPv6`);
    const order = Buffer.compare(a.bytes, b.bytes);
    if (order > 0) return fail(`range '${text}' starts after it ends`);
    if (order === 0) return { ok: true, value: host(a) };
    return { ok: true, value: a.family === 4 ? { kind: 'ipv4-range', start: a.text, end: b.text } : { kind: 'ipv6-range', start: a.text, end: b.text } };
  }
  const a = parseAddress(text);
  return a ? { ok: true, value: host(a) } : notAddress(text);
}

const HOSTNAME = /^(?=.{1,253}\.?$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * strongSwan's identity notation: an IP address -> ipv4/ipv6, '@#0a0b' -> key-id, '@name' -> fqdn taken
 * literally, 'user@host' -> user-fqdn, a plain hostname -> fqdn. '%any' is handled by the caller.
 */
export function parseIdentity(s: string): Parsed<Identity> {
  const a = parseAddress(s);
  if (a) return { ok: true, value: host(a) };
  // strongSwan's notation for a distinguished name: "C=CH, O=Example, CN=gw" (ID_DER_ASN1_DN)
  if (/^[A-Za-z][A-Za-z0-9.]*=/.test(s)) {
    const dn = parseDn(s);
    return dn.ok ? { ok: true, value: { kind: 'der-dn', data: dn.value } } : fail(dn.error);
  }
  if (s.startsWith('@#')) {
    const hex = s.slice(2);
    if (!/^([0-9a-f]{2})+$/i.test(hex)) return fail(`key ID '${s}' must be '@#' followed by an even number of hex digits`);
    return { ok: true, value: { kind: 'key-id', data: Buffer.from(hex, 'hex') } };
  }
  if (s.startsWith('@')) {
    if (s.length === 1) return fail("'@' must be followed by a name, e.g. '@vpn.example.com'");
    return { ok: true, value: { kind: 'fqdn', value: s.slice(1) } };
  }
  const at = s.indexOf('@');
  if (at >= 0) {
    if (at === 0 || at === s.length - 1) return fail(`'${s}' is not a valid 'user@host' identity`);
    return { ok: true, value: { kind: 'user-fqdn', value: s } };
  }
  if (HOSTNAME.test(s)) return { ok: true, value: { kind: 'fqdn', value: s } };
  return fail(`'${s}' is not an IP address, hostname, '@name', 'user@host' or '@#hex' key ID`);
}

/** PSK text -> key bytes. "0x..." is hex, as in strongSwan's secrets. The error never contains the key. */
export function decodePsk(text: string): Parsed<Buffer> {
  if (text.length === 0) return fail('the pre-shared key is empty');
  if (/^0x/i.test(text)) {
    const hex = text.slice(2);
    if (!/^([0-9a-f]{2})+$/i.test(hex)) return fail("the pre-shared key starts with '0x' but the rest is not an even number of hex digits");
    return { ok: true, value: Buffer.from(hex, 'hex') };
  }
  // U+FFFD is what bytes that were not UTF-8 (in an environment variable) became, and a lone surrogate (a "\ud800"
  // escape) would be encoded as U+FFFD: either way the key bytes would not be the ones the peer has.
  if (text.includes('\ufffd') || /[\ud800-\udfff]/u.test(text)) {
    return fail("the pre-shared key has bytes that are not UTF-8 text (or a lone \\u surrogate escape), so it would not be the peer's key; write it as hex (0x...)");
  }
  return { ok: true, value: Buffer.from(text, 'utf8') };
}
