// Benchmark and fault-injection hooks (raw EVP loop, malloc accounting, failure injection, offload cut/join)
// are built into the test binary only (ikev1_native_test, IKE_TEST_HOOKS in binding.gyp). The production
// binary the engine loads must not export them; apart from them the two export the same things.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon, nativeTestAddon, TEST_HOOK_NAMES } from '../../ts/native.js';

const skip = process.env.IKE_NO_NATIVE === '1' ? 'IKE_NO_NATIVE=1' : false;

test('the production addon exports none of the test hooks', { skip }, () => {
  const addon = nativeAddon();
  assert.ok(addon, 'build/Release/ikev1_native.node did not load');
  for (const name of TEST_HOOK_NAMES) assert.ok(!(name in addon), `the production addon exports ${name}`);
  assert.ok(!Object.keys(addon).some((k) => /test|bench|fail|malloc/i.test(k)), Object.keys(addon).join(' '));
});

test('the test build exports every hook, and otherwise what the production addon exports', { skip }, () => {
  const prod = nativeAddon()!;
  const t = nativeTestAddon();
  assert.ok(t, 'build/Release/ikev1_native_test.node did not load');
  assert.notEqual(t, prod);
  for (const name of TEST_HOOK_NAMES) assert.ok(name in t, `the test build lacks ${name}`);
  const hooks = new Set<string>(TEST_HOOK_NAMES);
  assert.deepEqual(Object.keys(t).filter((k) => !hooks.has(k)).sort(), Object.keys(prod).sort());
  assert.equal(typeof t.espMallocInUse(), 'number');
});
