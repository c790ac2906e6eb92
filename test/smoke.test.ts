import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAddon } from '../ts/native.js';

test('the native addon loads (CI must exercise the native path)', () => {
  assert.ok(nativeAddon(), 'build/Release/ikev1_native.node did not load');
});
