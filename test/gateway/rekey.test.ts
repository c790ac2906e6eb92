// A phase 1 rekey with a child SA that would outlive the old ISAKMP SA: the child must move to the new
// ISAKMP SA before the old one expires (before the fix the old SA's expiry deleted the child and the tunnel
// stayed down; `ike soak` found it after 13 minutes of 40 s ISAKMP SAs).
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

test('a phase 1 rekey moves the child SA to the new ISAKMP SA at once; the old SA expires without taking the tunnel down', { timeout: 30_000 }, async () => {
  const over = { esp: ['aes128gcm16'] };
  const r = new Gateway(lifetimes(peerConfig(base, base + 2, { ...over, initiate: false }), 4, 60));
  const i = new Gateway(lifetimes(peerConfig(base + 2, base, { ...over, initiate: true }), 4, 60));
  const { up, childUp, childDown, errors: errorsI } = events(i);
  const { esp, errors: errorsR } = events(r);
  await r.start();
  await i.start();
  try {
    await until(() => childUp.length === 1, 10_000);
    // the ISAKMP rekey at 3.4-3.6 s, the old SA's expiry at 4 s; the child's own rekey would be at ~51 s
    await until(() => up.length === 2, 10_000);
    await until(() => childUp.length === 2, 2_000);
    assert.equal(childUp[1]!.cookieI, up[1]!.cookieI, 'the new child lives on the new ISAKMP SA');
    assert.equal(childUp[1]!.rekey, true);
    await new Promise((res) => setTimeout(res, 1500)); // past the old ISAKMP SA's lifetime
    assert.equal(i.phase1Sas().length, 1);
    assert.equal(i.childSas().length, 1, `children: ${JSON.stringify(childDown.map((d) => d.reason))}`);
    assert.equal(r.childSas().length, 1);
    i.sendEsp('peer', Buffer.alloc(40, 7), 4);
    await until(() => esp.length === 1, 2_000);
    assert.deepEqual([...errorsI, ...errorsR], []);
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
