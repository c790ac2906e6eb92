// Several traffic selectors against strongSwan: our gateway (TUN data plane) proposes every pair of its
// localTs x remoteTs in a Quick Mode of its own; strongSwan 5.9.8 (kernel-libipsec, ESP in UDP) must hold one
// CHILD_SA per pair, and the traffic of each pair must go through that pair's SA (its counters, on both sides).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway, pingThrough } from './ours.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const PSK = 'selector-test-secret';
/** A second inner address on each side's lo, next to the harness's 10.99.1.1 / 10.99.2.1. */
const A = ['10.99.1.1', '10.99.1.2'];
const B = ['10.99.2.1', '10.99.2.2'];

let pair: NetnsPair;
before(async () => {
  if (skip) return;
  pair = await NetnsPair.create({ prefix: 'iksel' });
  for (const [side, addr] of [['a', A[1]!], ['b', B[1]!]] as const) {
    const r = await pair.run(side, 'ip', ['addr', 'add', `${addr}/32`, 'dev', 'lo']);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => {
  await pair?.destroy();
});

test('two local x two remote selectors: four Quick Modes, four CHILD_SAs in strongSwan, each pair\'s ping through its own SA', { skip, timeout: 90_000 }, async () => {
  const cidrs = (l: string[]) => l.map((x) => `${x}/32`);
  const ss = new StrongSwanPeer(pair, 'b', { esp: 'aes128gcm16', ike: 'aes128-sha256-modp2048', psk: PSK, localTs: cidrs(B).join(','), remoteTs: cidrs(A).join(','), kernel: 'libipsec' });
  await ss.start();
  const gw = new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      s: { remote: pair.a.peerAddr, auth: { psk: PSK }, ike: ['aes128-sha256-modp2048'], esp: ['aes128gcm16'], localTs: cidrs(A), remoteTs: cidrs(B), initiate: true, retransmit: { tries: 3, timeout: '1s', factor: 1.5 } },
    },
  });
  try {
    await gw.start();
    const deadline = Date.now() + 20_000;
    while (gw.events.filter((e) => e.event === 'child-up').length < 4) {
      const err = gw.events.find((e) => e.event === 'error');
      assert.ok(!err && Date.now() < deadline, `four child-up events: ${JSON.stringify(gw.events)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ours = gw.events.filter((e) => e.event === 'child-up') as unknown as { spiIn: string; spiOut: string; localTs: string; remoteTs: string }[];
    const sas = await ss.listSas();
    assert.equal(sas.length, 1, 'one IKE_SA');
    const theirs = sas[0]!.children;
    assert.equal(theirs.length, 4, `strongSwan's CHILD_SAs: ${JSON.stringify(theirs.map((c) => [c.localTs, c.remoteTs]))}`);
    const counts = async () => new Map((await ss.listSas())[0]!.children.map((c) => [c.spiIn!, c.packetsIn]));
    for (const [src, dst] of A.flatMap((a) => B.map((b) => [a, b] as const))) {
      const mine = ours.find((c) => c.localTs === src && c.remoteTs === dst); // one host: an address selector
      assert.ok(mine, `our child for ${src} <=> ${dst}`);
      const theirsForPair = theirs.find((c) => c.spiIn === mine.spiOut);
      assert.ok(theirsForPair, `strongSwan's CHILD_SA for ${src} <=> ${dst}`);
      assert.deepEqual([theirsForPair.localTs, theirsForPair.remoteTs], [[`${dst}/32`], [`${src}/32`]]);
      const before = await counts();
      await pingThrough(pair, 'a', dst, src);
      // this pair's echoes went through this pair's SA, and through no other
      for (const [spi, n] of await counts()) {
        const grew = n - (before.get(spi) ?? 0);
        if (spi === mine.spiOut) assert.ok(grew >= 3, `${src} <=> ${dst}: ${grew} packets in its SA`);
        else assert.equal(grew, 0, `${src} <=> ${dst} leaked into SA ${spi}`);
      }
    }
  } finally {
    await gw.stop();
    await ss.stop(1000);
  }
});
