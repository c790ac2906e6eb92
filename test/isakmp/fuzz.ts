// Long fuzz run: node dist/test/isakmp/fuzz.js [--iterations N] [--seed S]
// Exits non-zero when the parser threw, hit its internal safety net, or a round trip failed.
import { runFuzz } from './fuzz-engine.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const iterations = arg('iterations', 10_000_000);
const seed = arg('seed', Date.now() & 0x7fffffff);
const chunk = 1_000_000;
let done = 0;
const t0 = Date.now();
let failed = false;
for (let part = 0; done < iterations; part++) {
  const n = Math.min(chunk, iterations - done);
  const s = runFuzz(n, seed + part);
  done += s.iterations;
  const rate = Math.round(done / ((Date.now() - t0) / 1000));
  console.log(`seed ${seed + part}: ${done}/${iterations} cases, ${rate}/s, ok ${s.ok}, thrown ${s.thrown}, internal ${s.internal}, round-trip failures ${s.roundTripFailures}, errors ${JSON.stringify(s.errors)}`);
  if (s.thrown || s.internal || s.roundTripFailures) {
    console.error(s.firstProblem);
    failed = true;
    break;
  }
}
process.exit(failed ? 1 : 0);
