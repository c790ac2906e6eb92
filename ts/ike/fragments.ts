// IKEv1 fragmentation as Cisco, strongSwan and Libreswan speak it (no RFC): announced by the FRAGMENTATION
// vendor ID; a message larger than the path allows travels as several ISAKMP messages with the same cookies,
// message ID 0, exchange type Main or Aggressive Mode, each carrying one Fragment payload (132): fragment ID,
// number (from 1), flags (bit 0: last), and a slice of the whole original message, header included.
//
// `fragment` cuts; `Reassembly` puts back together. Both are pure (no clock, no I/O): the gateway hands in
// datagrams and the time. The reassembly holds at most `maxExchanges` partial messages (the oldest is dropped),
// each at most `maxFragments` fragments and `maxBytes` bytes, and forgets any not completed within `timeoutMs`:
// a flood of fragments costs bounded memory and leaves nothing behind.
import { ExchangeType, ISAKMP_HEADER_LENGTH, PayloadType, encodeMessage, parseMessage, type IsakmpHeader } from '../isakmp/index.js';

/** Fragment payload flag: this is the last fragment. */
const LAST_FRAGMENT = 1;
/** ISAKMP header + Fragment payload header (generic 4 + ID 2 + number 1 + flags 1). */
const OVERHEAD = ISAKMP_HEADER_LENGTH + 8;

export interface FragmentOptions {
  /** Largest datagram (ISAKMP message) to send; strongSwan's default is 1280. */
  size: number;
  /** The exchange the fragments are labelled with: Aggressive Mode connections use AGGRESSIVE, all else Main Mode. */
  aggressive: boolean;
  /** Fragment ID (strongSwan always uses 1). */
  id?: number;
}

/** Cuts `message` (a whole encoded ISAKMP message) into fragment messages of at most `size` bytes. */
export function fragment(message: Buffer, header: Pick<IsakmpHeader, 'initiatorCookie' | 'responderCookie'>, o: FragmentOptions): Buffer[] {
  const room = o.size - OVERHEAD;
  if (room < 64) throw new RangeError(`fragment size ${o.size} leaves less than 64 bytes per fragment`);
  const count = Math.ceil(message.length / room);
  if (count > 255) throw new RangeError(`a ${message.length}-byte message needs ${count} fragments of ${o.size} bytes (at most 255)`);
  const out: Buffer[] = [];
  for (let n = 1; n <= count; n++) {
    out.push(
      encodeMessage({
        header: {
          initiatorCookie: header.initiatorCookie,
          responderCookie: header.responderCookie,
          nextPayload: PayloadType.FRAGMENT,
          version: 0x10,
          exchangeType: o.aggressive ? ExchangeType.AGGRESSIVE : ExchangeType.IDENTITY_PROTECTION,
          flags: 0,
          messageId: 0,
          length: 0,
        },
        payloads: [{ type: PayloadType.FRAGMENT, fragmentId: o.id ?? 1, fragmentNumber: n, flags: n === count ? LAST_FRAGMENT : 0, data: message.subarray((n - 1) * room, n * room) }],
      }),
    );
  }
  return out;
}

export interface ReassemblyLimits {
  /** Fragments of one message (Windows sends more than 16 at small MTUs). Default 64. */
  maxFragments: number;
  /** Bytes of one reassembled message. Default 64 KiB. */
  maxBytes: number;
  /** A message not complete by then is dropped. Default 10 s. */
  timeoutMs: number;
  /** Partial messages kept at once (all peers); the oldest goes first. Default 256. */
  maxExchanges: number;
}

export const DEFAULT_REASSEMBLY: ReassemblyLimits = { maxFragments: 64, maxBytes: 64 * 1024, timeoutMs: 10_000, maxExchanges: 256 };

interface PartialMessage {
  readonly started: number;
  readonly parts: Map<number, Buffer>;
  bytes: number;
  last: number;
}

export type FragmentResult =
  /** A whole message, to be handled as if it had arrived in one datagram. */
  | { kind: 'complete'; message: Buffer }
  /** Kept, more to come (or a duplicate). */
  | { kind: 'pending' }
  /** Not a fragment we take: the reason (for counters and traces; nothing is sent back). */
  | { kind: 'dropped'; reason: string };

export class Reassembly {
  private readonly partial = new Map<string, PartialMessage>();
  readonly limits: ReassemblyLimits;

  constructor(limits: Partial<ReassemblyLimits> = {}) {
    this.limits = { ...DEFAULT_REASSEMBLY, ...limits };
  }

  /** Messages being reassembled now. */
  get size(): number {
    return this.partial.size;
  }

  /** One datagram whose first payload is a Fragment, from `peer` (address:port) at `now`. */
  add(datagram: Buffer, peer: string, now: number): FragmentResult {
    this.expire(now);
    const parsed = parseMessage(datagram);
    if (!parsed.ok || !('payloads' in parsed.value)) return { kind: 'dropped', reason: parsed.ok ? 'encrypted' : parsed.error.message };
    const f = parsed.value.payloads[0];
    if (f === undefined || f.type !== PayloadType.FRAGMENT || parsed.value.payloads.length !== 1) return { kind: 'dropped', reason: 'not exactly one Fragment payload' };
    const { fragmentNumber: n, data } = f;
    const { limits } = this;
    if (n === 0 || n > limits.maxFragments) return { kind: 'dropped', reason: `fragment number ${n} (1-${limits.maxFragments})` };
    const h = parsed.value.header;
    const key = `${peer}/${h.initiatorCookie.toString('hex')}/${h.responderCookie.toString('hex')}/${f.fragmentId}`;
    let p = this.partial.get(key);
    if (p === undefined) {
      if (this.partial.size >= limits.maxExchanges) this.partial.delete(this.partial.keys().next().value!);
      this.partial.set(key, (p = { started: now, parts: new Map(), bytes: 0, last: 0 }));
    }
    if (p.parts.has(n)) return { kind: 'pending' }; // a retransmission of a fragment we hold
    if ((f.flags & LAST_FRAGMENT) !== 0) {
      if (p.last !== 0 && p.last !== n) return this.drop(key, `two last fragments (${p.last} and ${n})`);
      for (const held of p.parts.keys()) if (held > n) return this.drop(key, `fragment ${held} after the last one (${n})`);
      p.last = n;
    }
    if (p.last !== 0 && n > p.last) return this.drop(key, `fragment ${n} after the last one (${p.last})`);
    if (p.bytes + data.length > limits.maxBytes) return this.drop(key, `message larger than ${limits.maxBytes} bytes`);
    p.parts.set(n, Buffer.from(data));
    p.bytes += data.length;
    // every number held is distinct and at most `last`: `last` of them are exactly 1..last
    if (p.last === 0 || p.parts.size !== p.last) return { kind: 'pending' };
    this.partial.delete(key);
    const parts: Buffer[] = [];
    for (let i = 1; i <= p.last; i++) parts.push(p.parts.get(i)!);
    return { kind: 'complete', message: Buffer.concat(parts, p.bytes) };
  }

  /** Forgets what has waited longer than the timeout. */
  expire(now: number): void {
    // insertion order is start order: stop at the first one still young
    for (const [k, p] of this.partial) {
      if (now - p.started < this.limits.timeoutMs) break;
      this.partial.delete(k);
    }
  }

  clear(): void {
    this.partial.clear();
  }

  private drop(key: string, reason: string): FragmentResult {
    this.partial.delete(key);
    return { kind: 'dropped', reason };
  }
}
