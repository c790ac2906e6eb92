// Plain ESP (IP protocol 50) between two of our gateways with the TUN data plane, no NAT between them and
// `encap` off: the child SAs are negotiated without UDP encapsulation and the data plane sends and receives
// ESP on its raw socket. ping both ways and iperf3 TCP through the tunnel; the capture on the wire holds
// protocol-50 packets with our SPIs and no ESP in UDP; tshark, given the keys of `ike keylog`, decrypts them
// (an independent reading of the format); `ike status` says "plain ESP" per child.
// strongSwan cannot be the peer here: its user-space ESP (kernel-libipsec) speaks ESP in UDP only, and this
// kernel has no XFRM ESP for its kernel-netlink interface.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, interopSkipReason, netnsAvailable, sleep, tsharkAvailable } from './harness/index.js';
import { pingThrough } from './ours.js';
import { plainEspBed } from './plain-esp-bed.js';
import { controlRequest } from '../../ts/gateway/index.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, tsharkAvailable());

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikesp' });
});
after(async () => {
  await pair?.destroy();
});

test('two of our gateways, no NAT: plain ESP (protocol 50) tunnel, ping and iperf3 through it, tshark decrypts it with our keylog', { skip, timeout: 120_000 }, async (t) => {
  await plainEspBed(t, pair, 'tunnel', async ({ b, childA, esp, spi }) => {
    // bad input on the raw socket, sent from A's namespace: a replay of a genuine packet, a tampered copy, an
    // unknown SPI, a runt. B's data plane reads all of them, delivers none, and the tunnel still carries traffic.
    const genuine = esp.find((p) => p.src === pair.a.addr && spi(p) === childA.spiOut)!.payload;
    const tampered = Buffer.from(genuine);
    tampered[tampered.length - 1]! ^= 1;
    const unknown = Buffer.from(genuine);
    unknown.writeUInt32BE(0xdeadbeef, 0);
    const inB = async () => {
      const st = (await controlRequest(b.controlPath, { cmd: 'status' })).status;
      return { delivered: st.sas[0]!.children[0]!.in.packets, esp: st.dataplane!.espReceived, drops: st.dataplane!.drops };
    };
    const before = await inB();
    const inject = 'import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)\nfor h in sys.argv[2:]: s.sendto(bytes.fromhex(h), (sys.argv[1], 0))';
    const sent = await pair.run('a', 'python3', ['-c', inject, pair.b.addr, ...[genuine, tampered, unknown, Buffer.from('0102', 'hex')].map((x) => x.toString('hex'))]);
    assert.equal(sent.code, 0, sent.stderr);
    await sleep(300);
    const after = await inB();
    // espReceived counts only what authenticated; the three ESP packets are drops, each by its reason (the
    // tampered copy carries the genuine packet's sequence number: the replay check, which comes first, drops it)
    assert.equal(after.esp, before.esp, 'none of them counted as received');
    const d = (k: keyof typeof before.drops) => after.drops[k] - before.drops[k];
    const why = `drops before ${JSON.stringify(before.drops)} after ${JSON.stringify(after.drops)}`;
    assert.equal(d('unknownSpi'), 1, why);
    assert.equal(d('replay') + d('authFailed'), 2, why);
    assert.equal(d('malformed'), 1, `the runt: ${why}`);
    assert.equal(after.delivered, before.delivered, 'none of them delivered');
    await pingThrough(pair, 'a', pair.a.peerInner, pair.a.inner);
  });
});
