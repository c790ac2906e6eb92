// espKeyLengths / KEYMAT split, parameter checks and the opt-in for insecure transforms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEspSa, espKeyLengths, splitEspKeymat, ESP_ALGORITHMS } from '../../ts/esp/index.js';
import { IMPLS, skipFor } from './helpers.js';

test('espKeyLengths: RFC 4106 / 7634 / 3602 / 2404 / 4868 geometry', () => {
  assert.deepEqual(
    (({ encKeyLength, integKeyLength, saltLength, icvLength, blockSize, ivLength, keymatLength }) =>
      ({ encKeyLength, integKeyLength, saltLength, icvLength, blockSize, ivLength, keymatLength }))(espKeyLengths('aes128gcm16')),
    { encKeyLength: 16, integKeyLength: 0, saltLength: 4, icvLength: 16, blockSize: 4, ivLength: 8, keymatLength: 20 },
  );
  assert.equal(espKeyLengths('aes256gcm16').keymatLength, 36);
  assert.equal(espKeyLengths('chacha20poly1305').keymatLength, 36);
  const s1 = espKeyLengths('aes128-sha1');
  assert.deepEqual([s1.encKeyLength, s1.integKeyLength, s1.icvLength, s1.ivLength, s1.blockSize], [16, 20, 12, 16, 16]);
  assert.deepEqual([256, 384, 512].map((b) => espKeyLengths(`aes256-sha${b}` as 'aes256-sha256').icvLength), [16, 24, 32]);
  assert.deepEqual([256, 384, 512].map((b) => espKeyLengths(`aes256-sha${b}` as 'aes256-sha256').integKeyLength), [32, 48, 64]);
  assert.equal(espKeyLengths('null-sha1').ivLength, 0);
  const d = espKeyLengths('3des-sha1'); // RFC 2451: 192-bit key, 64-bit block and IV
  assert.deepEqual([d.encKeyLength, d.integKeyLength, d.icvLength, d.ivLength, d.blockSize], [24, 20, 12, 8, 8]);
  const m = espKeyLengths('aes128-md5'); // RFC 2403: HMAC-MD5-96, 128-bit key
  assert.deepEqual([m.integKeyLength, m.icvLength], [16, 12]);
  assert.throws(() => espKeyLengths('des-sha1' as never), RangeError);
  for (const a of ESP_ALGORITHMS) assert.ok(espKeyLengths(a).keymatLength >= 16);
});

test('splitEspKeymat: encryption key first, then salt (AEAD), then integrity key', () => {
  const km = Buffer.from(Array.from({ length: 36 }, (_, i) => i));
  const cbc = splitEspKeymat('aes128-sha1', km);
  assert.deepEqual(cbc.encryptionKey, km.subarray(0, 16));
  assert.deepEqual(cbc.integrityKey, km.subarray(16, 36));
  assert.equal(cbc.salt.length, 0);
  const gcm = splitEspKeymat('aes256gcm16', km);
  assert.deepEqual(gcm.encryptionKey, km.subarray(0, 32));
  assert.deepEqual(gcm.salt, km.subarray(32, 36));
  assert.throws(() => splitEspKeymat('aes128gcm16', km), RangeError);
});

for (const impl of IMPLS) {
  test(`[${impl}] parameter errors are TypeError / RangeError with a reason`, { skip: skipFor(impl) }, () => {
    const base = { spi: 0x1000, algorithm: 'aes128gcm16', direction: 'outbound', keymat: Buffer.alloc(20), implementation: impl } as const;
    assert.ok(createEspSa(base));
    assert.throws(() => createEspSa({ ...base, algorithm: 'des-md5' as never }), RangeError);
    assert.throws(() => createEspSa({ ...base, keymat: Buffer.alloc(19) }), /20 octets/);
    assert.throws(() => createEspSa({ ...base, spi: 5 }), /reserved/);
    assert.throws(() => createEspSa({ ...base, spi: 0 }), RangeError);
    assert.throws(() => createEspSa({ ...base, replayWindow: 4097 }), RangeError);
    assert.throws(() => createEspSa({ ...base, direction: 'both' as never }), TypeError);
    assert.throws(() => createEspSa({ ...base, initialSequence: 5n }), /allowInsecureForTests/);
    assert.throws(() => createEspSa({ ...base, algorithm: 'null-sha1', keymat: Buffer.alloc(20) }), /allowInsecureForTests/);
    assert.throws(() => createEspSa({ ...base, algorithm: 'aes128-none', keymat: Buffer.alloc(16) }), /allowInsecureForTests/);
    assert.ok(createEspSa({ ...base, algorithm: 'null-sha1', keymat: Buffer.alloc(20), allowInsecureForTests: true }));
    const sa = createEspSa(base);
    assert.throws(() => sa.sealWithIv(Buffer.alloc(1), 4, 1n, Buffer.alloc(8)), TypeError); // no test opt-in
    assert.throws(() => sa.seal(Buffer.alloc(1), 256), RangeError);
    assert.throws(() => sa.seal('abc' as never, 4), TypeError);
    assert.throws(() => sa.open(Buffer.alloc(40)), TypeError); // outbound SA cannot open
    assert.equal(sa.implementation, impl);
    assert.equal(sa.mode, 'tunnel');
    assert.equal(sa.overhead(1400), 8 + 8 + 2 + 2 + 16); // 1400 + 2 -> 1404 (4-byte alignment)
    assert.equal(sa.openedCapacity(10), 0);
  });
}
