// Anti-replay window (RFC 4303 3.4.3, Appendix A) through real SAs: packets with chosen sequence numbers are
// made with the sealWithIv test hook (AES-GCM, IV = sequence number as in normal use).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EspStatus } from '../../ts/esp/index.js';
import { ReplayWindow } from '../../ts/esp/replay.js';
import { IMPLS, prng, saPair, skipFor, type Impl } from './helpers.js';

function be64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}

function setup(impl: Impl, opts: { replayWindow?: number; esn?: boolean; initialSequence?: bigint } = {}) {
  const { out, in: inb } = saPair('aes128gcm16', { outImpl: 'node', inImpl: impl, ...opts });
  const packet = (seq: bigint, payload = Buffer.from('x')) => out.sealWithIv(payload, 4, seq, be64(seq));
  const open = (seq: bigint) => {
    const r = inb.open(packet(seq));
    return r.ok ? EspStatus.OK : r.status;
  };
  return { inb, packet, open };
}

function shuffle<T>(a: T[], seed: number): T[] {
  const r = prng(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = r(4).readUInt32LE(0) % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

for (const impl of IMPLS) {
  const opt = { skip: skipFor(impl) };

  test(`[${impl}] in order, duplicates, reordered within the window, too old (W=64)`, opt, () => {
    const { open, inb } = setup(impl);
    for (let s = 1n; s <= 100n; s += 3n) assert.equal(open(s), EspStatus.OK);
    assert.equal(open(100n), EspStatus.REPLAYED); // 1 + 33 * 3 = 100 was the last one
    // Window is now 37..100: every unseen number in it is accepted once, in any order.
    const seen = new Set<bigint>();
    for (let s = 1n; s <= 100n; s += 3n) seen.add(s);
    const rest = shuffle(Array.from({ length: 64 }, (_, i) => 37n + BigInt(i)), 7);
    for (const s of rest) assert.equal(open(s), seen.has(s) ? EspStatus.REPLAYED : EspStatus.OK, `seq ${s}`);
    for (const s of rest) assert.equal(open(s), EspStatus.REPLAYED, `duplicate ${s}`);
    assert.equal(open(36n), EspStatus.REPLAYED); // left of the window
    assert.equal(open(1n), EspStatus.REPLAYED);
    assert.equal(inb.sequence(), 100n);
    assert.ok(inb.stats().replays >= 64 + 2);
  });

  test(`[${impl}] large jumps move the window; the bitmap is cleared`, opt, () => {
    const { open, inb } = setup(impl);
    assert.equal(open(100n), EspStatus.OK);
    assert.equal(open(1_000_000n), EspStatus.OK);
    assert.equal(open(100n), EspStatus.REPLAYED);
    assert.equal(open(999_950n), EspStatus.OK);
    assert.equal(open(999_950n), EspStatus.REPLAYED);
    assert.equal(open(999_936n), EspStatus.REPLAYED); // 1_000_000 - 64
    assert.equal(open(999_937n), EspStatus.OK);
    // Jumps of exactly one window, and of a window plus one bit.
    assert.equal(open(1_000_064n), EspStatus.OK);
    assert.equal(open(1_000_000n), EspStatus.REPLAYED);
    assert.equal(open(1_000_001n), EspStatus.OK);
    assert.equal(open(1_000_129n), EspStatus.OK);
    assert.equal(open(1_000_066n), EspStatus.OK);
    assert.equal(open(1_000_065n), EspStatus.REPLAYED);
    assert.equal(inb.sequence(), 1_000_129n);
  });

  test(`[${impl}] window 4096: 4096 out-of-order packets accepted once, the next older one rejected`, opt, () => {
    const { open } = setup(impl, { replayWindow: 4096 });
    assert.equal(open(5000n), EspStatus.OK);
    const inWindow = shuffle(Array.from({ length: 4095 }, (_, i) => 905n + BigInt(i)), 11);
    for (const s of inWindow) assert.equal(open(s), EspStatus.OK, `seq ${s}`);
    assert.equal(open(904n), EspStatus.REPLAYED);
    for (const s of inWindow.slice(0, 200)) assert.equal(open(s), EspStatus.REPLAYED);
    assert.equal(open(5000n), EspStatus.REPLAYED);
  });

  test(`[${impl}] a packet with a bad ICV never moves or marks the window`, opt, () => {
    const { open, packet, inb } = setup(impl);
    assert.equal(open(100n), EspStatus.OK);
    const forged = packet(1000n);
    forged[forged.length - 1]! ^= 1;
    const r = inb.open(forged);
    assert.equal(r.ok ? 0 : r.status, EspStatus.AUTH_FAILED);
    assert.equal(inb.sequence(), 100n);
    assert.equal(open(50n), EspStatus.OK); // still inside 37..100, so the window did not move to 1000
    const forged60 = packet(60n);
    forged60[20]! ^= 1;
    assert.equal((inb.open(forged60) as { status: number }).status, EspStatus.AUTH_FAILED);
    assert.equal(open(60n), EspStatus.OK); // not marked as received by the forgery
    assert.equal(open(1000n), EspStatus.OK);
    assert.equal(inb.stats().authFailures, 2);
  });

  test(`[${impl}] ESN: the low 32 bits wrap, the high half is inferred (Appendix A2), reordering across the wrap`, opt, () => {
    const { open, inb } = setup(impl, { esn: true, initialSequence: 0xfffffff0n });
    for (let s = 0xfffffff0n; s <= 0x100000010n; s++) assert.equal(open(s), EspStatus.OK, `seq ${s.toString(16)}`);
    assert.equal(inb.sequence(), 0x100000010n);
    assert.equal(open(0x100000030n), EspStatus.OK);
    // Still in the window (T - 63 = 0xffffffff + 0x32): the previous subspace is inferred for low 0xfffffff5.
    assert.equal(open(0xfffffff5n), EspStatus.REPLAYED); // already received
    // Skip ahead across the next wrap then come back.
    const { open: open2, inb: inb2 } = setup(impl, { esn: true, initialSequence: 0x1fffffffen });
    assert.equal(open2(0x200000005n), EspStatus.OK);
    assert.equal(open2(0x1ffffffffn), EspStatus.OK); // low 0xffffffff, high inferred as 1 (Case B)
    assert.equal(open2(0x200000001n), EspStatus.OK);
    assert.equal(open2(0x1ffffffffn), EspStatus.REPLAYED);
    assert.equal(inb2.sequence(), 0x200000005n);
    // A full-64-bit AAD makes a wrongly inferred high half an ICV failure, never an accepted packet.
    assert.equal(open2(0x300000006n), EspStatus.AUTH_FAILED);
  });

  test(`[${impl}] without ESN a sequence number 0 is never accepted; window 0 turns the check off`, opt, () => {
    const { packet, inb } = setup(impl);
    const p0 = Buffer.from(packet(1n));
    p0.writeUInt32BE(0, 4);
    assert.equal((inb.open(p0) as { status: number }).status, EspStatus.REPLAYED);
    const off = setup(impl, { replayWindow: 0 });
    assert.equal(off.open(5n), EspStatus.OK);
    assert.equal(off.open(5n), EspStatus.OK);
    assert.equal(off.open(1n), EspStatus.OK);
  });
}

/** A model that remembers every sequence number: accept iff new and within W of the highest. */
class Model {
  top = 0n;
  seen = new Set<bigint>();
  constructor(readonly w: number) {}
  accept(s: bigint): boolean {
    if (s === 0n) return false;
    if (s > this.top) return true;
    return this.top - s < BigInt(this.w) && !this.seen.has(s);
  }
  add(s: bigint) {
    this.seen.add(s);
    if (s > this.top) this.top = s;
  }
}

test('native and node windows agree with a model on random sequences (W 1, 64, 100, 4096; ESN on/off)', { skip: skipFor('native') }, () => {
  const r = prng(99);
  const rand = (n: number) => r(4).readUInt32LE(0) % n;
  for (const w of [1, 64, 100, 4096]) {
    for (const esn of [false, true]) {
      const start = esn ? 0xffffff00n : 1n;
      const a = setup('native', { replayWindow: w, esn, initialSequence: start });
      const b = setup('node', { replayWindow: w, esn, initialSequence: start });
      const m = new Model(w);
      m.top = start - 1n;
      let hi = start;
      for (let i = 0; i < 3000; i++) {
        // Mostly near the top, sometimes far behind, sometimes a jump.
        const k = rand(10);
        let s = k < 6 ? hi - BigInt(rand(w * 2 + 2)) : k < 9 ? hi + BigInt(rand(4)) : hi + BigInt(rand(w * 3));
        if (s < 1n) s = 1n;
        if (!esn && s > 0xffffffffn) s = 0xffffffffn;
        const forge = rand(20) === 0;
        const pkt = a.packet(s);
        if (forge) pkt[9]! ^= 0x40;
        const ra = a.inb.open(pkt);
        const rb = b.inb.open(pkt);
        assert.deepEqual(ra.ok ? 0 : ra.status, rb.ok ? 0 : rb.status, `w=${w} esn=${esn} seq=${s} i=${i}`);
        const expectAccept = !forge && m.accept(s);
        assert.equal(ra.ok, expectAccept, `w=${w} esn=${esn} seq=${s} top=${m.top} forged=${forge}`);
        if (ra.ok) m.add(s);
        if (s > hi) hi = s;
      }
      assert.equal(a.inb.sequence(), m.top);
      assert.equal(b.inb.sequence(), m.top);
    }
  }
});

test('ReplayWindow (TS) Appendix A2 inference at the edges', () => {
  const w = new ReplayWindow(64, true);
  assert.equal(w.inferHigh(5), 0); // T = 0: Case B, Th = 0
  assert.equal(w.inferHigh(0xffffffff), -1); // would be below 0
  w.setTop(0x1_00000010n); // Tl = 16 < W - 1: Case B
  assert.equal(w.inferHigh(0xfffffff0), 0);
  assert.equal(w.inferHigh(3), 1);
  w.setTop(0x1_80000000n); // Case A
  assert.equal(w.inferHigh(0x80000000 - 63), 1);
  assert.equal(w.inferHigh(0x80000000 - 64), 2);
  w.setTop(0xffffffff_ffffff00n);
  assert.equal(w.inferHigh(5), -1); // would pass 2^64
});

