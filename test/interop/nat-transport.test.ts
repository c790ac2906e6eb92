// Transport mode through the MASQUERADE router of the NAT test (harness/nat.ts): our gateway A behind the NAT,
// our gateway B on the far side, both with the TUN data plane and L2TP-style host-to-host selectors. NAT-D
// finds the NAT, the child is UDP-encapsulated transport mode, NAT-OA payloads go both ways (RFC 3947 5.2),
// B takes A's private address in the IDs as the router's (what it sees). Then UDP (port 1701, as L2TP) and TCP
// (iperf3) between the hosts' own addresses through the SA: the receiving data plane rebuilds the IP header
// with the addresses it sees and computes the TCP / UDP checksums anew (RFC 3948 3.1.2), so both kernels
// take every segment: their checksum error counters stay at 0.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { NatTopology, interopSkipReason, iptablesAvailable, netnsAvailable, sleep, type NetnsPair } from './harness/index.js';
import { OurGateway, pingThrough, startBoth } from './ours.js';
import { iperf } from '../gateway/dataplane-harness.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? iptablesAvailable() : netns);
const PSK = 'nat-transport-secret';

let topo: NatTopology;
beforeEach(async () => {
  if (!skip) topo = await NatTopology.create({ prefix: 'iknt' });
});
afterEach(async () => {
  await topo?.destroy();
});

function config(side: 'a' | 'b') {
  return {
    listen: { address: topo[side].addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      l2tp: {
        remote: side === 'a' ? topo.b.addr : topo.publicAddr,
        auth: { psk: PSK },
        localId: `@${side}.nat.test`,
        remoteId: `@${side === 'a' ? 'b' : 'a'}.nat.test`,
        ike: ['aes128-sha256-modp2048'],
        esp: ['aes128-sha1'],
        type: 'transport',
        initiate: side === 'a',
        natKeepalive: side === 'a' ? '1s' : 0,
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
      },
    },
  };
}

/** The Udp and Tcp InCsumErrors counters of a namespace (/proc/net/snmp). */
async function checksumErrors(side: 'a' | 'b'): Promise<{ udp: number; tcp: number }> {
  const r = await topo.run(side, 'cat', ['/proc/net/snmp']);
  const field = (proto: string) => {
    const [names, values] = r.stdout.split('\n').filter((l) => l.startsWith(`${proto}:`));
    const i = names!.split(/\s+/).indexOf('InCsumErrors');
    return Number(values!.split(/\s+/)[i]);
  };
  return { udp: field('Udp'), tcp: field('Tcp') };
}

const UDP_SERVER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => { console.log(r.address + ' ' + r.port + ' ' + m.toString()); s.send(Buffer.from('ack ' + m), r.port, r.address); });
s.bind(1701, process.argv[1]);`;
const UDP_CLIENT = `
const s = require('node:dgram').createSocket('udp4');
let got = 0;
s.on('message', (m) => { console.log(m.toString()); if (++got === 3) process.exit(0); });
s.bind(1701, process.argv[1], () => { for (let i = 0; i < 3; i++) s.send(Buffer.from('l2tp ' + i + ' ' + 'x'.repeat(300 * i)), 1701, process.argv[2]); });
setTimeout(() => process.exit(1), 5000);`;

test('transport mode through a NAT: NAT-OA both ways, UDP 1701 and TCP between the hosts with correct checksums', { skip, timeout: 90_000 }, async () => {
  const a = new OurGateway(topo, 'a', config('a'));
  const b = new OurGateway(topo, 'b', config('b'));
  try {
    const [childA, childB] = await startBoth(a, b);
    assert.deepEqual([childA.mode, childA.encap, childB.mode, childB.encap], ['transport', true, 'transport', true]);
    // what each side sent as the original addresses: A its own private one, B A's as it sees it (the router's)
    assert.deepEqual(childB.natOa, { initiator: topo.a.addr, responder: topo.b.addr }, JSON.stringify(childB));
    assert.deepEqual(childA.natOa, { initiator: topo.publicAddr, responder: topo.b.addr }, JSON.stringify(childA));
    assert.deepEqual([childA.localTs, childA.remoteTs], [topo.a.addr, topo.b.addr]);
    assert.deepEqual([childB.localTs, childB.remoteTs], [topo.b.addr, topo.publicAddr], 'B took A\'s private address for the router\'s');

    const before = { a: await checksumErrors('a'), b: await checksumErrors('b') };
    await sleep(500); // the policy routes
    const server = topo.spawn('b', process.execPath, ['-e', UDP_SERVER, topo.b.addr], { env: process.env });
    let serverOut = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (serverOut += d));
    await sleep(500);
    const client = await topo.run('a', process.execPath, ['-e', UDP_CLIENT, topo.a.addr, topo.b.addr], { timeoutMs: 10_000 });
    server.kill('SIGKILL');
    assert.equal(client.code, 0, `the UDP client got no answers: ${client.stdout}${client.stderr}\nserver: ${serverOut}`);
    const lines = serverOut.trim().split('\n');
    assert.equal(lines.length, 3, serverOut);
    assert.ok(lines.every((l) => l.startsWith(`${topo.publicAddr} 1701 l2tp `)), `B sees A's datagrams from the router's address: ${serverOut}`);

    const tcp = await iperf(topo as unknown as NetnsPair, topo.b.addr, topo.a.addr, ['-n', '4M']);
    // iperf3 -n ends when the sender has written its 4 MiB; what the receiver counted by then trails by what
    // the socket buffers of a slow path still hold (1.5-1.7 MB seen on a busy machine): the stream flows, and
    // the checksum counters below say it arrived intact
    assert.ok(tcp.sentBytes >= 4 * 1048576 && tcp.bytes > 1_000_000, `iperf3 sent ${tcp.sentBytes}, received ${tcp.bytes} octets`);
    await pingThrough(topo, 'a', topo.b.addr, topo.a.addr);

    const after = { a: await checksumErrors('a'), b: await checksumErrors('b') };
    assert.deepEqual(after, before, 'no TCP or UDP checksum errors on either host');
    // and it all went through the SA: B's data plane counted the packets in (status over the control socket)
    const { controlRequest } = await import('../../ts/gateway/index.js');
    const sb = (await controlRequest(b.controlPath, { cmd: 'status' })).status;
    assert.ok(sb.sas[0]!.children[0]!.in.packets > 1000, JSON.stringify(sb.sas[0]!.children[0]));
  } finally {
    await a.stop();
    await b.stop();
  }
});
