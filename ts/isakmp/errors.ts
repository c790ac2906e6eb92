import { NotifyType, nameOf } from './constants.js';
import type { CodecError, CodecResult } from './types.js';

/** Builds the error value returned by the parsers (never thrown). */
export function codecError(notifyType: number, offset: number, message: string): CodecError {
  return { notifyType, kind: nameOf(NotifyType, notifyType), message, offset };
}

export function fail<T>(notifyType: number, offset: number, message: string): CodecResult<T> {
  return { ok: false, error: codecError(notifyType, offset, message) };
}

/** Thrown by the encoders only, for arguments that cannot be put on the wire (a caller bug, e.g. a TV
 * attribute value > 65535 or a payload longer than 65535 bytes). Parsing never throws. */
export class IsakmpEncodeError extends Error {
  override name = 'IsakmpEncodeError';
  constructor(message: string) {
    super(message);
  }
}

/** Short payload names used in error messages and logs. */
export function payloadName(type: number): string {
  switch (type) {
    case 1: return 'SA';
    case 2: return 'Proposal';
    case 3: return 'Transform';
    case 4: return 'KE';
    case 5: return 'ID';
    case 6: return 'CERT';
    case 7: return 'CR';
    case 8: return 'HASH';
    case 9: return 'SIG';
    case 10: return 'NONCE';
    case 11: return 'Notification';
    case 12: return 'Delete';
    case 13: return 'Vendor ID';
    case 14: return 'Attribute';
    case 20: return 'NAT-D';
    case 21: return 'NAT-OA';
    case 130: return 'NAT-D (draft)';
    case 131: return 'NAT-OA (draft)';
    case 132: return 'Fragment';
    default: return `payload type ${type}`;
  }
}
