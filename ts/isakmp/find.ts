// Typed lookups over a parsed payload list.

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
