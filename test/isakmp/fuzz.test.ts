import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './fuzz-engine.js';

// 200k cases (mutated captures and generated messages + random inputs); ~10-30 s on a loaded 2-core machine.
// The long run: node dist/test/isakmp/fuzz.js --iterations 10000000 [--seed N]
test('fuzz: 200k mutated and random inputs, parser never throws, always returns a value, round trips hold', () => {
  const iterations = Number(process.env['ISAKMP_FUZZ_ITERATIONS'] ?? 200_000);
  const stats = runFuzz(iterations, 0xc0dec, 50_000);
  assert.equal(stats.thrown, 0, stats.firstProblem);
  assert.equal(stats.internal, 0, stats.firstProblem);
  assert.equal(stats.roundTripFailures, 0, stats.firstProblem);
  assert.ok(stats.iterations >= Math.min(iterations, 50_000), `ran only ${stats.iterations} cases before the time limit`);
  // The mutations must reach the deep parser, not only bounce off the header checks.
  assert.ok(stats.ok > stats.iterations / 50, `too few inputs parsed ok (${stats.ok})`);
  for (const kind of ['PAYLOAD_MALFORMED', 'BAD_PROPOSAL_SYNTAX', 'UNEQUAL_PAYLOAD_LENGTHS', 'INVALID_PAYLOAD_TYPE']) {
    assert.ok((stats.errors[kind] ?? 0) > 0, `no ${kind} seen: ${JSON.stringify(stats.errors)}`);
  }
});
