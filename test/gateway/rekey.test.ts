// A phase 1 rekey with a child SA that would outlive the old ISAKMP SA: the child must move to the new
// ISAKMP SA before the old one expires (before the fix the old SA's expiry deleted the child and the tunnel
// stayed down; `ike soak` found it after 13 minutes of 40 s ISAKMP SAs). It moves as it is, without a new
// Quick Mode (issue 19: in IKEv1 the IPsec SAs outlive the ISAKMP SA that made them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, type GatewayConfig } from '../../ts/gateway/index.js';
import { events, peerConfig, until } from './peers.js';

const base = 26000 + (process.pid % 2000) * 4;

/** The config refuses lifetimes under 60 s; the runtime takes what it is given. */
function lifetimes(c: GatewayConfig, ikeSeconds: number, espSeconds: number): GatewayConfig {
  const k = c.connections[0]!;
  k.lifetime.ikeSeconds = ikeSeconds;
  k.lifetime.espSeconds = espSeconds;
  k.ike = k.ike.map((p) => ({ ...p, lifetimeSeconds: ikeSeconds }));
  return c;
}

test('a phase 1 rekey moves the child SA to the new ISAKMP SA at once, without a Quick Mode; the old SA goes without taking the tunnel down', { timeout: 30_000 }, async () => {
  const over = { esp: ['aes128gcm16'] };
  const r = new Gateway(lifetimes(peerConfig(base, base + 2, { ...over, initiate: false }), 4, 60));
  const i = new Gateway(lifetimes(peerConfig(base + 2, base, { ...over, initiate: true }), 4, 60));
  const { up, down, childUp, childDown, errors: errorsI } = events(i);
  const { esp, childDown: childDownR, errors: errorsR } = events(r);
  await r.start();
  await i.start();
  try {
    await until(() => childUp.length === 1, 10_000);
    const spi = childUp[0]!.spiIn;
    // the ISAKMP rekey at 3.4-3.6 s, the old SA's expiry at 4 s; the child's own rekey would be at ~51 s
    await until(() => up.length === 2, 10_000);
    await until(() => down.length === 1, 2_000);
    assert.equal(down[0]!.reason, 'replaced by a newer ISAKMP SA');
    await new Promise((res) => setTimeout(res, 1500)); // past the old ISAKMP SA's lifetime
    assert.equal(childUp.length, 1, 'no new Quick Mode for a child with most of its lifetime left');
    assert.equal(i.phase1Sas().length, 1);
    assert.equal(r.phase1Sas().length, 1);
    assert.deepEqual(i.childSas().map((c) => c.spiIn.toString('hex')), [spi], `children: ${JSON.stringify(childDown.map((d) => d.reason))}`);
    assert.equal(r.childSas().length, 1, `responder's children: ${JSON.stringify(childDownR.map((d) => d.reason))}`);
    // the child now belongs to the new ISAKMP SA on both ends: its Deletes and DPD go there
    assert.equal(i.status().sas[0]!.cookieI, up[1]!.cookieI);
    assert.deepEqual(i.status().sas[0]!.children.map((c) => c.spiIn), [spi]);
    assert.equal(r.status().sas[0]!.children.length, 1);
    i.sendEsp('peer', Buffer.alloc(40, 7), 4);
    await until(() => esp.length === 1, 2_000);
    assert.deepEqual([...errorsI, ...errorsR], []);
    assert.deepEqual([...childDown, ...childDownR], []);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('the responder takes ESP on a new child as soon as it has sent QM2 (the initiator may send before its QM3 arrives)', { timeout: 20_000 }, async () => {
  const b = base + 1000;
  const r = new Gateway(peerConfig(b, b + 2, { esp: ['aes128gcm16'], initiate: false }));
  const i = new Gateway(peerConfig(b + 2, b, { esp: ['aes128gcm16'], initiate: true }));
  // Fault injection on the responder's receive path: the first Quick Mode message 3 arrives 600 ms late
  // (a slow or lossy path). QM1 and QM3 share a message ID; the second datagram with it is QM3.
  const seen = new Set<number>();
  let held = false;
  const gw = r as unknown as { receive: (m: Buffer, from: unknown, natt: boolean) => void };
  const receive = gw.receive.bind(r);
  gw.receive = (m, from, natt) => {
    if (m.length >= 28 && m[18] === 32) {
      const mid = m.readUInt32BE(20);
      if (seen.has(mid) && !held) {
        held = true;
        setTimeout(() => receive(m, from, natt), 600);
        return;
      }
      seen.add(mid);
    }
    receive(m, from, natt);
  };
  const order: string[] = [];
  r.on('esp-packet', (e) => order.push(`esp ${e.spi}`));
  r.on('child-up', (e) => order.push(`up ${e.spiIn}`));
  i.on('child-up', () => i.sendEsp('peer', Buffer.alloc(40, 9), 4)); // at once, on the child QM2 made
  const errors: unknown[] = [];
  i.on('error', (e) => errors.push(e));
  r.on('error', (e) => errors.push(e));
  await r.start();
  await i.start();
  try {
    await until(() => order.some((o) => o.startsWith('up')), 10_000);
    await until(() => order.some((o) => o.startsWith('esp')), 2_000);
    assert.ok(held, 'QM3 was not held back');
    const spi = order[0]!.slice(4);
    assert.ok(r.childSas().some((c) => Buffer.from(c.spiIn).toString('hex') === spi));
    assert.deepEqual(order, [`esp ${spi}`, `up ${spi}`], 'the packet sent before QM3 arrived was taken on the new child');
    assert.deepEqual(errors, []);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('responder-side rekey: our child lifetime is the shorter one and the peer does not rekey: we do, before expiry', { timeout: 30_000 }, async () => {
  const b = base + 2000;
  const over = { esp: ['aes128gcm16'], initiate: false };
  // r answers the 60 s offer with RESPONDER-LIFETIME 3 s. i is started by hand and never rekeys a child itself
  // (initiate: false), so for r it is a peer that ignores RESPONDER-LIFETIME: the rekey is r's to do.
  const r = new Gateway(lifetimes(peerConfig(b, b + 2, over), 600, 3));
  const i = new Gateway(lifetimes(peerConfig(b + 2, b, over), 600, 60));
  const evI = events(i);
  const evR = events(r);
  await r.start();
  await i.start();
  try {
    await i.initiate('peer');
    await until(() => evR.childUp.length === 1 && evI.childUp.length === 1, 10_000);
    assert.equal(evR.childUp[0]!.initiator, false);
    assert.equal(evR.childUp[0]!.lifetimeSeconds, 3);
    // 95% of 3 s minus jitter: well before the 3 s expiry
    await until(() => evR.childUp.length === 2, 4_000, 'the responder-side rekey');
    const again = evR.childUp[1]!;
    assert.equal(again.initiator, true, 'we started the Quick Mode although the peer made the first child');
    assert.equal(again.rekey, true);
    assert.equal(again.localTs, evR.childUp[0]!.localTs);
    assert.equal(again.remoteTs, evR.childUp[0]!.remoteTs);
    await until(() => evI.childUp.length === 2, 2_000);
    await new Promise((res) => setTimeout(res, 1_000)); // past the first child's expiry
    assert.deepEqual(r.childSas().map((c) => c.spiIn.toString('hex')), [again.spiIn]);
    i.sendEsp('peer', Buffer.alloc(40, 5), 4);
    await until(() => evR.esp.length === 1, 2_000, 'ESP over the new child');
    assert.equal(evR.esp[0]!.spi, again.spiIn);
    assert.deepEqual([...evI.errors, ...evR.errors], []);
    assert.ok(!evR.childDown.some((d) => d.reason === 'lifetime expired' && d.spiIn === again.spiIn));
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('phase 1: the responder with the shorter lifetime re-keys the ISAKMP SA itself; the child moves over, nothing expires', { timeout: 30_000 }, async () => {
  const b = base + 3000;
  const over = { esp: ['aes128gcm16'] };
  // i offers 600 s and would re-key at ~540 s; r allows 3 s (RESPONDER-LIFETIME) and re-keys at ~2.7-2.85 s
  const r = new Gateway(lifetimes(peerConfig(b, b + 2, { ...over, initiate: false }), 3, 60));
  const i = new Gateway(lifetimes(peerConfig(b + 2, b, { ...over, initiate: true }), 600, 60));
  const evI = events(i);
  const evR = events(r);
  await r.start();
  await i.start();
  try {
    await until(() => evR.childUp.length === 1 && evI.childUp.length === 1, 10_000);
    assert.equal(evR.up[0]!.initiator, false);
    assert.equal(evR.up[0]!.lifetimeSeconds, 3);
    await until(() => evR.up.length === 2, 4_000, "the responder's phase 1 re-key");
    assert.equal(evR.up[1]!.initiator, true, 'r started the new ISAKMP SA');
    await until(() => evR.down.length === 1 && evI.down.length === 1, 2_000);
    assert.equal(evR.down[0]!.reason, 'replaced by a newer ISAKMP SA');
    assert.equal(evI.down[0]!.reason, 'deleted by the peer');
    await new Promise((res) => setTimeout(res, 1_000)); // past the first ISAKMP SA's 3 s
    assert.equal(evR.childUp.length + evI.childUp.length, 2, 'no Quick Mode: the child moved to the new ISAKMP SA on both ends');
    assert.deepEqual([...evR.childDown, ...evI.childDown], []);
    assert.equal(r.phase1Sas().length, 1);
    assert.equal(i.phase1Sas().length, 1);
    assert.equal(r.status().sas[0]!.children.length, 1);
    assert.equal(i.status().sas[0]!.children.length, 1);
    i.sendEsp('peer', Buffer.alloc(40, 3), 4);
    await until(() => evR.esp.length === 1, 2_000);
    assert.deepEqual([...evI.errors, ...evR.errors], []);
  } finally {
    await i.stop();
    await r.stop();
  }
});

/**
 * Two initiators (i1 and i2, one identity '@group' as Cisco-style group PSK clients have, one address to r) set
 * up a child each with r; i2's phase 1 comes up after i1's child. `check` looks at r once both are up.
 */
async function twoInitiators(b: number, rOver: Record<string, unknown>, check: (r: Gateway, evR: ReturnType<typeof events>) => void): Promise<void> {
  const r = new Gateway(peerConfig(b, b + 2, { esp: ['aes128gcm16'], initiate: false, ...rOver }));
  const i1 = new Gateway(peerConfig(b + 2, b, { esp: ['aes128gcm16'], initiate: true, localId: '@group' }));
  const i2 = new Gateway(peerConfig(b + 4, b, { esp: ['aes128gcm16'], initiate: true, localId: '@group' }));
  const evR = events(r);
  await r.start();
  await i1.start();
  try {
    await until(() => evR.childUp.length === 1, 10_000);
    await i2.start();
    await until(() => evR.childUp.length === 2, 10_000);
    await new Promise((res) => setTimeout(res, 300));
    check(r, evR);
    assert.deepEqual(evR.errors, []);
  } finally {
    await i2.stop();
    await i1.stop();
    await r.stop();
  }
}

test('two clients from one address on a %any connection: a new ISAKMP SA of one never takes over the other\'s children', { timeout: 30_000 }, async () => {
  // r answers anyone: only the %any rule tells the two clients apart
  await twoInitiators(base + 4000, { remote: '%any', remoteId: '%any' }, (r) => {
    const st = r.status();
    assert.equal(st.sas.length, 2);
    assert.deepEqual(st.sas.map((s) => s.children.length), [1, 1], JSON.stringify(st.sas.map((s) => [s.remoteId, s.children.map((c) => c.spiIn)])));
  });
});

for (const unique of ['never', 'no'] as const) {
  test(`unique '${unique}': two initiators with one identity to a connection with a fixed remote: ${unique === 'never' ? 'each ISAKMP SA keeps its own child' : 'the newer ISAKMP SA takes over the older one\'s child'}`, { timeout: 30_000 }, async () => {
    // r's connection names 127.0.0.1 and '@group': both initiators are, to r, the same peer (a load tester, or
    // a peer that keeps parallel SAs); only `unique` says whether a new ISAKMP SA replaces the older ones
    await twoInitiators(base + (unique === 'never' ? 5000 : 6000), { remoteId: '@group', unique }, (r, evR) => {
      const st = r.status();
      const shape = JSON.stringify(st.sas.map((s) => [s.cookieI, s.children.map((c) => c.spiIn)]));
      if (unique === 'never') {
        assert.deepEqual(st.sas.map((s) => s.children.length), [1, 1], shape);
        assert.deepEqual([evR.down, evR.childDown], [[], []]);
      } else {
        // the second ISAKMP SA holds both children (a phase 1 re-key, as IKEv1 peers do it); the first, emptied,
        // stays until the peer deletes it or it expires
        assert.deepEqual(st.sas.map((s) => [s.cookieI, s.children.length]), [[evR.up[0]!.cookieI, 0], [evR.up[1]!.cookieI, 2]], shape);
        assert.deepEqual(evR.childDown, []);
      }
    });
  });
}
