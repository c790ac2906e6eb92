// Vendor ID payloads we send and recognise. The values are MD5 hashes of the strings the documents name
// (facts, not code): RFC 3947 NAT-T, the NAT-T drafts peers still send, RFC 3706 DPD, XAUTH and Cisco Unity.
import { PayloadType, bytesEqual, startsWithBytes, type Payload } from '../isakmp/index.js';

const hex = (s: string) => Buffer.from(s, 'hex');

export const VendorIds = {
  /** MD5("RFC 3947") */
  NATT_RFC3947: hex('4a131c81070358455c5728f20e95452f'),
  /** MD5("draft-ietf-ipsec-nat-t-ike-03") */
  NATT_DRAFT_03: hex('7d9419a65310ca6f2c179d9215529d56'),
  /** MD5("draft-ietf-ipsec-nat-t-ike-02") */
  NATT_DRAFT_02: hex('cd60464335df21f87cfdb2fc68b6a448'),
  /** MD5("draft-ietf-ipsec-nat-t-ike-02\n"), sent by many implementations by mistake */
  NATT_DRAFT_02N: hex('90cb80913ebb696e086381b5ec427b1f'),
  /** RFC 3706 Dead Peer Detection, version 1.0 */
  DPD: hex('afcad71368a1f1c96b8696fc77570100'),
  /** draft-beaulieu-ike-xauth */
  XAUTH: hex('09002689dfd6b712'),
  /** Cisco Unity 1.0 */
  CISCO_UNITY: hex('12f5f28c457168a9702d9fe274cc0100'),
  /** IKE fragmentation (Cisco), prefix; the last 4 bytes carry capability flags */
  FRAGMENTATION: hex('4048b7d56ebce88525e7de7f00d6c2d3'),
} as const;

export type NattVersion = 'rfc3947' | 'draft';

export interface PeerVendorIds {
  natt: NattVersion | null;
  dpd: boolean;
  xauth: boolean;
  unity: boolean;
  fragmentation: boolean;
}

export function classifyVendorIds(payloads: readonly Payload[]): PeerVendorIds {
  const r: PeerVendorIds = { natt: null, dpd: false, xauth: false, unity: false, fragmentation: false };
  for (const p of payloads) {
    if (p.type !== PayloadType.VENDOR_ID) continue;
    const d = p.data;
    if (bytesEqual(d, VendorIds.NATT_RFC3947)) r.natt = 'rfc3947';
    else if (bytesEqual(d, VendorIds.NATT_DRAFT_03) || bytesEqual(d, VendorIds.NATT_DRAFT_02) || bytesEqual(d, VendorIds.NATT_DRAFT_02N)) {
      if (r.natt === null) r.natt = 'draft';
    } else if (bytesEqual(d, VendorIds.DPD)) r.dpd = true;
    else if (bytesEqual(d, VendorIds.XAUTH)) r.xauth = true;
    else if (bytesEqual(d, VendorIds.CISCO_UNITY)) r.unity = true;
    else if (startsWithBytes(d, VendorIds.FRAGMENTATION)) r.fragmentation = true;
  }
  return r;
}

/** The FRAGMENTATION vendor ID as Cisco and strongSwan send it: the prefix and the capability flags 0x80000000. */
const FRAGMENTATION_CAPABLE = Buffer.concat([VendorIds.FRAGMENTATION, hex('80000000')]);

/** What we announce: NAT-T (RFC and draft-02\n so older peers float too), DPD and IKE fragmentation when enabled. */
export function ourVendorIds(options: { natt: boolean; dpd: boolean; fragmentation?: boolean }): Payload[] {
  const out: Payload[] = [];
  if (options.natt) {
    out.push({ type: PayloadType.VENDOR_ID, data: VendorIds.NATT_RFC3947 }, { type: PayloadType.VENDOR_ID, data: VendorIds.NATT_DRAFT_02N });
  }
  if (options.dpd) out.push({ type: PayloadType.VENDOR_ID, data: VendorIds.DPD });
  if (options.fragmentation) out.push({ type: PayloadType.VENDOR_ID, data: FRAGMENTATION_CAPABLE });
  return out;
}

/**
 * What a responder answers with: NAT-T only in the version the peer offered and we take (RFC 3947, else the
 * draft), IKE fragmentation only when the peer announced it, DPD when enabled. Nothing the peer cannot use:
 * message 2 then stays no larger than a message 1 with the same vendor IDs, which bounds what a forged
 * message 1 can make us send (amplification, issue 20).
 */
export function answerVendorIds(options: { natt: boolean; dpd: boolean; fragmentation?: boolean }, peer: PeerVendorIds): Payload[] {
  const out: Payload[] = [];
  if (options.natt && peer.natt === 'rfc3947') out.push({ type: PayloadType.VENDOR_ID, data: VendorIds.NATT_RFC3947 });
  else if (options.natt && peer.natt !== null) out.push({ type: PayloadType.VENDOR_ID, data: VendorIds.NATT_DRAFT_02N });
  if (options.dpd) out.push({ type: PayloadType.VENDOR_ID, data: VendorIds.DPD });
  if (options.fragmentation && peer.fragmentation) out.push({ type: PayloadType.VENDOR_ID, data: FRAGMENTATION_CAPABLE });
  return out;
}
