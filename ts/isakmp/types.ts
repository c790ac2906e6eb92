// Typed model of an ISAKMP (IKEv1) message: RFC 2408 framing, RFC 2407 / 2409 payload bodies,
// RFC 3947 NAT-T payloads, draft-dukes-ike-mode-cfg attribute payload, Cisco/strongSwan IKE fragments.
//
// Parsed payloads carry `raw` = the exact bytes of the payload INCLUDING its 4-byte generic header,
// as a subarray of the input (no copy). The phase-1/2 hashes are computed over these bytes
// (SAi_b = raw.subarray(4), IDii_b = raw.subarray(4), Quick Mode HASH(1) over the payloads after HASH).
// Encoding ignores `raw`.

export interface IsakmpHeader {
  initiatorCookie: Buffer; // 8 bytes
  responderCookie: Buffer; // 8 bytes
  nextPayload: number;
  version: number; // 0x10 = major 1, minor 0
  exchangeType: number;
  flags: number;
  messageId: number; // uint32
  length: number; // whole message, header included
}

/** Data attribute (RFC 2408 3.3). `number` => TV (AF=1) form, 0..65535; `Buffer` => TLV (AF=0) form. */
export interface Attribute {
  type: number; // 15-bit attribute type, without the AF bit
  value: number | Buffer;
}

export interface Transform {
  number: number;
  transformId: number;
  attributes: Attribute[];
}

export interface Proposal {
  number: number;
  protocolId: number;
  spi: Buffer; // size 0 (ISAKMP, usually), 4 (AH/ESP), 2 (IPCOMP CPI), 16 (ISAKMP with cookies)
  transforms: Transform[];
}

interface PayloadBase {
  /** Exact bytes of the payload incl. its generic header (parse output only; ignored by the encoder). */
  raw?: Buffer;
}

export interface SaPayload extends PayloadBase {
  type: 1;
  doi: number;
  /** Usually the 4-byte situation bitmap; with SIT_SECRECY / SIT_INTEGRITY (RFC 2407 4.6.2) it also holds the
   * labeled-domain fields that follow it, kept verbatim. */
  situation: Buffer;
  proposals: Proposal[];
}
export interface KePayload extends PayloadBase { type: 4; data: Buffer }
export interface IdPayload extends PayloadBase { type: 5; idType: number; protocolId: number; port: number; data: Buffer }
export interface CertPayload extends PayloadBase { type: 6; encoding: number; data: Buffer }
export interface CrPayload extends PayloadBase { type: 7; encoding: number; data: Buffer }
export interface HashPayload extends PayloadBase { type: 8; data: Buffer }
export interface SigPayload extends PayloadBase { type: 9; data: Buffer }
export interface NoncePayload extends PayloadBase { type: 10; data: Buffer }
export interface NotifyPayload extends PayloadBase {
  type: 11;
  doi: number;
  protocolId: number;
  notifyType: number;
  spi: Buffer; // SPI size = spi.length
  data: Buffer;
}
export interface DeletePayload extends PayloadBase {
  type: 12;
  doi: number;
  protocolId: number;
  spiSize: number; // explicit: a Delete may carry 0 SPIs of size 16
  spis: Buffer[];
}
export interface VendorIdPayload extends PayloadBase { type: 13; data: Buffer }
/** Mode-config / XAUTH attribute payload (draft-dukes-ike-mode-cfg-02, payload type 14). */
export interface AttributePayload extends PayloadBase {
  type: 14;
  cfgType: number; // ModeCfgType: CFG_REQUEST .. CFG_ACK
  identifier: number;
  attributes: Attribute[];
}
/** NAT-D: RFC 3947 (20) or draft-ietf-ipsec-nat-t-ike-02/03 (130). */
export interface NatDPayload extends PayloadBase { type: 20 | 130; data: Buffer }
/** NAT-OA: RFC 3947 (21) or draft (131). `data` is the address (4 or 16 bytes). */
export interface NatOaPayload extends PayloadBase { type: 21 | 131; idType: number; data: Buffer }
/** IKEv1 fragment (Cisco / strongSwan, payload type 132). flags bit 0 = last fragment. */
export interface FragmentPayload extends PayloadBase {
  type: 132;
  fragmentId: number;
  fragmentNumber: number;
  flags: number;
  data: Buffer;
}
/** A payload type we do not interpret but may skip (see README: unknown payload rule). Its `type` is any octet
 * value that is not a known payload type (nor NONE, Proposal, Transform), so `p.type === 1` narrows a Payload to
 * SaPayload. Build one from a plain number with `type: n as UnknownPayloadType`. */
export interface UnknownPayload extends PayloadBase {
  type: UnknownPayloadType;
  critical: boolean;
  data: Buffer;
}

export type KnownPayload =
  | SaPayload
  | KePayload
  | IdPayload
  | CertPayload
  | CrPayload
  | HashPayload
  | SigPayload
  | NoncePayload
  | NotifyPayload
  | DeletePayload
  | VendorIdPayload
  | AttributePayload
  | NatDPayload
  | NatOaPayload
  | FragmentPayload;

export type Payload = KnownPayload | UnknownPayload;

/** Maps a known payload type number to its interface (used by findPayload / findPayloads). */
export interface PayloadByType {
  1: SaPayload;
  4: KePayload;
  5: IdPayload;
  6: CertPayload;
  7: CrPayload;
  8: HashPayload;
  9: SigPayload;
  10: NoncePayload;
  11: NotifyPayload;
  12: DeletePayload;
  13: VendorIdPayload;
  14: AttributePayload;
  20: NatDPayload;
  130: NatDPayload;
  21: NatOaPayload;
  131: NatOaPayload;
  132: FragmentPayload;
}
export type KnownPayloadType = keyof PayloadByType;

type Enumerate<N extends number, Acc extends number[] = []> = Acc['length'] extends N ? Acc[number] : Enumerate<N, [...Acc, Acc['length']]>;
/** 0..255 */
export type Octet = Enumerate<256>;
/** Payload type numbers that parse to UnknownPayload. */
export type UnknownPayloadType = Exclude<Octet, KnownPayloadType | 0 | 2 | 3>;

export interface ParsedMessage {
  header: IsakmpHeader;
  payloads: Payload[];
}
export interface EncryptedMessage {
  header: IsakmpHeader;
  /** Body after the 28-byte header up to header.length, still encrypted (subarray of the input). */
  encrypted: Buffer;
}

export interface CodecError {
  notifyType: number; // NotifyType value to send back (RFC 2408 3.14.1)
  kind: string; // registry name, e.g. 'PAYLOAD_MALFORMED'
  message: string; // names payload and offset
  offset: number; // byte offset in the message (or body + baseOffset) where the problem is
}

export type CodecResult<T> = { ok: true; value: T } | { ok: false; error: CodecError };
