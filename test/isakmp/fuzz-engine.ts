// Mutation fuzzer for the ISAKMP parser (shared by fuzz.test.ts and the long-running fuzz.ts command).
// Inputs: the capture fixtures and generated messages, mutated by bit flips, byte edits, truncation,
// length-field edits (at the offsets of real length fields), splices of two seeds, inserted / duplicated /
// deleted ranges, plus fully random inputs. Invariants checked on every input:
//   1. parseMessage / parsePayloads / parseHeader never throw and return { ok } values;
//   2. the internal safety net (an "internal parser error") is never reached;
//   3. whatever parses re-encodes without throwing, and parse(encode(parse(x))) encodes to the same bytes.

import { encodeMessage, encodePayloads, parseHeader, parseMessage, parsePayloads } from '../../ts/isakmp/index.js';
import type { CodecResult, ParsedMessage, Payload } from '../../ts/isakmp/index.js';
import { captureSeeds, mainMode1, quickMode1, everyPayload, header } from './samples.js';

/** xorshift32: deterministic, seedable. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

interface Seed {
  bytes: Buffer;
  /** Offsets of 16-bit length fields (payload, proposal, transform, TLV attribute) and the 32-bit header length at 24. */
  lengthFields: number[];
}

function lengthFieldsOf(msg: Buffer): number[] {
  const out: number[] = [];
  const r = parseMessage(msg);
  if (!r.ok || 'encrypted' in r.value) return out;
  const base = msg.byteOffset;
  for (const p of r.value.payloads) {
    const at = p.raw!.byteOffset - base;
    out.push(at + 2);
    if (p.type === 1) {
      // Walk the SA body bytes for the proposal, transform and TLV attribute length fields.
      let pr = at + 12;
      for (const prop of p.proposals) {
        out.push(pr + 2);
        let t = pr + 8 + prop.spi.length;
        for (const tr of prop.transforms) {
          out.push(t + 2);
          let a = t + 8;
          for (const attr of tr.attributes) {
            if (typeof attr.value !== 'number') out.push(a + 2);
            a += typeof attr.value === 'number' ? 4 : 4 + attr.value.length;
          }
          t = a;
        }
        pr = t;
      }
    }
  }
  return out;
}

export function buildSeeds(): Seed[] {
  const msgs: Buffer[] = [...captureSeeds()];
  msgs.push(encodeMessage(mainMode1(8)));
  msgs.push(encodeMessage(quickMode1()));
  msgs.push(encodeMessage({ header: header(5), payloads: everyPayload() }));
  return msgs.map((bytes) => ({ bytes, lengthFields: lengthFieldsOf(bytes) }));
}

const INTERESTING = [0, 1, 2, 3, 4, 7, 8, 0x7f, 0x80, 0xff];

function mutate(rng: Rng, seeds: Seed[]): Buffer {
  const seed = seeds[rng.int(seeds.length)]!;
  let b: Buffer = Buffer.from(seed.bytes);
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    switch (rng.int(9)) {
      case 0: { // bit flips
        const n = 1 + rng.int(8);
        for (let i = 0; i < n && b.length > 0; i++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      }
      case 1: // interesting byte
        if (b.length > 0) b[rng.int(b.length)] = INTERESTING[rng.int(INTERESTING.length)]!;
        break;
      case 2: // truncation
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      case 3: { // length-field edit at a real length field
        const fields = seed.lengthFields;
        const o = rng.int(4) === 0 || fields.length === 0 ? 24 : fields[rng.int(fields.length)]!;
        if (o + 2 > b.length) break;
        const cur = o === 24 && b.length >= 28 ? b.readUInt32BE(24) : b.readUInt16BE(o);
        const choices = [0, 1, 3, 4, 7, 8, cur - 1, cur + 1, cur - 4, cur + 4, cur * 2, 0xffff, rng.int(0x10000)];
        const v = Math.max(0, Math.min(0xffff, choices[rng.int(choices.length)]!));
        if (o === 24 && b.length >= 28) b.writeUInt32BE(rng.int(3) === 0 ? 0xffffffff : v, 24);
        else b.writeUInt16BE(v, o);
        break;
      }
      case 4: { // splice with another seed
        const other = seeds[rng.int(seeds.length)]!.bytes;
        const cut = rng.int(b.length + 1);
        const from = rng.int(other.length + 1);
        b = Buffer.concat([b.subarray(0, cut), other.subarray(from)]);
        if (b.length >= 28 && rng.int(2) === 0) b.writeUInt32BE(b.length, 24);
        break;
      }
      case 5: { // insert random bytes
        const at = rng.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at)]);
        break;
      }
      case 6: { // duplicate a range
        const s = rng.int(b.length + 1);
        const e = s + rng.int(Math.min(64, b.length - s) + 1);
        b = Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]);
        break;
      }
      case 7: { // delete a range
        const s = rng.int(b.length + 1);
        const e = s + rng.int(Math.min(64, b.length - s) + 1);
        b = Buffer.concat([b.subarray(0, s), b.subarray(e)]);
        break;
      }
      default: // keep the header's length consistent so the body is reached
        if (b.length >= 28) b.writeUInt32BE(b.length, 24);
    }
  }
  // Most mutations should reach the payload parser: clear the E flag half of the time.
  if (b.length >= 28 && rng.int(2) === 0) b[19]! &= ~1;
  return b;
}

function randomInput(rng: Rng): Buffer {
  const n = rng.int(200);
  const b = rng.bytes(n);
  if (n >= 28 && rng.int(2) === 0) {
    // A plausible header so the payload parser sees random bodies.
    b[0] = 1;
    b[17] = 0x10;
    b[18] = [1, 2, 4, 5, 6, 32][rng.int(6)]!;
    b[19] = 0;
    b.writeUInt32BE(n, 24);
    b[16] = [1, 4, 5, 8, 10, 11, 12, 13, 14, 20, 132][rng.int(11)]!;
  }
  return b;
}

export interface FuzzStats {
  iterations: number;
  ok: number;
  errors: Record<string, number>;
  thrown: number;
  internal: number;
  roundTripFailures: number;
  firstProblem?: string;
}

function record(stats: FuzzStats, input: Buffer, r: CodecResult<unknown>): void {
  if (r.ok) {
    stats.ok++;
    return;
  }
  stats.errors[r.error.kind] = (stats.errors[r.error.kind] ?? 0) + 1;
  if (r.error.message.startsWith('internal parser error')) {
    stats.internal++;
    stats.firstProblem ??= `internal error on ${input.toString('hex')}: ${r.error.message}`;
  }
}

function checkRoundTrip(stats: FuzzStats, input: Buffer, header: ParsedMessage['header'] | null, payloads: Payload[]): void {
  try {
    const bytes = header ? encodeMessage({ header, payloads }) : encodePayloads(payloads);
    const again = header ? parseMessage(bytes, { trailing: 'none' }) : parsePayloads(payloads[0]?.type ?? 0, bytes, 0, { trailing: 'none' });
    if (!again.ok) throw new Error(`re-parse failed: ${again.error.message}`);
    const p2 = header ? (again.value as ParsedMessage).payloads : (again.value as Payload[]);
    const bytes2 = header ? encodeMessage({ header: (again.value as ParsedMessage).header, payloads: p2 }) : encodePayloads(p2);
    if (!bytes2.equals(bytes)) throw new Error('second encoding differs');
  } catch (e) {
    stats.roundTripFailures++;
    stats.firstProblem ??= `round trip on ${input.toString('hex')}: ${(e as Error).message}`;
  }
}

/** Runs `iterations` fuzz cases from `seed`; stops early after `deadlineMs` if given. */
export function runFuzz(iterations: number, seed = 1, deadlineMs?: number): FuzzStats {
  const rng = new Rng(seed);
  const seeds = buildSeeds();
  const stats: FuzzStats = { iterations: 0, ok: 0, errors: {}, thrown: 0, internal: 0, roundTripFailures: 0 };
  const start = Date.now();
  for (let i = 0; i < iterations; i++) {
    if (deadlineMs !== undefined && (i & 1023) === 0 && Date.now() - start > deadlineMs) break;
    stats.iterations++;
    const input = rng.int(10) === 0 ? randomInput(rng) : mutate(rng, seeds);
    try {
      const r = parseMessage(input);
      record(stats, input, r);
      if (r.ok && !('encrypted' in r.value)) checkRoundTrip(stats, input, r.value.header, r.value.payloads);
      // The same bytes as a decrypted body (no header), starting at a chain type taken from the input.
      if ((i & 3) === 0) {
        const body = input.subarray(Math.min(28, input.length));
        const pr = parsePayloads(input.length > 16 ? input[16]! : 1, body, 28);
        record(stats, input, pr);
        if (pr.ok) checkRoundTrip(stats, input, null, pr.value);
        record(stats, input, parseHeader(input));
      }
    } catch (e) {
      stats.thrown++;
      stats.firstProblem ??= `threw on ${input.toString('hex')}: ${(e as Error).stack}`;
    }
  }
  return stats;
}
