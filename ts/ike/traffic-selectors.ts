// Quick Mode traffic selectors: the IDci / IDcr payloads (RFC 2409 5.5, RFC 2407 4.6.2) as address
// ranges with an IP protocol and a port (0 = any).
//
// Responder rule (documented in ts/ike/PHASE2.md): the initiator's selectors must lie INSIDE ours
// (address range, and protocol / port equal or ours "any"); the answer echoes them unchanged. strongSwan
// narrows to the intersection; for an offer inside our policy the intersection is the offer itself, so
// both agree there. A partial overlap is refused (INVALID_ID_INFORMATION) rather than narrowed, because
// an IKEv1 initiator is not required to accept IDs other than the ones it sent (Cisco does not).
import { IdType, PayloadType, compareBytes, decodeIdPayload, encodeIdentity, idToString, type IdPayload, type Identity } from '../isakmp/index.js';

export interface TrafficSelector {
  /** ipv4 / ipv6 (one address), ipv4-subnet / ipv6-subnet, ipv4-range / ipv6-range. */
  id: Identity;
  /** IP protocol number, 0 = any. */
  protocol: number;
  /** Port, 0 = any. */
  port: number;
}

/**
 * '10.1.0.0/24', '10.1.1.1' (or '10.1.1.1/32'), '10.0.0.1-10.0.0.9', IPv6 alike. A full-length prefix
 * becomes a single address (IPV4_ADDR), which is what strongSwan sends for a /32. Returns null if invalid.
 */
export function trafficSelector(text: string, protocol = 0, port = 0): TrafficSelector | null {
  const s = text.trim();
  const v6 = s.includes(':');
  let id: Identity;
  if (s.includes('-')) {
    const [a, b] = s.split('-') as [string, string];
    id = v6 ? { kind: 'ipv6-range', start: a, end: b } : { kind: 'ipv4-range', start: a, end: b };
  } else if (s.includes('/')) {
    const [a, len] = s.split('/') as [string, string];
    id = len === (v6 ? '128' : '32') ? (v6 ? { kind: 'ipv6', address: a } : { kind: 'ipv4', address: a }) : v6 ? { kind: 'ipv6-subnet', subnet: s } : { kind: 'ipv4-subnet', subnet: s };
  } else {
    id = v6 ? { kind: 'ipv6', address: s } : { kind: 'ipv4', address: s };
  }
  if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255 || !Number.isInteger(port) || port < 0 || port > 65535) return null;
  const ts = { id, protocol, port };
  return tsRange(ts) === null ? null : ts;
}

/** The selector for one endpoint address (what the selectors are when the IDs are omitted). */
export function hostSelector(address: string): TrafficSelector {
  return { id: address.includes(':') ? { kind: 'ipv6', address } : { kind: 'ipv4', address }, protocol: 0, port: 0 };
}

export interface TsRange {
  family: 4 | 6;
  start: Buffer;
  end: Buffer;
}

/** First and last address of a selector; null for non-address IDs or invalid data (also start > end). */
export function tsRange(ts: TrafficSelector): TsRange | null {
  let enc: { idType: number; data: Buffer };
  try {
    enc = encodeIdentity(ts.id);
  } catch {
    return null;
  }
  const d = enc.data;
  switch (enc.idType) {
    case IdType.IPV4_ADDR:
      return { family: 4, start: d, end: d };
    case IdType.IPV6_ADDR:
      return { family: 6, start: d, end: d };
    case IdType.IPV4_ADDR_SUBNET:
    case IdType.IPV6_ADDR_SUBNET: {
      const n = enc.idType === IdType.IPV4_ADDR_SUBNET ? 4 : 16;
      const start = Buffer.alloc(n);
      const end = Buffer.alloc(n);
      for (let i = 0; i < n; i++) {
        start[i] = d[i]! & d[n + i]!;
        end[i] = start[i]! | (~d[n + i]! & 0xff);
      }
      return ordered(n === 4 ? 4 : 6, start, end);
    }
    case IdType.IPV4_ADDR_RANGE:
      return ordered(4, d.subarray(0, 4), d.subarray(4, 8));
    case IdType.IPV6_ADDR_RANGE:
      return ordered(6, d.subarray(0, 16), d.subarray(16, 32));
    default:
      return null;
  }
}

/** A range, or null when it ends before it starts. */
function ordered(family: 4 | 6, start: Buffer, end: Buffer): TsRange | null {
  return compareBytes(start, end) <= 0 ? { family, start, end } : null;
}

/** Is `inner` inside `outer` (addresses, protocol, port)? */
export function tsContains(outer: TrafficSelector, inner: TrafficSelector): boolean {
  const o = tsRange(outer);
  const i = tsRange(inner);
  if (o === null || i === null || o.family !== i.family) return false;
  if (compareBytes(o.start, i.start) > 0 || compareBytes(i.end, o.end) > 0) return false;
  if (outer.protocol !== 0 && outer.protocol !== inner.protocol) return false;
  return outer.port === 0 || outer.port === inner.port;
}

export function tsIdPayload(ts: TrafficSelector): IdPayload {
  const { idType, data } = encodeIdentity(ts.id);
  return { type: PayloadType.ID, idType, protocolId: ts.protocol, port: ts.port, data };
}

/** An IDci / IDcr payload as a selector; null when it is not an address ID or its data is malformed. */
export function tsFromIdPayload(p: IdPayload): TrafficSelector | null {
  const d = decodeIdPayload(p);
  if (!d.ok) return null;
  const ts = { id: d.value, protocol: p.protocolId, port: p.port };
  return tsRange(ts) === null ? null : ts;
}

/** '10.1.0.0/24', with '[proto/port]' when either is set. */
export function tsToString(ts: TrafficSelector): string {
  const base = idToString(ts.id);
  return ts.protocol !== 0 || ts.port !== 0 ? `${base}[${ts.protocol}/${ts.port}]` : base;
}

export function sameTs(a: TrafficSelector, b: TrafficSelector): boolean {
  return tsContains(a, b) && tsContains(b, a) && a.protocol === b.protocol && a.port === b.port;
}

