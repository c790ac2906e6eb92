// Typed lookups over a parsed payload list.

import { NotifyType, nameOf } from './constants.js';
import type { KnownPayloadType, Payload, PayloadByType } from './types.js';

/** First payload of the given type, typed, or undefined. */
export function findPayload<T extends KnownPayloadType>(payloads: readonly Payload[], type: T): PayloadByType[T] | undefined {
  for (const p of payloads) if (p.type === type) return p as PayloadByType[T];
  return undefined;
}

/** All payloads of the given type, typed, in message order. */
export function findPayloads<T extends KnownPayloadType>(payloads: readonly Payload[], type: T): PayloadByType[T][] {
  const out: PayloadByType[T][] = [];
  for (const p of payloads) if (p.type === type) out.push(p as PayloadByType[T]);
  return out;
}

/** True for payload types this codec parses into a typed payload (others become UnknownPayload). */
export function isKnownPayloadType(type: number): type is KnownPayloadType {
  return (type >= 4 && type <= 14) || type === 1 || type === 20 || type === 21 || (type >= 130 && type <= 132);
}

/** Short description for logs, e.g. 'HASH SA NONCE KE ID ID' (Notify types and unknown types spelled out). */
export function describePayloads(payloads: readonly Payload[]): string {
  const parts: string[] = [];
  for (const p of payloads) {
    switch (p.type) {
      case 1: parts.push('SA'); break;
      case 4: parts.push('KE'); break;
      case 5: parts.push('ID'); break;
      case 6: parts.push('CERT'); break;
      case 7: parts.push('CR'); break;
      case 8: parts.push('HASH'); break;
      case 9: parts.push('SIG'); break;
      case 10: parts.push('NONCE'); break;
      case 11: parts.push(`N(${nameOf(NotifyType, p.notifyType)})`); break;
      case 12: parts.push('D'); break;
      case 13: parts.push('VID'); break;
      case 14: parts.push('ATTR'); break;
      case 20: case 130: parts.push('NAT-D'); break;
      case 21: case 131: parts.push('NAT-OA'); break;
      case 132: parts.push('FRAG'); break;
      default: parts.push(`UNKNOWN(${p.type})`);
    }
  }
  return parts.join(' ');
}
