// Every entry of a connection's localTs x remoteTs is a child SA of its own (one Quick Mode each, as strongSwan
// does in IKEv1), rekeyed and deleted on its own; `status()` lists them all. Two gateways on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, type GatewayConfig } from '../../ts/gateway/index.js';
import { selectorPairs } from '../../ts/gateway/policy.js';
import { events, peerConfig, until } from './peers.js';

const base = 30000 + (process.pid % 2000) * 4;
const LEFT = ['10.2.0.0/24', '10.3.0.10-10.3.0.20', 'fd00:2::/64'];
const RIGHT = ['10.1.0.0/24', '10.4.0.5', 'fd00:1::/64'];
/** 2 x 2 IPv4 pairs and 1 IPv6 pair; the IPv4 x IPv6 mixtures are no Quick Mode. */
const PAIRS = 5;

function pair(b: number, over: Record<string, unknown> = {}): { i: Gateway; r: Gateway } {
  const r = new Gateway(peerConfig(b, b + 2, { esp: ['aes128gcm16'], localTs: RIGHT, remoteTs: LEFT, initiate: false, ...over }));
  const i = new Gateway(peerConfig(b + 2, b, { esp: ['aes128gcm16'], localTs: LEFT, remoteTs: RIGHT, initiate: true, ...over }));
  return { i, r };
}

const key = (c: { localTs: string; remoteTs: string }) => `${c.localTs} <=> ${c.remoteTs}`;

test('selectorPairs: local major, same IP version only, dynamic is one entry', () => {
  const c = peerConfig(1, 2, { localTs: LEFT, remoteTs: RIGHT });
  const text = (ts: { id: { kind: string } } | undefined) => (ts ? JSON.stringify(ts.id) : 'dynamic');
  const pairs = selectorPairs(c.connections[0]!.localTs, c.connections[0]!.remoteTs);
  assert.equal(pairs.length, PAIRS);
  assert.deepEqual(pairs.map(([l, r]) => [l!.id.kind, r!.id.kind]), [
    ['ipv4-subnet', 'ipv4-subnet'], ['ipv4-subnet', 'ipv4'], ['ipv4-range', 'ipv4-subnet'], ['ipv4-range', 'ipv4'], ['ipv6-subnet', 'ipv6-subnet'],
  ]);
  const d = selectorPairs('dynamic', c.connections[0]!.remoteTs);
  assert.deepEqual(d.map(([l, r]) => `${text(l)} ${text(r)}`), [
    'dynamic {"kind":"ipv4-subnet","subnet":"10.1.0.0/24"}', 'dynamic {"kind":"ipv4","address":"10.4.0.5"}', 'dynamic {"kind":"ipv6-subnet","subnet":"fd00:1::/64"}',
  ]);
  assert.deepEqual(selectorPairs('dynamic', 'dynamic'), [[undefined, undefined]]);
});

test('one child SA per selector pair on both sides, each carrying its own SPIs, all in status()', { timeout: 30_000 }, async () => {
  const { i, r } = pair(base);
  const ei = events(i);
  const er = events(r);
  await r.start();
  await i.start();
  try {
    await until(() => ei.childUp.length === PAIRS && er.childUp.length === PAIRS, 10_000, `${PAIRS} children on both sides`);
    assert.deepEqual([ei.errors, er.errors], [[], []]);
    assert.equal(ei.up.length, 1, 'all on one ISAKMP SA');
    const ours = new Set(ei.childUp.map(key));
    assert.equal(ours.size, PAIRS, `distinct pairs: ${[...ours].join(', ')}`);
    assert.deepEqual(new Set(er.childUp.map((c) => `${c.remoteTs} <=> ${c.localTs}`)), ours);
    for (const c of ei.childUp) {
      const peer = er.childUp.find((x) => x.spiIn === c.spiOut);
      assert.ok(peer && peer.spiOut === c.spiIn && peer.localTs === c.remoteTs && peer.remoteTs === c.localTs, key(c));
    }
    const status = i.status();
    assert.equal(status.sas.length, 1);
    assert.deepEqual(new Set(status.sas[0]!.children.map(key)), ours);
    assert.equal(r.status().sas[0]!.children.length, PAIRS);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('a delete of one pair\'s child takes only that child down, on both sides', { timeout: 30_000 }, async () => {
  const { i, r } = pair(base + 1000);
  const ei = events(i);
  const er = events(r);
  await r.start();
  await i.start();
  try {
    await until(() => ei.childUp.length === PAIRS && er.childUp.length === PAIRS, 10_000);
    const victim = ei.childUp[1]!;
    // the child manager's own delete (what a lifetime expiry does): a Delete for this child's SPI only
    const inner = i as unknown as { children: { down(e: unknown, spi: Buffer, why: string, notify: boolean): void }; table: { up(): Iterable<unknown> } };
    inner.children.down([...inner.table.up()][0], Buffer.from(victim.spiIn, 'hex'), 'deleted locally', true);
    await until(() => er.childDown.length === 1, 5_000, 'the peer drops the child');
    assert.equal(er.childDown[0]!.spiOut, victim.spiIn);
    assert.equal(er.childDown[0]!.reason, 'deleted by the peer');
    assert.equal(i.childSas().length, PAIRS - 1);
    assert.equal(r.childSas().length, PAIRS - 1);
    assert.ok(!i.status().sas[0]!.children.some((c) => key(c) === key(victim)));
    assert.deepEqual([ei.errors, er.errors, ei.down, er.down], [[], [], [], []]);
  } finally {
    await i.stop();
    await r.stop();
  }
});

/** The config refuses ESP lifetimes under 60 s; the runtime takes what it is given. */
function espLifetime(g: Gateway, seconds: number): void {
  (g.config as GatewayConfig).connections[0]!.lifetime.espSeconds = seconds;
}

test('each pair\'s child is rekeyed by its own Quick Mode and replaces only its own predecessor', { timeout: 30_000 }, async () => {
  const { i, r } = pair(base + 2000);
  espLifetime(i, 4);
  espLifetime(r, 4);
  const ei = events(i);
  const er = events(r);
  await r.start();
  await i.start();
  try {
    // rekeys at 3.4-3.6 s of each child's life; the predecessors go 5 s later
    await until(() => ei.childUp.length === 2 * PAIRS, 10_000, 'a rekey of every pair');
    const first = ei.childUp.slice(0, PAIRS);
    const rekeys = ei.childUp.slice(PAIRS);
    assert.ok(rekeys.every((c) => c.rekey), 'each new child replaced one');
    assert.deepEqual(new Set(rekeys.map(key)), new Set(first.map(key)), 'one rekey per pair');
    const live = i.status().sas.flatMap((s) => s.children).filter((c) => !c.rekeyed);
    assert.equal(live.length, PAIRS);
    assert.deepEqual(new Set(live.map((c) => c.spiIn)), new Set(rekeys.map((c) => c.spiIn)));
    await until(() => ei.childDown.length === PAIRS, 8_000, 'the predecessors deleted');
    assert.deepEqual(new Set(ei.childDown.map((d) => d.spiIn)), new Set(first.map((c) => c.spiIn)));
    // the overlap outlasts these 4 s lifetimes: whichever comes first removes a predecessor (our replacement
    // rule, our expiry, or the peer's expiry arriving as its Delete); never an error, never a current child
    const ends = new Set(['replaced by a rekey', 'lifetime expired', 'deleted by the peer']);
    assert.ok(ei.childDown.every((d) => ends.has(d.reason)), JSON.stringify(ei.childDown.map((d) => d.reason)));
    await until(() => er.childDown.length === PAIRS, 2_000);
    assert.equal(r.childSas().length, PAIRS);
    assert.deepEqual([ei.errors, er.errors], [[], []]);
  } finally {
    await i.stop();
    await r.stop();
  }
});
