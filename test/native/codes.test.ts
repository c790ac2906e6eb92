// The numbers JavaScript and the addon exchange (hash and cipher codes, ESP statuses) have one definition on
// each side, native/codes.h and ts/native-codes.ts; the addon exports its side as `codes` and this file checks
// the two agree, for the production build and the test build alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EspStatus } from '../../ts/esp/index.js';
import { HASH_NAMES, IKE_CIPHER_NAMES } from '../../ts/crypto/index.js';
import { nativeAddon, nativeTestAddon } from '../../ts/native.js';
import { CIPHER_CODE, ESP_STATUS, HASH_CODE, NATIVE_CODES } from '../../ts/native-codes.js';

const skip = process.env.IKE_NO_NATIVE === '1' ? 'IKE_NO_NATIVE=1' : false;

test('the production addon reports the codes of ts/native-codes.ts', { skip }, () => {
  const addon = nativeAddon();
  assert.ok(addon, 'build/Release/ikev1_native.node did not load');
  assert.deepEqual(addon.codes, NATIVE_CODES);
});

test('the test build reports the same codes', { skip }, () => {
  const addon = nativeTestAddon();
  assert.ok(addon, 'build/Release/ikev1_native_test.node did not load');
  assert.deepEqual(addon.codes, NATIVE_CODES);
});

test('every hash and IKE cipher name has a code, each code once; EspStatus is ESP_STATUS', () => {
  assert.deepEqual(Object.keys(HASH_CODE).sort(), [...HASH_NAMES].sort());
  assert.deepEqual(Object.keys(CIPHER_CODE).sort(), [...IKE_CIPHER_NAMES].sort());
  for (const table of [HASH_CODE, CIPHER_CODE, ESP_STATUS]) {
    const values = Object.values(table);
    assert.equal(new Set(values).size, values.length);
  }
  assert.equal(EspStatus, ESP_STATUS);
});

test('the codes work: a hash code selects that hash, a cipher code that cipher', { skip }, async () => {
  const { createHash, createCipheriv } = await import('node:crypto');
  const addon = nativeAddon()!;
  const data = Buffer.from('abc');
  for (const name of HASH_NAMES) {
    const out = Buffer.alloc(addon.hashSize(HASH_CODE[name]));
    addon.hash(out, HASH_CODE[name], data);
    assert.deepEqual(out, createHash(name).update(data).digest(), name);
  }
  const key = Buffer.alloc(32, 7);
  const iv = Buffer.alloc(16, 9);
  const block = Buffer.alloc(32, 1);
  for (const name of ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc'] as const) {
    const k = key.subarray(0, Number(name.slice(4, 7)) / 8);
    const out = Buffer.alloc(block.length);
    addon.cbcEncrypt(out, CIPHER_CODE[name], k, iv, block);
    const c = createCipheriv(name, k, iv).setAutoPadding(false);
    assert.deepEqual(out, Buffer.concat([c.update(block), c.final()]), name);
  }
});
