// bytesEqual / startsWithBytes agree with Buffer#equals, compareBytes with Buffer.compare, on any input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesEqual, compareBytes, startsWithBytes } from '../../ts/isakmp/index.js';

test('bytesEqual and startsWithBytes agree with Buffer#equals', () => {
  const short = fc.uint8Array({ maxLength: 20 });
  fc.assert(
    fc.property(short, short, fc.boolean(), (a, b, same) => {
      const x = Buffer.from(a);
      const y = same ? Buffer.from(a) : Buffer.from(b);
      assert.equal(bytesEqual(x, y), x.equals(y));
      assert.equal(startsWithBytes(x, y), x.length >= y.length && x.subarray(0, y.length).equals(y));
    }),
    { numRuns: 500 },
  );
  assert.equal(bytesEqual(Buffer.alloc(0), Buffer.alloc(0)), true);
  assert.equal(bytesEqual(Buffer.from([1, 2]), Buffer.from([1, 3])), false);
  assert.equal(startsWithBytes(Buffer.from([1, 2, 3]), Buffer.from([1, 2])), true);
  assert.equal(startsWithBytes(Buffer.from([1]), Buffer.from([1, 2])), false);
});

test('compareBytes agrees with Buffer.compare', () => {
  const short = fc.uint8Array({ maxLength: 20 });
  fc.assert(
    fc.property(short, short, fc.nat(20), (a, b, shared) => {
      // a common prefix makes the interesting cases (equal up to a point, one a prefix of the other) frequent
      const x = Buffer.concat([Buffer.from(a.subarray(0, shared)), Buffer.from(a)]);
      const y = Buffer.concat([Buffer.from(a.subarray(0, shared)), Buffer.from(b)]);
      assert.equal(compareBytes(x, y), Buffer.compare(x, y));
      assert.equal(compareBytes(x, x), 0);
      assert.equal(compareBytes(x, x.subarray(0, Math.max(0, x.length - 1))), x.length > 0 ? 1 : 0);
    }),
    { numRuns: 500 },
  );
});
