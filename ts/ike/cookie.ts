// ISAKMP cookies (RFC 2408 section 2.5.3): unique per exchange and costly to predict. Each cookie is the first
// 8 bytes of HMAC-SHA-256 over
//   time bucket (60 s) | peer address | peer port | our address | our port | peer's cookie (or zeros) | counter
// keyed with a 32-byte secret drawn once per generator. The addresses tie a cookie to its exchange, the
// secret makes it unpredictable, the time bucket lets a deployment rotate or audit, and the counter keeps
// cookies distinct when many exchanges share one address pair (a load tester's initiators, a NAT's clients).
// IKEv1 has no stateless cookie check, so nothing is re-verified later: lookups go by the full cookie pair.
import type { CryptoProvider } from '../crypto/index.js';
import { parseIpv4, parseIpv6 } from '../isakmp/index.js';

export interface Endpoint {
  address: string;
  port: number;
}

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

export class CookieGenerator {
  private readonly secret: Buffer;
  private counter = 0n;

  constructor(private readonly crypto: CryptoProvider, secret?: Uint8Array) {
    this.secret = secret ? Buffer.from(secret) : crypto.randomBytes(32);
  }

  make(now: number, local: Endpoint, remote: Endpoint, peerCookie?: Uint8Array): Buffer {
    const head = Buffer.allocUnsafe(16);
    head.writeBigUInt64BE(BigInt(Math.floor(now / COOKIE_TIME_BUCKET_MS)) & 0xffffffffffffffffn, 0);
    head.writeBigUInt64BE(this.counter++ & 0xffffffffffffffffn, 8);
    const mac = this.crypto.prf(
      'sha256',
      this.secret,
      head.subarray(0, 8),
      addressBytes(remote.address),
      portBytes(remote.port),
      addressBytes(local.address),
      portBytes(local.port),
      peerCookie ?? ZERO_COOKIE,
      head.subarray(8),
    );
    return mac.subarray(0, 8);
  }
}

export const ZERO_COOKIE: Buffer = Buffer.alloc(8);
