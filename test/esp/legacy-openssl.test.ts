// 3DES-CBC (RFC 2451) and HMAC-MD5-96 (RFC 2403) ESP packets against the `openssl` command of the system: a
// separately built OpenSSL (Debian's), not the one inside node that both our implementations use, so a key-split,
// IV or truncation mistake shared by the native and the node:crypto path still shows here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { espKeyLengths, splitEspKeymat, type EspAlgorithm } from '../../ts/esp/index.js';
import { IMPLS, prng, saPair, skipFor } from './helpers.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const noCli = hasOpenssl() ? false : 'the openssl command is not installed (Debian package openssl)';

function cli(args: string[], input: Buffer): Buffer {
  return execFileSync('openssl', args, { input });
}

/** The ESP packet as the openssl command builds it: header | IV | 3DES/AES-CBC(payload | pad | nh) | HMAC-96. */
function opensslPacket(alg: EspAlgorithm, keymat: Buffer, spi: number, seq: number, iv: Buffer, payload: Buffer, nh: number): Buffer {
  const g = espKeyLengths(alg);
  const { encryptionKey, integrityKey } = splitEspKeymat(alg, keymat);
  const ctLen = Math.ceil((payload.length + 2) / g.blockSize) * g.blockSize;
  const pad = ctLen - payload.length - 2;
  const plain = Buffer.concat([payload, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1)), Buffer.from([pad, nh])]);
  const ct = cli(['enc', `-${g.nodeCipher}`, '-K', encryptionKey.toString('hex'), '-iv', iv.toString('hex'), '-nopad'], plain);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(spi, 0);
  head.writeUInt32BE(seq, 4);
  const body = Buffer.concat([head, iv, ct]);
  const mac = cli(['dgst', `-${g.nodeHash}`, '-mac', 'HMAC', '-macopt', `hexkey:${integrityKey.toString('hex')}`, '-binary'], body);
  return Buffer.concat([body, mac.subarray(0, g.icvLength)]);
}

for (const impl of IMPLS) {
  test(`[${impl}] 3DES-CBC and HMAC-MD5-96 packets equal the openssl command's, and ours open its`, { skip: skipFor(impl) || noCli }, () => {
    const rnd = prng(19);
    for (const alg of ['3des-sha1', '3des-md5', 'aes128-md5', '3des-sha256'] as const) {
      const g = espKeyLengths(alg);
      const keymat = rnd(g.keymatLength);
      const spi = 0x01020304;
      const { out, in: inb } = saPair(alg, { keymat, spi, outImpl: impl, inImpl: impl });
      for (const size of [0, 1, 5, 6, 7, 64, 1399]) {
        const payload = rnd(size);
        const iv = rnd(g.ivLength);
        const seq = out.sequence() + 1n;
        const ref = opensslPacket(alg, keymat, spi, Number(seq), iv, payload, 4);
        assert.deepEqual(out.sealWithIv(payload, 4, seq, iv), ref, `${alg} ${size} octets`);
        const r = inb.open(ref);
        assert.ok(r.ok && r.payload.equals(payload), `${alg} ${size}: ${!r.ok && r.reason}`);
        out.seal(payload, 4); // moves the sequence on
      }
    }
  });
}
