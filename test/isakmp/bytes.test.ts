// bytesEqual / startsWithBytes agree with Buffer#equals on any input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bytesEqual, startsWithBytes } from '../../ts/isakmp/index.js';

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
