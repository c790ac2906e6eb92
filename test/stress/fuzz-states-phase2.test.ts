// Fuzz of everything that runs on an established ISAKMP SA (IsakmpSaContext: Quick Mode, Informational, DPD).
// Forged inputs: mutations of genuine encrypted QM1/QM2/QM3 and Informational (DPD R-U-THERE, delete)
// messages, plus well-formed messages with the right cookies, encrypted under the right keys and IV, whose
// HASH(1) is computed with a wrong SKEYID_a (what an attacker who knows the cookies but not the keys can
// at best approximate). At every Quick Mode step both contexts get ITERATIONS forgeries, at a clock that
// moves forward so that a DPD refresh would show. Checked after each one: no throw / rejection, no event
// (childSa, childFailed, delete, notify, dpd*), nothing sent except a cached retransmission, DPD deadline and
// pending exchanges unchanged, the ISAKMP SA's lastIv unchanged. Then the genuine Quick Mode completes with
// mirrored keys.
//
// Long run:  FUZZ_ITERATIONS=5000 FUZZ_SEED=123 node --test dist/test/stress/fuzz-states-phase2.test.js
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IsakmpSaContext,
  deleteEspPayload,
  deleteIsakmpPayload,
  dpdPayload,
  informationalMessage,
  trafficSelector,
  type ChildSa,
  type IsakmpSa,
  type Phase2Output,
  plainIsakmpSa,
} from '../../ts/ike/index.js';
import { child, phase1Pair } from '../ike/quick-mode-pair.js';
import { crypto } from '../ike/remote-access-pair.js';
import { equivalent, ITERATIONS, installGuard, mutate, rngFor, tag, type Rng } from './fuzz-helpers.js';

const guard = installGuard();
const DPD = { delayMs: 30_000, timeoutMs: 150_000, action: 'clear' as const };
const netA = trafficSelector('10.99.1.0/24', 0, 0)!;
const netB = trafficSelector('10.99.2.0/24', 0, 0)!;

type Who = 'i' | 'r';

interface Side {
  ctx: IsakmpSaContext;
  sa: IsakmpSa;
  sent: Buffer[];
  children: ChildSa[];
}

function checkOutput(out: Phase2Output, where: string): void {
  assert.ok(Array.isArray(out.send) && out.send.every((b) => Buffer.isBuffer(b)), `${where}: send is not Buffer[]`);
  assert.ok(Array.isArray(out.events) && Array.isArray(out.dropped), `${where}: events / dropped`);
  assert.ok(out.timer === null || Number.isFinite(out.timer), `${where}: timer`);
}

/** `genuine` (undelivered) with only its exchange type changed: IKEv1's HASH(1) does not cover the header. */
function retyped(m: Buffer, genuine: Buffer | null): boolean {
  if (genuine === null || m.length < 28 || m[18] === genuine[18]) return false;
  const copy = Buffer.from(m);
  copy[18] = genuine[18]!;
  return equivalent(copy, genuine, true);
}

/** Well-formed messages with the right cookies and encryption but a HASH made with a wrong SKEYID_a. */
function badHashMessages(rng: Rng, sa: IsakmpSa, peer: IsakmpSa): Buffer[] {
  const wrong = { ...plainIsakmpSa(sa), skeyidA: rng.bytes(sa.skeyidA.length) };
  const mid = rng.next() >>> 0 || 1;
  return [
    informationalMessage(crypto, wrong, mid, [dpdPayload(sa, false, rng.next())]),
    informationalMessage(crypto, wrong, mid, [deleteEspPayload([rng.bytes(4)])]),
    informationalMessage(crypto, wrong, mid, [deleteIsakmpPayload(sa)]),
    // A genuine-looking informational from the peer, but a replayed one would be caught by the message ID set:
    // here a fresh ID with the peer's own keys but a wrong SKEYID_a.
    informationalMessage(crypto, { ...plainIsakmpSa(peer), skeyidA: wrong.skeyidA }, mid ^ 1, [dpdPayload(peer, true, rng.next())]),
  ];
}

async function setup(mode: 'main' | 'aggressive') {
  const sas = await phase1Pair(crypto, 'aes128-sha1-ecp256', mode);
  const now = 1_000_000;
  const mk = (sa: IsakmpSa, pol: Parameters<typeof child>[2]): Side => ({
    ctx: new IsakmpSaContext(crypto, sa, { children: [child('c', 'aes128-sha1', pol)], dpd: DPD }, now),
    sa,
    sent: [],
    children: [],
  });
  return { sas, i: mk(sas.i, { localTs: netA, remoteTs: netB }), r: mk(sas.r, { localTs: netB, remoteTs: netA }), now };
}

test('fuzz phase 2: forged Quick Mode / Informational messages at every Quick Mode step change nothing', async () => {
  const started = Date.now();
  let delivered = 0;
  let skipped = 0;
  let extended = 0;
  let replays = 0;
  let retypedN = 0;
  for (const mode of ['main', 'aggressive'] as const) {
    const name = `phase 2 on ${mode} mode SA`;
    const rng = rngFor(name);
    const s = await setup(mode);
    let now = s.now;
    const ivs = { i: Buffer.from(s.sas.i.lastIv), r: Buffer.from(s.sas.r.lastIv) };
    // Genuine material to mutate: an informational each way (never delivered) and the Quick Mode messages.
    const infoI = s.i.ctx.informational([dpdPayload(s.sas.i, false, 7)]);
    const infoR = s.r.ctx.deleteChildren([Buffer.from('abcd')]);
    const corpus: Buffer[] = [infoI, infoR];
    // Delivered for real first: their copies are then replays (message ID used), not undelivered genuine ones.
    const dpdAnswer = await s.r.ctx.handle(infoI, now);
    assert.equal(dpdAnswer.send.length, 1);
    s.r.sent.push(...dpdAnswer.send);
    assert.equal((await s.i.ctx.handle(dpdAnswer.send[0]!, now)).events[0]?.type, 'dpdAck');
    assert.equal((await s.i.ctx.handle(infoR, now)).events[0]?.type, 'delete');
    corpus.push(dpdAnswer.send[0]!);

    const fuzz = async (to: Who, genuine: Buffer | null, label: string) => {
      const side = s[to];
      const other = s[to === 'i' ? 'r' : 'i'];
      const where0 = `${tag(name)} ${label} -> ${to}`;
      const pending0 = side.ctx.pendingExchanges;
      for (let n = 0; n < ITERATIONS; n++) {
        now += 1000; // a DPD refresh (activity) would move the deadline
        const dpd0 = side.ctx.deadline;
        let m: Buffer;
        const pick = rng.int(10);
        if (pick < 2) m = badHashMessages(rng, other.sa, side.sa)[rng.int(4)]!;
        else m = mutate(rng, genuine !== null && pick < 7 ? genuine : corpus[rng.int(corpus.length)]!, corpus);
        const where = `${where0} #${n} ${m.toString("hex")} (genuine ${genuine?.toString("hex")})`;
        if (equivalent(m, genuine)) {
          skipped++;
          continue;
        }
        if (retyped(m, genuine)) {
          // The genuine message under another exchange type: IKEv1's HASH does not cover the header; an
          // Informational refuses anything but N/D payloads (tested below), so this is not a forgery of content.
          retypedN++;
          continue;
        }
        // The genuine message with cipher blocks appended is delivered like any forgery: its padding check
        // refuses it (see the appended-block test below).
        if (equivalent(m, genuine, true)) extended++;
        let out: Phase2Output;
        try {
          out = await side.ctx.handle(m, now);
        } catch (e) {
          assert.fail(`${where}: handle() threw ${(e as Error).stack}`);
        }
        delivered++;
        checkOutput(out, where);
        assert.deepEqual(out.events, [], `${where}: forged message produced events`);
        for (const b of out.send) assert.ok(side.sent.some((x) => x.equals(b)), `${where}: forged message produced a new datagram ${b.toString("hex")} pending ${side.ctx.pendingExchanges} dropped ${out.dropped.join(";")}`);
        // An exact replay of a delivered QM message gets the cached answer (and is no DPD activity, tested
        // below); anything else must leave the timers alone.
        if (corpus.some((x) => x.equals(m))) replays++;
        else assert.equal(side.ctx.deadline, dpd0, `${where}: timers / DPD moved`);
        assert.equal(side.ctx.pendingExchanges, pending0, `${where}: a Quick Mode was created or finished`);
        assert.deepEqual(side.sa.lastIv, ivs[to], `${where}: ISAKMP SA IV changed`);
      }
    };
    const deliver = async (to: Who, m: Buffer): Promise<Buffer[]> => {
      const out = await s[to].ctx.handle(m, now);
      assert.deepEqual(out.dropped, [], `genuine message dropped: ${out.dropped.join('; ')}`);
      for (const e of out.events) {
        assert.ok(e.type === 'childSa' || e.type === 'childInbound', `unexpected event ${e.type}`);
        if (e.type === 'childSa') s[to].children.push(e.child);
      }
      s[to].sent.push(...out.send);
      return out.send;
    };

    // Idle SA: both sides.
    await fuzz('r', null, 'idle');
    await fuzz('i', null, 'idle');
    // QM1 in flight (the initiator waits for QM2): fuzz the responder with mutated QM1s.
    const { out } = await s.i.ctx.initiate(child('c', 'aes128-sha1', { localTs: netA, remoteTs: netB }), now);
    const qm1 = out.send[0]!;
    s.i.sent.push(qm1);
    corpus.push(qm1);
    await fuzz('r', qm1, 'before QM1');
    await fuzz('i', qm1, 'waiting for QM2');
    const [qm2] = await deliver('r', qm1);
    assert.ok(qm2);
    corpus.push(qm2);
    await fuzz('i', qm2, 'before QM2');
    await fuzz('r', qm2, 'waiting for QM3');
    const [qm3] = await deliver('i', qm2);
    assert.ok(qm3);
    corpus.push(qm3);
    await fuzz('r', qm3, 'before QM3');
    await deliver('r', qm3);
    // After the exchange: both finished, forged copies of all three change nothing.
    await fuzz('i', qm3, 'after QM3');
    await fuzz('r', qm1, 'after QM3');

    assert.equal(s.i.children.length, 1, `${tag(name)}: initiator child`);
    assert.equal(s.r.children.length, 1, `${tag(name)}: responder child`);
    const [a, b] = [s.i.children[0]!, s.r.children[0]!];
    assert.deepEqual(a.spiIn, b.spiOut);
    assert.deepEqual(a.spiOut, b.spiIn);
    assert.deepEqual(a.inbound, b.outbound);
    assert.deepEqual(a.outbound, b.inbound);
    // The ISAKMP SA still works: a second genuine Quick Mode and a DPD exchange.
    const second = await s.r.ctx.initiate(child('c', 'aes128-sha1', { localTs: netB, remoteTs: netA }), now);
    const [q2] = await deliver('i', second.out.send[0]!);
    const [q3] = await deliver('r', q2!);
    await deliver('i', q3!);
    assert.equal(s.i.children.length, 2);
    assert.equal(s.r.children.length, 2);
    const probe = s.i.ctx.informational([dpdPayload(s.sas.i, false, 99)]);
    const ack = await s.r.ctx.handle(probe, now);
    assert.equal(ack.send.length, 1, 'DPD R-U-THERE still answered');
    const back = await s.i.ctx.handle(ack.send[0]!, now);
    assert.deepEqual(back.events.map((e) => e.type), ['dpdAck']);
  }
  console.log(`# phase 2: ${delivered} forged datagrams (not delivered: ${skipped} equivalent to the genuine one; delivered and refused: ${extended} genuine + appended blocks; ${replays} exact replays, ${retypedN} with only the exchange type changed) in ${Date.now() - started} ms`);
  guard.check();
});

test(
  'phase 2: a copy of QM1 with an extra cipher block appended does not take the place of the genuine QM1',
  {},
  async () => {
    const s = await setup('main');
    const now = s.now;
    const { out } = await s.i.ctx.initiate(child('c', 'aes128-sha1', { localTs: netA, remoteTs: netB }), now);
    const qm1 = out.send[0]!;
    const forged = Buffer.concat([qm1, Buffer.alloc(16, 0x5a)]);
    forged.writeUInt32BE(forged.length, 24);
    const f = await s.r.ctx.handle(forged, now);
    assert.deepEqual(f.send, [], `forged QM1 answered (dropped: ${f.dropped.join('; ')})`);
    // The genuine exchange must still complete.
    const r1 = await s.r.ctx.handle(qm1, now);
    assert.equal(r1.send.length, 1, `genuine QM1 not answered: ${r1.dropped.join('; ')}`);
    const i2 = await s.i.ctx.handle(r1.send[0]!, now);
    assert.ok(i2.events.some((e) => e.type === 'childSa'), `QM2 rejected: ${i2.dropped.join('; ')}`);
  },
);

test(
  'phase 2: an exact replay of an old Quick Mode message does not count as DPD liveness',
  {},
  async () => {
    const s = await setup('main');
    let now = s.now;
    const { out } = await s.i.ctx.initiate(child('c', 'aes128-sha1', { localTs: netA, remoteTs: netB }), now);
    const qm1 = out.send[0]!;
    const qm2 = (await s.r.ctx.handle(qm1, now)).send[0]!;
    const qm3 = (await s.i.ctx.handle(qm2, now)).send[0]!;
    await s.r.ctx.handle(qm3, now);
    const before = s.i.ctx.deadline;
    now += 20_000;
    await s.i.ctx.handle(qm2, now); // replayed by a third party
    assert.equal(s.i.ctx.deadline, before, 'DPD deadline moved on a replay');
  },
);

test(
  'phase 2: QM1 relabelled as an Informational (exchange type 5) does not burn its message ID',
  {},
  async () => {
    const s = await setup('main');
    const now = s.now;
    const { out } = await s.i.ctx.initiate(child('c', 'aes128-sha1', { localTs: netA, remoteTs: netB }), now);
    const qm1 = out.send[0]!;
    const relabelled = Buffer.from(qm1);
    relabelled[18] = 5;
    const f = await s.r.ctx.handle(relabelled, now);
    assert.deepEqual(f.events, []);
    const g = await s.r.ctx.handle(qm1, now);
    assert.equal(g.send.length, 1, `genuine QM1 not answered: ${g.dropped.join('; ')}`);
  },
);
