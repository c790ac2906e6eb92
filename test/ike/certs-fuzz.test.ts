// Fuzzing the certificate path: what a peer can put in CERT payloads (mutated, truncated or random DER, CRLs)
// only ever gives a typed IkeError (CERTIFICATE) or a parsed certificate that the chain check then refuses;
// never another exception, never a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { parseCertificate, parseCrl, pemBlocks, verifyChain } from '../../ts/ike/certificates.js';
import { IkeError } from '../../ts/ike/errors.js';
import { makePki } from './pki.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-certs-fuzz-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const pki = makePki(dir, 'ec256');
const ee = pki.issue('fuzz.example', { san: ['DNS:fuzz.example'] });
const der = pemBlocks(readFileSync(ee.chainFile, 'utf8'), 'CERTIFICATE');
const anchors = pemBlocks(readFileSync(pki.rootFile, 'utf8'), 'CERTIFICATE').map((d) => parseCertificate(d, 'root'));
const crlDer = pemBlocks(readFileSync(pki.crl([ee]), 'utf8'), 'X509 CRL')[0]!;

function onlyIkeErrors(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof IkeError, `not an IkeError: ${(e as Error)?.stack}`);
    assert.ok(e.kind === 'CERTIFICATE', e.kind);
  }
}

const mutated = (base: Buffer) =>
  fc.tuple(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat()).map(([flips, cut]) => {
    const b = Buffer.from(base);
    for (const [i, v] of flips) b[i % b.length] = v;
    return b.subarray(0, cut % 7 === 0 ? cut % b.length : b.length);
  });

test('mutated certificates: parse or a CERTIFICATE error; a parsed one never passes the chain check unless intact', () => {
  fc.assert(
    fc.property(mutated(der[0]!), (bytes) => {
      onlyIkeErrors(() => {
        const c = parseCertificate(bytes, 'fuzz');
        const path = verifyChain(c, [parseCertificate(der[1]!, 'im')], { anchors, crls: [] }, Date.now());
        // only an unchanged certificate (or one whose change the signature does not cover) may pass
        assert.ok(path.length === 3);
      });
    }),
    { numRuns: 1500 },
  );
});

test('random bytes and mutated CRLs never throw anything but a CERTIFICATE error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
      onlyIkeErrors(() => parseCertificate(Buffer.from(bytes), 'random'));
      onlyIkeErrors(() => parseCrl(Buffer.from(bytes), 'random'));
    }),
    { numRuns: 1500 },
  );
  fc.assert(
    fc.property(mutated(crlDer), (bytes) => {
      onlyIkeErrors(() => {
        const crl = parseCrl(bytes, 'fuzz crl');
        verifyChain(parseCertificate(der[0]!, 'ee'), [parseCertificate(der[1]!, 'im')], { anchors, crls: [crl] }, Date.now());
      });
    }),
    { numRuns: 1000 },
  );
});

test('a name value of the wrong type (a time where a string belongs) in a CRL or a certificate is a CERTIFICATE error', () => {
  // found by the fuzzer above (CI, seed -1385460964): the schema parser takes it, its encoder refuses it again
  const cnValueTag = (d: Buffer) => d.indexOf(Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03])) + 5;
  for (const [what, base, parse] of [
    ['CRL', crlDer, (b: Buffer) => parseCrl(b, 'bad crl')],
    ['certificate', der[0]!, (b: Buffer) => parseCertificate(b, 'bad cert')],
  ] as const) {
    const b = Buffer.from(base);
    assert.ok(cnValueTag(b) > 5, `${what}: a CN in its first name`);
    b[cnValueTag(b)] = 0x17; // UTCTime
    assert.throws(() => parse(b), (e: unknown) => e instanceof IkeError && e.kind === 'CERTIFICATE', what);
  }
});
