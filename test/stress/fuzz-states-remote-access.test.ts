// Remote access fuzz (XAUTH + Mode-Config pull over the Transaction exchange): the session is driven one
// genuine message at a time (REQUEST, REPLY, SET, ACK, CFG_REQUEST, CFG_REPLY); before each genuine
// message reaches its endpoint, ITERATIONS forgeries go to BOTH endpoints: mutations of the genuine messages,
// and well-formed Transaction messages (right cookies, right encryption and IV) whose HASH(1) was made with
// a wrong SKEYID_a, carrying exactly what an attacker wants: XAUTH_STATUS=OK to the client, a user name and
// password REPLY / a CFG_REQUEST for an address to the server. Checked: no throw, no event, nothing new
// sent, `authenticated` never flips, the pool never allocates, the ISAKMP SA's lastIv is untouched; then
// the genuine session completes (both authenticated, the client gets the first pool address).
//
// Long run:  FUZZ_ITERATIONS=5000 FUZZ_SEED=123 node --test dist/test/stress/fuzz-states-remote-access.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModeCfgAttr, ModeCfgType, XauthStatus } from '../../ts/isakmp/index.js';
import {
  AddressPool,
  RemoteAccessClient,
  RemoteAccessServer,
  attributePayload,
  phase2Iv,
  transactionMessage,
  type IsakmpSa,
  type RemoteAccessOutput,
  plainIsakmpSa,
} from '../../ts/ike/index.js';
import { crypto, xauthPhase1 } from '../ike/remote-access-pair.js';
import { equivalent, ITERATIONS, installGuard, mutate, rngFor, tag, type Rng } from './fuzz-helpers.js';

const guard = installGuard();
const RETRANSMIT = { tries: 2, timeoutMs: 1000, factor: 2 };

type Who = 'c' | 's';

function forged(rng: Rng, sa: IsakmpSa, to: Who): Buffer {
  const wrong = { ...plainIsakmpSa(sa), skeyidA: rng.bytes(sa.skeyidA.length) };
  const mid = rng.next() >>> 0 || 1;
  const id = rng.int(0x10000);
  const attrs =
    to === 'c'
      ? rng.int(2) === 0
        ? attributePayload(ModeCfgType.CFG_SET, id, [{ type: ModeCfgAttr.XAUTH_STATUS, value: XauthStatus.OK }])
        : attributePayload(ModeCfgType.CFG_REPLY, id, [{ type: ModeCfgAttr.INTERNAL_IP4_ADDRESS, value: Buffer.from([10, 8, 0, 99]) }])
      : rng.int(2) === 0
        ? attributePayload(ModeCfgType.CFG_REPLY, id, [
            { type: ModeCfgAttr.XAUTH_USER_NAME, value: Buffer.from('alice') },
            { type: ModeCfgAttr.XAUTH_USER_PASSWORD, value: Buffer.from('s3cret') },
          ])
        : attributePayload(ModeCfgType.CFG_REQUEST, id, [{ type: ModeCfgAttr.INTERNAL_IP4_ADDRESS, value: Buffer.alloc(0) }]);
  return transactionMessage(crypto, wrong, mid, phase2Iv(crypto, wrong, mid), attrs).message;
}

test('fuzz remote access: forged Transaction messages at every XAUTH / Mode-Config step change nothing', async () => {
  const name = 'remote access';
  const rng = rngFor(name);
  const started = Date.now();
  const { i, r } = await xauthPhase1();
  const ivs = { i: Buffer.from(i.lastIv), r: Buffer.from(r.lastIv) };
  const pool = new AddressPool('10.8.0.0/24');
  const verified: string[] = [];
  const s = new RemoteAccessServer(crypto, r, {
    peer: '10.99.0.1',
    retransmit: RETRANSMIT,
    xauth: { verify: async (u, p) => (verified.push(u), u === 'alice' && p === 's3cret') },
    modeConfig: { pool, netmask: '255.255.255.0', dns: ['10.1.0.53'] },
  });
  const c = new RemoteAccessClient(crypto, i, { retransmit: RETRANSMIT, xauth: { user: 'alice', password: 's3cret' }, modeConfig: 'pull' });
  const ep = { c, s };
  const sent: Record<Who, Buffer[]> = { c: [], s: [] };
  const events: Record<Who, string[]> = { c: [], s: [] };
  const queue: { to: Who; bytes: Buffer }[] = [];
  let now = 1_000_000;
  let delivered = 0;
  let skipped = 0;
  const take = (who: Who, out: RemoteAccessOutput) => {
    sent[who].push(...out.send);
    events[who].push(...out.events.map((e) => e.type));
    for (const m of out.send) queue.push({ to: who === 'c' ? 's' : 'c', bytes: m });
  };
  take('c', c.start(now));
  take('s', s.start(now));

  const fuzz = async (genuine: Buffer | null, label: string) => {
    for (let n = 0; n < ITERATIONS; n++) {
      now += 10; // well inside the retransmission timers
      const to: Who = rng.int(2) === 0 ? 'c' : 's';
      const pick = rng.int(10);
      const corpus = [...sent.c, ...sent.s];
      const m = pick < 3 ? forged(rng, to === 'c' ? i : r, to) : mutate(rng, genuine !== null && pick < 7 ? genuine : corpus[rng.int(corpus.length)]!, corpus);
      if ([genuine, ...queue.map((q) => q.bytes)].some((x) => equivalent(m, x)) || corpus.some((x) => x.equals(m))) {
        // A genuine message not yet delivered (header fields aside), or an exact replay: not a forgery of
        // content. The genuine message with cipher blocks appended IS delivered: its padding check refuses it.
        skipped++;
        continue;
      }
      const where = `${tag(name)} ${label} -> ${to} #${n} ${m.toString('hex')}`;
      const authBefore = { c: c.authenticated, s: s.authenticated };
      const inUse = pool.inUse;
      let out: RemoteAccessOutput;
      try {
        out = await ep[to].handle(m, now);
      } catch (e) {
        assert.fail(`${where}: handle() threw ${(e as Error).stack}`);
      }
      delivered++;
      assert.ok(Array.isArray(out.send) && Array.isArray(out.events) && Array.isArray(out.dropped), where);
      assert.deepEqual(out.events, [], `${where}: events from a forged message`);
      for (const b of out.send) assert.ok(sent[to].some((x) => x.equals(b)), `${where}: new datagram from a forged message`);
      assert.deepEqual({ c: c.authenticated, s: s.authenticated }, authBefore, `${where}: authenticated flipped`);
      assert.equal(pool.inUse, inUse, `${where}: pool allocation changed`);
      assert.deepEqual(i.lastIv, ivs.i, where);
      assert.deepEqual(r.lastIv, ivs.r, where);
    }
  };

  await fuzz(null, 'before any message');
  let steps = 0;
  while (queue.length > 0) {
    const g = queue.shift()!;
    await fuzz(g.bytes, `before genuine message ${steps + 1}`);
    const out = await ep[g.to].handle(g.bytes, now);
    assert.deepEqual(out.dropped, [], `${tag(name)}: genuine message ${steps + 1} dropped`);
    take(g.to, out);
    steps++;
  }
  await fuzz(null, 'after the session');

  assert.equal(c.authenticated, true, tag(name));
  assert.equal(s.authenticated, true, tag(name));
  assert.deepEqual(verified, ['alice'], `${tag(name)}: the password checker ran on forged input`);
  assert.equal(s.assigned, '10.8.0.1');
  assert.equal(pool.inUse, 1);
  assert.equal(c.config?.address, '10.8.0.1');
  assert.deepEqual(events.s, ['xauthOk', 'modeCfg']);
  assert.deepEqual(events.c, ['xauthOk', 'modeCfg']);
  assert.ok(steps >= 6, `${steps} genuine messages`);
  console.log(`# remote access: ${delivered} forged datagrams over ${steps + 2} steps (${skipped} genuine/replays not delivered) in ${Date.now() - started} ms`);
  guard.check();
});

test(
  'remote access: an XAUTH REQUEST with an extra cipher block appended does not derail the session',
  {},
  async () => {
    const { i, r } = await xauthPhase1();
    const pool = new AddressPool('10.8.0.0/24');
    const s = new RemoteAccessServer(crypto, r, { peer: '10.99.0.1', retransmit: RETRANSMIT, xauth: { verify: async () => true }, modeConfig: { pool } });
    const c = new RemoteAccessClient(crypto, i, { retransmit: RETRANSMIT, xauth: { user: 'alice', password: 's3cret' }, modeConfig: 'pull' });
    c.start(0);
    const request = s.start(0).send[0]!;
    const extended = Buffer.concat([request, Buffer.alloc(16, 0x33)]);
    extended.writeUInt32BE(extended.length, 24);
    const o = await c.handle(extended, 0);
    for (const reply of o.send) {
      const g = await s.handle(reply, 0);
      assert.deepEqual(g.dropped, [], 'the REPLY to a forged REQUEST is undecryptable at the server');
    }
  },
);
