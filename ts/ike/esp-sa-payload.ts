// The Quick Mode SA payload for ESP (RFC 2407 4.4 / 4.5): EspProposal <-> proposal/transform with the
// IPsec SA attributes, and the responder's choice among the initiator's offer.
import { dhGroupInfo } from '../crypto/index.js';
import {
  EncapsulationMode,
  EspTransformId,
  IpsecAttr,
  LifeType,
  PayloadType,
  ProtocolId,
  attrNumber,
  attrValue,
  lifeValueAttr,
  tv,
  type Attribute,
  type Proposal,
  type SaPayload,
  type Transform,
} from '../isakmp/index.js';
import type { EspProposal } from './esp-proposals.js';
import type { SelectionOrder } from './proposals.js';

const SIT_IDENTITY_ONLY = Buffer.from([0, 0, 0, 1]);
/** RFC 2407 4.5: without a lifetime attribute the SA lives 28800 seconds. */
export const DEFAULT_IPSEC_LIFETIME_SECONDS = 28800;

export interface EspSaOptions {
  lifetimeSeconds: number;
  lifetimeKilobytes?: number;
  /** EncapsulationMode value (1 tunnel, 2 transport, 3/4 UDP, 61443/61444 draft UDP). */
  encapsulationMode: number;
}

/** Attribute order as strongSwan writes it, so that a fixture's message can be rebuilt byte for byte. */
export function espTransform(p: EspProposal, o: EspSaOptions, number = 1): Transform {
  const attributes: Attribute[] = [];
  if (p.encryption.keyBits !== undefined) attributes.push(tv(IpsecAttr.KEY_LENGTH, p.encryption.keyBits));
  if (p.integrity) attributes.push(tv(IpsecAttr.AUTHENTICATION_ALGORITHM, p.integrity.authAlgorithm));
  if (p.pfsGroup !== undefined) attributes.push(tv(IpsecAttr.GROUP_DESCRIPTION, p.pfsGroup));
  attributes.push(tv(IpsecAttr.ENCAPSULATION_MODE, o.encapsulationMode));
  attributes.push(tv(IpsecAttr.SA_LIFE_TYPE, LifeType.SECONDS), lifeValueAttr(IpsecAttr.SA_LIFE_DURATION, o.lifetimeSeconds));
  if (o.lifetimeKilobytes !== undefined) {
    attributes.push(tv(IpsecAttr.SA_LIFE_TYPE, LifeType.KILOBYTES), lifeValueAttr(IpsecAttr.SA_LIFE_DURATION, o.lifetimeKilobytes));
  }
  if (p.esn) attributes.push(tv(IpsecAttr.EXTENDED_SEQUENCE_NUMBER, 1));
  return { number, transformId: p.encryption.transformId, attributes };
}

/** Initiator's SA payload: one ESP proposal (numbered 1..n) with one transform per EspProposal, all with our SPI. */
export function espOffer(proposals: readonly EspProposal[], spi: Buffer, o: EspSaOptions): SaPayload {
  return {
    type: PayloadType.SA,
    doi: 1,
    situation: SIT_IDENTITY_ONLY,
    proposals: proposals.map((p, i) => ({ number: i + 1, protocolId: ProtocolId.IPSEC_ESP, spi, transforms: [espTransform(p, o)] })),
  };
}

/** What one offered ESP transform says. */
export interface EspTransformValue {
  transformId: number;
  keyBits?: number;
  authAlgorithm?: number;
  group?: number;
  esn: boolean;
  encapsulationMode?: number;
  lifetimeSeconds?: number;
  lifetimeKilobytes?: number;
  /** Attribute types we do not understand (such a transform is not acceptable). */
  unknown: number[];
}

export function espTransformValue(t: Transform): EspTransformValue {
  const v: EspTransformValue = { transformId: t.transformId, esn: false, unknown: [] };
  let lifeType: number | null = null;
  for (const a of t.attributes) {
    const n = attrNumber(a);
    switch (a.type) {
      case IpsecAttr.SA_LIFE_TYPE:
        lifeType = n;
        break;
      case IpsecAttr.SA_LIFE_DURATION: {
        const d = attrValue(a);
        // Above 2^53 is "forever" for our purposes: cap it.
        const secs = typeof d === 'bigint' ? Number.MAX_SAFE_INTEGER : d;
        if (secs === null) v.unknown.push(a.type);
        else if (lifeType === LifeType.SECONDS) v.lifetimeSeconds = secs;
        else if (lifeType === LifeType.KILOBYTES) v.lifetimeKilobytes = secs;
        else v.unknown.push(a.type);
        break;
      }
      case IpsecAttr.GROUP_DESCRIPTION:
        if (n === null) v.unknown.push(a.type);
        else v.group = n;
        break;
      case IpsecAttr.ENCAPSULATION_MODE:
        if (n === null) v.unknown.push(a.type);
        else v.encapsulationMode = n;
        break;
      case IpsecAttr.AUTHENTICATION_ALGORITHM:
        if (n === null) v.unknown.push(a.type);
        else v.authAlgorithm = n;
        break;
      case IpsecAttr.KEY_LENGTH:
        if (n === null) v.unknown.push(a.type);
        else v.keyBits = n;
        break;
      case IpsecAttr.EXTENDED_SEQUENCE_NUMBER:
        v.esn = n === 1;
        break;
      default:
        v.unknown.push(a.type);
    }
  }
  return v;
}

/** Same algorithms, PFS group and ESN (lifetime and mode are checked separately). */
export function sameEsp(ours: EspProposal, v: EspTransformValue): boolean {
  return (
    v.unknown.length === 0 &&
    ours.encryption.transformId === v.transformId &&
    ours.encryption.keyBits === v.keyBits &&
    ours.integrity?.authAlgorithm === v.authAlgorithm &&
    ours.pfsGroup === v.group &&
    ours.esn === v.esn
  );
}

export interface EspChoice {
  proposal: Proposal;
  transform: Transform;
  value: EspTransformValue;
  /** Our proposal that matched. */
  ours: EspProposal;
}

/**
 * The responder's choice among ESP proposals with a 4-byte SPI. `modeOk` says whether an encapsulation
 * mode is acceptable. 'responder' order: our priority first; 'initiator' order: the offer's.
 */
export function selectEsp(
  offer: readonly Proposal[],
  ours: readonly EspProposal[],
  order: SelectionOrder,
  modeOk: (mode: number | undefined) => boolean,
): EspChoice | null {
  const offered: { proposal: Proposal; transform: Transform; value: EspTransformValue }[] = [];
  for (const p of offer) {
    // A proposal bundling ESP with AH or IPComp (same number) is not something we can install: skip it.
    if (p.protocolId !== ProtocolId.IPSEC_ESP || p.spi.length !== 4 || bundled(offer, p.number)) continue;
    for (const t of p.transforms) {
      const value = espTransformValue(t);
      if (modeOk(value.encapsulationMode)) offered.push({ proposal: p, transform: t, value });
    }
  }
  if (order === 'responder') {
    for (const o of ours) {
      const hit = offered.find((x) => sameEsp(o, x.value));
      if (hit) return { ...hit, ours: o };
    }
  } else {
    for (const x of offered) {
      const o = ours.find((y) => sameEsp(y, x.value));
      if (o) return { ...x, ours: o };
    }
  }
  return null;
}

/** Does more than one proposal of the offer carry this number (RFC 2408 4.2: a bundle)? */
function bundled(offer: readonly Proposal[], number: number): boolean {
  let n = 0;
  for (const q of offer) if (q.number === number && ++n > 1) return true;
  return false;
}

const CIPHER_NAMES: Record<number, string> = {
  [EspTransformId.ESP_DES]: 'des',
  [EspTransformId.ESP_3DES]: '3des',
  [EspTransformId.ESP_NULL]: 'null',
  [EspTransformId.ESP_CHACHA20_POLY1305]: 'chacha20poly1305',
};
const AUTH_NAMES: Record<number, string> = { 1: 'md5', 2: 'sha1', 5: 'sha256', 6: 'sha384', 7: 'sha512' };

/** strongSwan-style name of an offered transform for error messages: 'aes128-sha1-modp2048'. */
export function espTransformName(v: EspTransformValue): string {
  const cipher =
    v.transformId === EspTransformId.ESP_AES_CBC ? `aes${v.keyBits ?? ''}` : v.transformId === EspTransformId.ESP_AES_GCM_16 ? `aes${v.keyBits ?? ''}gcm16` : CIPHER_NAMES[v.transformId] ?? `esp-transform-${v.transformId}`;
  const parts = [cipher];
  if (v.authAlgorithm !== undefined) parts.push(AUTH_NAMES[v.authAlgorithm] ?? `auth-${v.authAlgorithm}`);
  if (v.group !== undefined) parts.push(dhGroupInfo(v.group as never)?.keyword ?? `group${v.group}`);
  if (v.esn) parts.push('esn');
  return parts.join('-') + (v.unknown.length ? `(unknown attributes ${v.unknown.join(',')})` : '');
}

/** All ESP transforms of an offer, named. */
export function describeEspOffer(offer: readonly Proposal[]): string {
  const names = offer.filter((p) => p.protocolId === ProtocolId.IPSEC_ESP).flatMap((p) => p.transforms.map((t) => espTransformName(espTransformValue(t))));
  const other = offer.filter((p) => p.protocolId !== ProtocolId.IPSEC_ESP).length;
  return (names.join(', ') || 'no ESP proposal') + (other ? ` (+${other} non-ESP proposal(s))` : '');
}

/** The UDP-encapsulated counterpart of tunnel/transport for the NAT-T flavour in use. */
export function encapsulationMode(mode: 'tunnel' | 'transport', udp: 'rfc3947' | 'draft' | null): number {
  if (udp === null) return mode === 'tunnel' ? EncapsulationMode.TUNNEL : EncapsulationMode.TRANSPORT;
  if (udp === 'draft') return mode === 'tunnel' ? EncapsulationMode.UDP_TUNNEL_DRAFT : EncapsulationMode.UDP_TRANSPORT_DRAFT;
  return mode === 'tunnel' ? EncapsulationMode.UDP_TUNNEL : EncapsulationMode.UDP_TRANSPORT;
}

/** EncapsulationMode value -> mode and whether ESP travels in UDP; null for an unknown value. */
export function decodeEncapsulationMode(v: number): { mode: 'tunnel' | 'transport'; udp: boolean } | null {
  switch (v) {
    case EncapsulationMode.TUNNEL:
      return { mode: 'tunnel', udp: false };
    case EncapsulationMode.TRANSPORT:
      return { mode: 'transport', udp: false };
    case EncapsulationMode.UDP_TUNNEL:
    case EncapsulationMode.UDP_TUNNEL_DRAFT:
      return { mode: 'tunnel', udp: true };
    case EncapsulationMode.UDP_TRANSPORT:
    case EncapsulationMode.UDP_TRANSPORT_DRAFT:
      return { mode: 'transport', udp: true };
    default:
      return null;
  }
}

/** RESPONDER-LIFETIME notify data (RFC 2407 4.6.3.11): SA Life Type / Duration attribute pairs, encoded. */
export function encodeLifetimeAttributes(
  seconds: number | undefined,
  kilobytes: number | undefined,
  // IPsec SA attributes (RFC 2407 4.5) by default; the ISAKMP SA's are IKE's Life Type / Life Duration (RFC 2409 A)
  types: { lifeType: number; lifeDuration: number } = { lifeType: IpsecAttr.SA_LIFE_TYPE, lifeDuration: IpsecAttr.SA_LIFE_DURATION },
): Buffer {
  const attrs: Attribute[] = [];
  if (seconds !== undefined) attrs.push(tv(types.lifeType, LifeType.SECONDS), lifeValueAttr(types.lifeDuration, seconds));
  if (kilobytes !== undefined) attrs.push(tv(types.lifeType, LifeType.KILOBYTES), lifeValueAttr(types.lifeDuration, kilobytes));
  return Buffer.concat(attrs.map(encodeAttribute));
}

function encodeAttribute(a: Attribute): Buffer {
  if (typeof a.value === 'number') {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt16BE(0x8000 | a.type, 0);
    b.writeUInt16BE(a.value, 2);
    return b;
  }
  const b = Buffer.allocUnsafe(4 + a.value.length);
  b.writeUInt16BE(a.type, 0);
  b.writeUInt16BE(a.value.length, 2);
  a.value.copy(b, 4);
  return b;
}

/** Reads RESPONDER-LIFETIME data back; malformed data yields what could be read before the fault. */
export function decodeLifetimeAttributes(data: Buffer): { seconds?: number; kilobytes?: number } {
  const attrs: Attribute[] = [];
  for (let o = 0; o + 4 <= data.length && attrs.length < 16; ) {
    const t = data.readUInt16BE(o);
    if (t & 0x8000) {
      attrs.push({ type: t & 0x7fff, value: data.readUInt16BE(o + 2) });
      o += 4;
    } else {
      const len = data.readUInt16BE(o + 2);
      if (o + 4 + len > data.length) break;
      attrs.push({ type: t, value: data.subarray(o + 4, o + 4 + len) });
      o += 4 + len;
    }
  }
  const v = espTransformValue({ number: 0, transformId: 0, attributes: attrs });
  const out: { seconds?: number; kilobytes?: number } = {};
  if (v.lifetimeSeconds !== undefined) out.seconds = v.lifetimeSeconds;
  if (v.lifetimeKilobytes !== undefined) out.kilobytes = v.lifetimeKilobytes;
  return out;
}
