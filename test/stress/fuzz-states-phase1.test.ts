// Phase 1 state fuzz: Main Mode and Aggressive Mode, both roles. The exchange is driven one genuine
// message at a time; before each genuine message reaches its machine, ITERATIONS mutated copies of it (and of
// the earlier messages, and garbage) are delivered to that machine. Checked on every delivery:
//   - handle() / Phase1.respond() never throw or reject, and return a well-typed Phase1Output;
//   - a forged message that is ignored leaves the machine in its step and sends nothing new (at most the
//     cached answer to a retransmitted request);
//   - after the mutations, the genuine messages still complete the exchange with the same keys on both sides.
// A mutation that the machine does not ignore (it refuses it: FAILED, or accepts it: a clear message 1-4
// whose unchecked fields changed, e.g. a vendor ID or NAT-D byte, or a different KE value of the right
// length, which no one can check before message 5) ends that instance: it is counted and the exchange is
// rebuilt to the same step with fresh keys.
//
// Checked at the end: a forged message 5/6 (MM) or 2/3 (AM) with the right cookies and a bad HASH /
// undecryptable body is ignored, not fatal; and a forgery that is accepted (e.g. the genuine message with a
// cipher block appended, which IKEv1's HASH does not cover) leaves both sides agreeing on keys and IV chain.
//
// Long run:  FUZZ_ITERATIONS=5000 FUZZ_SEED=123 node --test dist/test/stress/fuzz-states-phase1.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IkeError, CookieGenerator, Phase1, parseIkeProposal, type IsakmpSa, type Phase1Output, type Phase1Policy } from '../../ts/ike/index.js';
import { A, B, policy } from '../ike/pair.js';
import { crypto, idA, idB } from '../ike/remote-access-pair.js';
import { ITERATIONS, installGuard, mutate, rngFor, tag } from './fuzz-helpers.js';

const guard = installGuard();

type Mode = 'main' | 'aggressive';
type Who = 'i' | 'r';

function policies(mode: Mode): { i: Phase1Policy; r: Phase1Policy[] } {
  const p = parseIkeProposal('aes128-sha1-ecp256', { allowWeak: true });
  assert.ok(p.ok);
  return {
    i: policy({ mode, proposals: p.value, localId: idA, remoteId: idB }),
    r: [policy({ mode, proposals: p.value, localId: idB, remoteId: idA, allowAggressivePsk: true })],
  };
}

function checkOutput(out: Phase1Output, where: string): void {
  assert.ok(Array.isArray(out.send) && out.send.every((b) => Buffer.isBuffer(b)), `${where}: send is not Buffer[]`);
  assert.ok(out.timer === null || Number.isFinite(out.timer), `${where}: timer ${String(out.timer)}`);
  if (out.failed !== undefined) assert.ok(out.failed instanceof IkeError, `${where}: failed is not an IkeError`);
}

/** Both machines of one exchange, and the genuine message in flight. */
class Run {
  now = 1_000_000;
  r: Phase1 | null = null;
  sa: { i?: IsakmpSa; r?: IsakmpSa } = {};
  history: Buffer[] = [];
  sent: { i: Buffer[]; r: Buffer[] } = { i: [], r: [] };
  readonly envR = { crypto, cookies: new CookieGenerator(crypto), local: B, remote: A };
  private constructor(
    readonly mode: Mode,
    readonly i: Phase1,
    public pending: { to: Who; bytes: Buffer } | null,
  ) {}

  static async start(mode: Mode, delivered = 0): Promise<Run> {
    const pol = policies(mode);
    const s = await Phase1.initiate({ crypto, cookies: new CookieGenerator(crypto), local: A, remote: B }, pol.i, 1_000_000);
    const run = new Run(mode, s.phase1, { to: 'r', bytes: s.out.send[0]! });
    run.sent.i.push(s.out.send[0]!);
    for (let k = 0; k < delivered; k++) await run.deliverGenuine();
    return run;
  }

  async deliverGenuine(): Promise<void> {
    const g = this.pending;
    assert.ok(g, 'no genuine message left');
    this.history.push(g.bytes);
    let out: Phase1Output;
    if (g.to === 'r' && this.r === null) {
      const res = await Phase1.respond(this.envR, policies(this.mode).r, g.bytes, this.now);
      assert.ok(res.phase1, `genuine message 1 refused: ${res.out.failed?.message}`);
      this.r = res.phase1;
      out = res.out;
    } else {
      out = await (g.to === 'r' ? this.r! : this.i).handle(g.bytes, this.now);
    }
    assert.equal(out.failed, undefined, `genuine message refused: ${out.failed?.message}`);
    if (out.established) this.sa[g.to] = out.established;
    this.sent[g.to].push(...out.send);
    this.pending = out.send.length > 0 ? { to: g.to === 'i' ? 'r' : 'i', bytes: out.send[0]! } : null;
  }

  async finish(): Promise<{ i: IsakmpSa; r: IsakmpSa }> {
    while (this.pending !== null) await this.deliverGenuine();
    assert.ok(this.sa.i && this.sa.r, 'exchange did not complete');
    return { i: this.sa.i, r: this.sa.r };
  }
}

function assertSameKeys(sa: { i: IsakmpSa; r: IsakmpSa }, where: string): void {
  assert.deepEqual(sa.i.skeyidD, sa.r.skeyidD, `${where}: SKEYID_d differs`);
  assert.deepEqual(sa.i.skeyidA, sa.r.skeyidA, `${where}: SKEYID_a differs`);
  assert.deepEqual(sa.i.encryptionKey, sa.r.encryptionKey, `${where}: Ka differs`);
  assert.deepEqual(sa.i.lastIv, sa.r.lastIv, `${where}: phase 1 IV chain differs`);
}

interface Counts {
  ignored: number;
  refused: number;
  repeatedRefused?: number;
  accepted: number;
  rebuilds: number;
  /** Accepted forgeries after which the two sides no longer agree (the exchange fails or keys / IVs differ). */
  desync: number;
  example?: string;
}

/**
 * Fuzzes the machine that the genuine message number `delivered` goes to (0 = message 1 to a responder that
 * does not exist yet: Phase1.respond), then completes the exchange with the genuine messages.
 */
async function fuzzStep(mode: Mode, delivered: number, name: string): Promise<Counts> {
  const rng = rngFor(name);
  const counts: Counts = { ignored: 0, refused: 0, accepted: 0, rebuilds: 0, desync: 0, repeatedRefused: 0 };
  // Phase1 ignores an unverifiable message once and fails when the same bytes come again (that is how it
  // tells the peer retransmitting a message with a wrong key from a forgery): a forgery the mutator happens
  // to produce twice may legitimately end the exchange, so such refusals are counted apart.
  const delivered_ = new Set<string>();
  let run = await Run.start(mode, delivered);
  assert.ok(run.pending, `${name}: nothing to fuzz at step ${delivered}`);
  for (let n = 0; n < ITERATIONS; n++) {
    const g: { to: Who; bytes: Buffer } = run.pending!;
    const m = mutate(rng, g.bytes, run.history);
    const where = `${tag(name)} mutation #${n} ${m.toString('hex')}`;
    if (g.to === 'r' && run.r === null) {
      // Message 1: a responder is created per datagram; nothing is kept unless we return a machine.
      let res: Awaited<ReturnType<typeof Phase1.respond>>;
      try {
        res = await Phase1.respond(run.envR, policies(mode).r, m, run.now);
      } catch (e) {
        assert.fail(`${where}: Phase1.respond threw ${(e as Error).stack}`);
      }
      checkOutput(res.out, where);
      if (res.phase1 === null) counts.refused++;
      else counts.accepted++;
      continue;
    }
    const machine: Phase1 = g.to === 'r' ? run.r! : run.i;
    const stepBefore: string = machine.step;
    const hex = m.toString('hex');
    const repeated = delivered_.has(hex);
    delivered_.add(hex);
    let out: Phase1Output;
    try {
      out = await machine.handle(m, run.now);
    } catch (e) {
      assert.fail(`${where}: handle() in ${stepBefore} threw ${(e as Error).stack}`);
    }
    checkOutput(out, where);
    if (out.failed === undefined && out.established === undefined && machine.step === stepBefore) {
      // Ignored: nothing new may go out (a retransmitted request gets the cached answer).
      for (const s of out.send) assert.ok(run.sent[g.to].some((x) => x.equals(s)), `${where}: ignored message produced a new datagram`);
      counts.ignored++;
      continue;
    }
    if (out.failed !== undefined && repeated) counts.repeatedRefused!++;
    else if (out.failed !== undefined) {
      counts.refused++;
      if (process.env.FUZZ_DEBUG) console.log(`# refused ${out.failed.kind}: ${out.failed.message.slice(0, 120)}`);
    }
    else {
      counts.accepted++;
      // Let the instance run on with the machine's answer: do both sides still end with the same keys?
      if (out.established) run.sa[g.to] = out.established;
      run.sent[g.to].push(...out.send);
      run.pending = out.send.length > 0 ? { to: g.to === 'i' ? 'r' : 'i', bytes: out.send[0]! } : null;
      let agree = false;
      try {
        const sa = await run.finish();
        agree = sa.i.skeyidD.equals(sa.r.skeyidD) && sa.i.lastIv.equals(sa.r.lastIv);
      } catch {
        agree = false;
      }
      if (!agree) {
        counts.desync++;
        counts.example ??= `genuine ${g.bytes.toString('hex')} forged ${m.toString('hex')}`;
      }
      if (process.env.FUZZ_DEBUG) console.log(`# accepted in ${stepBefore} (agree=${agree}): genuine ${g.bytes.toString('hex')}\n#   mutated ${m.toString('hex')}`);
    }
    // This instance is spent: rebuild the exchange to the same step.
    counts.rebuilds++;
    run = await Run.start(mode, delivered);
  }
  assertSameKeys(await run.finish(), name);
  return counts;
}

const STEPS: Record<Mode, string[]> = {
  main: ['R: message 1 (no machine yet)', 'I_MM_SA: message 2', 'R_MM_SA: message 3', 'I_MM_KE: message 4', 'R_MM_KE: message 5 (encrypted)', 'I_MM_AUTH: message 6 (encrypted)'],
  aggressive: ['R: message 1 (no machine yet)', 'I_AM_SA: message 2 (HASH_R)', 'R_AM_SA: message 3 (encrypted HASH_I)'],
};
/** Steps whose message is authenticated (encrypted and/or carries the peer's HASH): a forgery cannot be valid. */
const AUTHENTICATED: Record<Mode, number[]> = { main: [4, 5], aggressive: [1, 2] };

const refusedAt = new Map<string, number>();
const desyncAt = new Map<string, { n: number; example: string | undefined }>();
const started = Date.now();

for (const mode of ['main', 'aggressive'] as const) {
  STEPS[mode].forEach((label, k) => {
    const name = `phase 1 ${mode} ${label}`;
    test(`fuzz ${name}: ${ITERATIONS} mutations, no throw, genuine exchange still completes`, async () => {
      const c = await fuzzStep(mode, k, name);
      if (AUTHENTICATED[mode].includes(k)) {
        refusedAt.set(name, c.refused);
        desyncAt.set(name, { n: c.desync, example: c.example });
      }
      console.log(`# ${name}: ${JSON.stringify(c)}`);
      guard.check();
    });
  });

  test(`fuzz phase 1 ${mode} DONE: forged input to both established machines is ignored`, async () => {
    const name = `phase 1 ${mode} DONE`;
    const rng = rngFor(name);
    const run = await Run.start(mode);
    const sa = await run.finish();
    const iv = { i: Buffer.from(sa.i.lastIv), r: Buffer.from(sa.r.lastIv) };
    for (let n = 0; n < ITERATIONS; n++) {
      const who: Who = rng.int(2) === 0 ? 'i' : 'r';
      const m = mutate(rng, run.history[rng.int(run.history.length)]!, run.history);
      const where = `${tag(name)} mutation #${n} to ${who} ${m.toString('hex')}`;
      const machine = who === 'i' ? run.i : run.r!;
      let out: Phase1Output;
      try {
        out = await machine.handle(m, run.now);
      } catch (e) {
        assert.fail(`${where}: threw ${(e as Error).stack}`);
      }
      checkOutput(out, where);
      assert.equal(machine.step, 'DONE', where);
      assert.equal(out.failed, undefined, where);
      assert.equal(out.established, undefined, where);
      for (const s of out.send) assert.ok(run.sent[who].some((x) => x.equals(s)), `${where}: new datagram after DONE`);
    }
    assert.deepEqual(sa.i.lastIv, iv.i);
    assert.deepEqual(sa.r.lastIv, iv.r);
    assertSameKeys(sa, name);
    guard.check();
  });
}

// node:test runs the tests above in order, so the counts are in by now.
test(
  'fuzz phase 1: a forged authenticated message (bad HASH / bad ciphertext, right cookies) is ignored, not fatal',
  {},
  () => {
    console.log(`# refused authenticated forgeries: ${JSON.stringify(Object.fromEntries(refusedAt))}; phase 1 fuzz took ${Date.now() - started} ms`);
    for (const [name, n] of refusedAt) assert.equal(n, 0, `${name}: ${n} forged messages aborted the exchange`);
  },
);

test(
  'fuzz phase 1: a forged authenticated message that is accepted leaves both sides agreeing (keys and IV chain)',
  {},
  () => {
    for (const [name, d] of desyncAt) assert.equal(d.n, 0, `${name}: ${d.n} accepted forgeries desynchronised the peers, e.g. ${d.example}`);
  },
);
