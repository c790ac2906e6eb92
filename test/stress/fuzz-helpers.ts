// Shared pieces of the state-machine fuzz tests (fuzz-states*.test.ts): the seeded PRNG, the iteration
// budget, a mutator biased towards messages that keep their cookies (so they reach decryption and the
// HASH check instead of being dropped at the header), and a guard that turns any unhandled rejection or
// uncaught exception into a test failure.
//
// Environment:
//   FUZZ_SEED=<n>        reproduce a run (every failure message prints the seed in use)
//   FUZZ_ITERATIONS=<n>  mutations per state (default below, sized for CI); raise for a long run
//   FUZZ_DEBUG=1         phase 1: print every accepted mutation next to the genuine message
// Long run of all three files:  npx tsc -p tsconfig.json && FUZZ_ITERATIONS=5000 FUZZ_SEED=123 node scripts/run-tests.mjs fuzz-states
import { parseMessage } from '../../ts/isakmp/index.js';
import { Rng } from '../isakmp/fuzz-engine.js';

export { Rng };

export const SEED = Number(process.env.FUZZ_SEED ?? '') || 0x1ce5eed;
/** Mutations delivered per (machine, state); the default keeps the whole file well under 30 s in CI. */
export const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? '') || 150;

/** One RNG per test, derived from the seed and the test's name, so tests stay independent. */
export function rngFor(name: string): Rng {
  let h = SEED >>> 0;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return new Rng(h || 1);
}

export function tag(name: string): string {
  return `[${name}; FUZZ_SEED=${SEED} FUZZ_ITERATIONS=${ITERATIONS}]`;
}

/** Records unhandled rejections / uncaught exceptions raised while fuzzing; call check() at the end of each test. */
export function installGuard(): { problems: string[]; check(): void } {
  const problems: string[] = [];
  process.on('unhandledRejection', (e) => problems.push(`unhandledRejection: ${(e as Error)?.stack ?? String(e)}`));
  process.on('uncaughtException', (e) => problems.push(`uncaughtException: ${e.stack ?? String(e)}`));
  return {
    problems,
    check() {
      if (problems.length > 0) throw new Error(`${tag('guard')} ${problems.join('\n')}`);
    },
  };
}

function fixLength(b: Buffer): void {
  if (b.length >= 28) b.writeUInt32BE(b.length, 24);
}

/**
 * A mutated copy of `genuine`. Most mutations keep the 16 cookie bytes (so the message is routed to the
 * machine under test) and edit the body or the other header fields; some splice in `others` (earlier
 * messages of the same exchange) or produce garbage.
 */
export function mutate(rng: Rng, genuine: Buffer, others: readonly Buffer[] = []): Buffer {
  let b: Buffer = Buffer.from(genuine);
  const body = () => (b.length > 28 ? 28 + rng.int(b.length - 28) : rng.int(Math.max(1, b.length)));
  const rounds = 1 + (rng.int(3) === 0 ? 1 : 0);
  for (let r = 0; r < rounds; r++) {
    switch (rng.int(13)) {
      case 0: { // bit flips in the body (ciphertext, or clear payloads)
        const n = 1 + rng.int(4);
        for (let i = 0; i < n && b.length > 0; i++) b[body()]! ^= 1 << rng.int(8);
        break;
      }
      case 1: // bit flip anywhere (cookies included)
        if (b.length > 0) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      case 2: // header field: next payload, version, exchange type, flags
        if (b.length >= 28) b[16 + rng.int(4)] = rng.int(3) === 0 ? rng.int(256) : b[16 + rng.int(4)]! ^ (1 << rng.int(8));
        break;
      case 3: // message ID
        if (b.length >= 28) b.writeUInt32BE(rng.int(4) === 0 ? 0 : rng.next(), 20);
        break;
      case 4: // header length
        if (b.length >= 28) b.writeUInt32BE([0, 28, b.length - 1, b.length + 1, b.length + 16, 0xffffffff, rng.next()][rng.int(7)]! >>> 0, 24);
        break;
      case 5: // truncation (often at a block boundary), header length fixed half the time
        b = b.subarray(0, rng.int(2) === 0 ? 28 + 16 * rng.int(Math.max(1, (b.length - 28) >> 4)) : rng.int(b.length + 1));
        if (rng.int(2) === 0) fixLength(b);
        break;
      case 6: // append one random cipher block
        b = Buffer.concat([b, rng.bytes(16)]);
        fixLength(b);
        break;
      case 7: { // replace one 16-byte block of the body with random bytes
        if (b.length >= 44) {
          const at = 28 + 16 * rng.int((b.length - 28) >> 4);
          rng.bytes(16).copy(b, at);
        }
        break;
      }
      case 8: { // swap two blocks of the body
        const n = (b.length - 28) >> 4;
        if (n >= 2) {
          const x = 28 + 16 * rng.int(n);
          const y = 28 + 16 * rng.int(n);
          const t = Buffer.from(b.subarray(x, x + 16));
          b.copy(b, x, y, y + 16);
          t.copy(b, y);
        }
        break;
      }
      case 9: { // our header on another message's body (or a random body)
        const o = others.length > 0 && rng.int(3) !== 0 ? others[rng.int(others.length)]! : rng.bytes(16 * (1 + rng.int(8)));
        b = Buffer.concat([b.subarray(0, 28), o.length > 28 && o !== b ? o.subarray(28) : o]);
        fixLength(b);
        break;
      }
      case 10: // an earlier message as is (a replay) or with a bit flipped
        if (others.length > 0) {
          b = Buffer.from(others[rng.int(others.length)]!);
          if (rng.int(2) === 0 && b.length > 28) b[body()]! ^= 1 << rng.int(8);
        }
        break;
      case 11: // random garbage, sometimes behind our cookies
        b = rng.int(2) === 0 ? rng.bytes(rng.int(120)) : Buffer.concat([b.subarray(0, 16), rng.bytes(rng.int(120))]);
        break;
      default: { // insert or delete a range of the body
        const at = body();
        if (rng.int(2) === 0) b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(20)), b.subarray(at)]);
        else b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(20)))]);
        if (rng.int(2) === 0) fixLength(b);
      }
    }
  }
  // A mutation that happens to reproduce the genuine bytes is not a mutation.
  if (b.equals(genuine)) b = Buffer.concat([b, Buffer.from([rng.int(256)])]);
  return b;
}

/**
 * The same message as `genuine` but for header fields no one can authenticate in IKEv1 (flags other than
 * E, version, bytes past the header length): delivering it before the genuine one is delivering the genuine one.
 */
export function equivalent(m: Buffer, genuine: Buffer | null, orExtended = false): boolean {
  if (genuine === null) return false;
  const a = parseMessage(m);
  const b = parseMessage(genuine);
  if (!a.ok || !b.ok || !('encrypted' in a.value) || !('encrypted' in b.value)) return false;
  const [x, y] = [a.value.header, b.value.header];
  return x.initiatorCookie.equals(y.initiatorCookie) && x.responderCookie.equals(y.responderCookie) && x.messageId === y.messageId &&
    x.exchangeType === y.exchangeType && x.nextPayload === y.nextPayload &&
    (a.value.encrypted.equals(b.value.encrypted) ||
      (orExtended && a.value.encrypted.length > b.value.encrypted.length && a.value.encrypted.subarray(0, b.value.encrypted.length).equals(b.value.encrypted)));
}
