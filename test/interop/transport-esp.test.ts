// Transport mode between two of our gateways with the TUN data plane, no NAT, plain ESP (IP protocol 50): the
// hosts' own traffic to each other (policy routing steers it into the TUN device, IKE and ESP stay outside)
// loses its IP header into ESP and gets it back on the far side. ping both ways and iperf3 TCP between the
// hosts' own addresses; the capture holds protocol-50 packets with our SPIs and no ICMP or TCP in clear;
// tshark decrypts them with the keys of `ike keylog`; `ike status` shows the child in transport mode.
// strongSwan cannot be the peer here: its user-space ESP (kernel-libipsec) speaks ESP in UDP only, and this
// kernel has no XFRM ESP for its kernel-netlink interface.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, interopSkipReason, netnsAvailable, tsharkAvailable } from './harness/index.js';
import { plainEspBed } from './plain-esp-bed.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, tsharkAvailable());

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'iktr' });
});
after(async () => {
  await pair?.destroy();
});

test('two of our gateways, no NAT: transport mode in plain ESP between the hosts, ping and iperf3 through it, tshark decrypts it', { skip, timeout: 120_000 }, async (t) => {
  await plainEspBed(t, pair, 'transport', async ({ a }) => {
    // a gateway that stops takes its policy-routing rules with it
    await a.stop();
    const rules = await pair.run('a', 'ip', ['-4', 'rule', 'show']);
    assert.doesNotMatch(rules.stdout, /^450[01]:/m, rules.stdout);
  });
});
