// ISAKMP cookies (RFC 2408 section 2.5.3): unique per exchange and costly to predict. Each cookie is the first
// 8 bytes of HMAC-SHA-256 over
//   time bucket (60 s) | peer address | peer port | our address | our port | peer's cookie (or zeros) | counter
// keyed with a 32-byte secret drawn once per generator. The addresses tie a cookie to its exchange, the
// secret makes it unpredictable, the time bucket lets a deployment rotate or audit, and the counter keeps
// cookies distinct when many exchanges share one address pair (a load tester's initiators, a NAT's clients).
// IKEv1 has no stateless cookie check, so nothing is re-verified later: lookups go by the full cookie pair.
import type { CryptoProvider } from '../crypto/index.js';
import { parseIpv4, parseIpv6, writeIpv4 } from '../isakmp/index.js';
import type { Endpoint } from './sa-types.js';

export type { Endpoint } from './sa-types.js';

export const COOKIE_TIME_BUCKET_MS = 60_000;

/** Address bytes for hashing (NAT-D, cookies): 4 for IPv4, 16 for IPv6, UTF-8 otherwise. */
export function addressBytes(address: string): Buffer {
  return parseIpv4(address) ?? parseIpv6(address) ?? Buffer.from(address, 'utf8');
}

export function portBytes(port: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(port & 0xffff);
  return b;
}

/** addressBytes | portBytes in one buffer: what NAT-D hashes for an endpoint. */
export function endpointBytes(e: Endpoint): Buffer {
  const b = Buffer.allocUnsafe(6);
  if (!writeIpv4(e.address, b, 0)) return Buffer.concat([addressBytes(e.address), portBytes(e.port)]);
  b[4] = (e.port >> 8) & 0xff;
  b[5] = e.port & 0xff;
  return b;
}

/** At least the bytes writeEndpoint writes for this address: an IP literal is at most 16, and UTF-8 takes at
 * most 3 bytes per UTF-16 unit (a bound, so no byteLength call on the common path). */
function endpointRoom(address: string): number {
  return Math.max(16, 3 * address.length) + 2;
}

/** Writes addressBytes(e.address) | port at out[o]; returns the offset after it. */
function writeEndpoint(out: Buffer, o: number, e: Endpoint): number {
  if (writeIpv4(e.address, out, o)) o += 4;
  else o += addressBytes(e.address).copy(out, o);
  out[o] = (e.port >> 8) & 0xff;
  out[o + 1] = e.port & 0xff;
  return o + 2;
}

export class CookieGenerator {
  private readonly secret: Buffer;
  private counter = 0;
  /** The hashed input is assembled here (one buffer, one prf call); grown for unusually long addresses. */
  private scratch = Buffer.alloc(8 + 2 * (16 + 2) + 8 + 8);

  constructor(private readonly crypto: CryptoProvider, secret?: Uint8Array) {
    this.secret = secret ? Buffer.from(secret) : crypto.randomBytes(32);
  }

  make(now: number, local: Endpoint, remote: Endpoint, peerCookie?: Uint8Array): Buffer {
    const peer = peerCookie ?? ZERO_COOKIE;
    const need = 8 + endpointRoom(remote.address) + endpointRoom(local.address) + peer.length + 8;
    if (need > this.scratch.length) this.scratch = Buffer.alloc(need);
    const b = this.scratch;
    const bucket = Math.floor(now / COOKIE_TIME_BUCKET_MS);
    // Two 32-bit halves write the same 8 bytes as the 64-bit big-endian value without a BigInt per call;
    // anything outside [0, 2^53) (a negative or absurd clock) keeps the exact two's-complement BigInt form.
    if (bucket >= 0 && bucket <= Number.MAX_SAFE_INTEGER) writeU64(b, 0, bucket);
    else b.writeBigUInt64BE(BigInt(bucket) & 0xffffffffffffffffn, 0);
    let o = writeEndpoint(b, 8, remote);
    o = writeEndpoint(b, o, local);
    b.set(peer, o);
    o += peer.length;
    writeU64(b, o, this.counter);
    this.counter = this.counter < Number.MAX_SAFE_INTEGER ? this.counter + 1 : 0;
    const mac = this.crypto.prf('sha256', this.secret, b.subarray(0, o + 8));
    return mac.subarray(0, 8);
  }
}

function writeU64(b: Buffer, o: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / 0x100000000), o);
  b.writeUInt32BE(v >>> 0, o + 4);
}

export const ZERO_COOKIE: Buffer = Buffer.alloc(8);
