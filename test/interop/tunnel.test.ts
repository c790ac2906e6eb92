// End to end: our gateway with its TUN data plane in one namespace, and in the other strongSwan with its
// user-space ESP (kernel-libipsec) or a second gateway of ours. Main Mode + Quick Mode over UDP 500, ESP in
// UDP 4500, then `ping` between the inner addresses in both directions; then a delete from each side tears
// the SAs down on both.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway, ourPairConfig, pingThrough, startBoth } from './ours.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const PSK = 'tunnel-test-secret';

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'iktun' });
});
after(async () => {
  await pair?.destroy();
});

const ours = (side: 'a' | 'b', initiate: boolean, esp = 'aes128gcm16') => ourPairConfig(pair[side], side, PSK, { initiate, esp: [esp] });

async function ping(from: 'a' | 'b'): Promise<void> {
  const me = pair[from];
  await pingThrough(pair, from, me.peerInner, me.inner);
}

test('our TUN data plane <-> strongSwan kernel-libipsec: ping both ways through the tunnel, deletes from both sides', { skip, timeout: 90_000 }, async () => {
  for (const [who, esp] of [['ours', 'aes128gcm16'], ['strongswan', 'aes128-sha1']] as const) {
    const ss = new StrongSwanPeer(pair, 'b', { ike: 'aes128-sha256-modp2048', esp, psk: PSK, kernel: 'libipsec', retransmitTries: 3, retransmitTimeout: 1 });
    await ss.start();
    const gw = new OurGateway(pair, 'a', ours('a', who === 'ours', esp));
    try {
      await gw.start();
      if (who === 'strongswan') {
        const r = await ss.initiate(undefined, 15);
        assert.ok(r.ok, r.output);
      }
      const up = await gw.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
      assert.equal(up.event, 'child-up', JSON.stringify(up));
      await ping('a');
      await ping('b');
      const child = (await ss.listSas()).flatMap((s) => s.children).find((c) => c.spiIn === up.spiOut);
      assert.ok(child && child.packetsIn >= 3 && child.packetsOut >= 3, `strongSwan's counters: ${JSON.stringify(child)}`);
      if (who === 'ours') {
        // a delete from strongSwan tears down our side
        const t = await ss.terminateIke();
        assert.ok(t.ok, t.output);
        await gw.waitFor((e) => e.event === 'child-down', 10_000);
        await gw.waitFor((e) => e.event === 'phase1-down', 10_000);
        const r = await pair.ping('a', pair.a.peerInner, { src: pair.a.inner, count: 1 });
        assert.notEqual(r.code, 0, 'no tunnel, no ping');
      } else {
        // stopping ours sends deletes: strongSwan drops the SAs
        const mark = ss.logMark();
        await gw.stop();
        assert.ok(await ss.waitForLog(/received DELETE for IKE_SA/, 10_000, mark), ss.logTail(20));
      }
    } finally {
      await gw.stop();
      await ss.stop(1000);
    }
  }
});

test('two of our gateways with the TUN data plane: ping both ways, then a delete tears both down', { skip, timeout: 60_000 }, async () => {
  const a = new OurGateway(pair, 'a', ours('a', true));
  const b = new OurGateway(pair, 'b', ours('b', false));
  try {
    await startBoth(a, b);
    await ping('a');
    await ping('b');
    await a.stop();
    await b.waitFor((e) => e.event === 'child-down', 10_000);
    await b.waitFor((e) => e.event === 'phase1-down', 10_000);
  } finally {
    await a.stop();
    await b.stop();
  }
});
