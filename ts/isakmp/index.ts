// ISAKMP (IKEv1) codec: bytes <-> typed messages. Pure: no crypto, no I/O. See README.md in this folder.
export * from './types.js';
export * from './constants.js';
export * from './limits.js';
export { IsakmpEncodeError, codecError, payloadName } from './errors.js';
export { parseHeader, parseMessage, parsePayloads } from './parse.js';
export type { ParseOptions } from './parse.js';
export { encodeHeader, encodeHeaderInto, encodeMessage, encodePayloads, encodePayloadsInto, encodePayloadBody, payloadsLength } from './encode.js';
export { attrNumber, attrValue, findAttr, lifeValueAttr, tlv, tv } from './attributes.js';
export { describePayloads, findPayload, findPayloads, isKnownPayloadType } from './find.js';
export { bytesEqual, compareBytes, startsWithBytes } from './bytes.js';
export {
  decodeIdPayload,
  decodeIdentity,
  encodeIdentity,
  formatIpv4,
  formatIpv6,
  idPayload,
  idToString,
  parseIpv4,
  parseIpv6,
  writeIpv4,
} from './identity.js';
export type { Identity } from './identity.js';
