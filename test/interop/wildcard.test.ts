// A gateway listening on 0.0.0.0 against strongSwan 5.9.8 with no NAT in between: our NAT-D hashes name the
// address the exchange really runs on (IP_PKTINFO for the responder, the route's source for the initiator), so
// neither side detects a NAT, IKE stays on port 500 (no float to 4500) and the child SA is not UDP-encapsulated.
// strongSwan runs with kernel-netlink here: with kernel-libipsec it fakes its NAT-D hashes itself ("faking NAT
// situation to enforce UDP encapsulation"), which would hide what this test looks at.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway } from './ours.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const PSK = 'wildcard-test-secret';

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikwild' });
});
after(async () => {
  await pair?.destroy();
});

function ours(initiate: boolean) {
  return {
    listen: { address: '0.0.0.0', port: 500, nattPort: 4500 },
    connections: {
      s: {
        remote: pair.a.peerAddr,
        auth: { psk: PSK },
        ike: ['aes128-sha256-modp2048'],
        esp: ['aes128gcm16'],
        localTs: `${pair.a.inner}/32`,
        remoteTs: `${pair.a.peerInner}/32`,
        initiate,
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
      },
    },
  };
}

test('our gateway on 0.0.0.0 <-> strongSwan, no NAT: natLocal / natRemote false on both sides, no float, no encapsulation', { skip, timeout: 90_000 }, async () => {
  for (const who of ['ours', 'strongswan'] as const) {
    const ss = new StrongSwanPeer(pair, 'b', { ike: 'aes128-sha256-modp2048', esp: 'aes128gcm16', psk: PSK, kernel: 'netlink', retransmitTries: 3, retransmitTimeout: 1 });
    await ss.start();
    const gw = new OurGateway(pair, 'a', ours(who === 'ours'));
    try {
      await gw.start();
      if (who === 'strongswan') void ss.initiateIke(15);
      const up = await gw.waitFor((e) => e.event === 'phase1-up' || e.event === 'error', 20_000);
      assert.equal(up.event, 'phase1-up', JSON.stringify(up));
      assert.deepEqual([up.natLocal, up.natRemote], [false, false], `${who} initiating: ${JSON.stringify(up)}`);
      assert.equal(up.remote, `${pair.b.addr}:500`, 'no float to 4500');
      assert.equal(up.localId, pair.a.addr, 'our identity is our real address, not 0.0.0.0');
      if (who === 'ours') {
        // QM1 asked for plain tunnel mode and strongSwan agreed (its kernel here cannot install ESP, which
        // only strongSwan's own side of the child notices)
        const child = await gw.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
        assert.equal(child.event, 'child-up', JSON.stringify(child));
        assert.deepEqual([child.mode, child.encap], ['tunnel', false], JSON.stringify(child));
      }
      const sa = (await ss.listSas())[0];
      assert.ok(sa, 'strongSwan has the IKE_SA');
      assert.equal(sa.natAny, false, `strongSwan detects no NAT: ${JSON.stringify(sa.raw)}`);
      assert.equal(sa.remotePort, 500);
      assert.equal(sa.remoteHost, pair.a.addr);
      assert.equal(sa.remoteId, pair.a.addr);
    } finally {
      await gw.stop();
      await ss.stop(1000);
    }
  }
});
