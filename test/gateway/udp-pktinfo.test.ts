// A UDP socket bound to the wildcard address knows which of its addresses each datagram came to (IP_PKTINFO /
// IPV6_PKTINFO) and can answer from that address; a gateway listening on 0.0.0.0 then hashes its real address
// into NAT-D and reports no NAT where there is none. Real sockets on loopback (all of 127.0.0.0/8 is local).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { UdpSocket, type Endpoint } from '../../ts/gateway/udp.js';
import { routeSource } from '../../ts/gateway/sockets.js';
import { Gateway, parseConfig } from '../../ts/gateway/index.js';
import { nativeAddon } from '../../ts/native.js';
import { events, peerJson, until } from './peers.js';

const skip = nativeAddon() !== null && process.platform === 'linux' ? false : 'native addon not built (or not Linux)';
const base = 34000 + (process.pid % 2000) * 4;

test('udp on 0.0.0.0: each datagram says which local address it came to; a send from a given source leaves from it', { skip, timeout: 10_000 }, async () => {
  const got: { from: Endpoint; local: string | undefined }[] = [];
  const rx = UdpSocket.open({ address: '0.0.0.0', port: 0, onMessage: (_m, from, local) => got.push({ from, local }) });
  const peer = dgram.createSocket('udp4');
  const back: { address: string; port: number }[] = [];
  peer.on('message', (_m, r) => back.push({ address: r.address, port: r.port }));
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
  try {
    for (const to of ['127.0.0.2', '127.0.0.3', '127.0.0.1']) peer.send(Buffer.from(to), rx.port, to);
    await until(() => got.length === 3, 5000, 'three datagrams');
    assert.deepEqual(got.map((g) => g.local), ['127.0.0.2', '127.0.0.3', '127.0.0.1']);
    // answers from the address each came to, and one left to the kernel
    for (const g of got) rx.send(Buffer.from('re'), g.from.address, g.from.port, undefined, g.local);
    rx.send(Buffer.from('re'), '127.0.0.1', peer.address().port);
    await until(() => back.length === 4, 5000, 'four answers');
    assert.deepEqual(back.map((b) => b.address), ['127.0.0.2', '127.0.0.3', '127.0.0.1', '127.0.0.1']);
    assert.ok(back.every((b) => b.port === rx.port));
    assert.throws(() => rx.send(Buffer.from('x'), '127.0.0.1', 9, undefined, 'not-an-address'), RangeError);
    assert.throws(() => rx.send(Buffer.from('x'), '127.0.0.1', 9, undefined, '::1'), RangeError);
  } finally {
    rx.close();
    peer.close();
  }
});

test('udp on a bound address also reports it; on :: an IPv6 datagram reports its IPv6 destination', { skip, timeout: 10_000 }, async () => {
  const got: (string | undefined)[] = [];
  const rx = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage: (_m, _f, local) => got.push(local) });
  const tx = UdpSocket.open({ address: '127.0.0.1', port: 0, onMessage() {} });
  let rx6: UdpSocket | null = null;
  try {
    tx.send(Buffer.from('x'), '127.0.0.1', rx.port);
    await until(() => got.length === 1, 5000);
    assert.equal(got[0], '127.0.0.1');
    try {
      rx6 = UdpSocket.open({ address: '::', port: 0, onMessage: (_m, _f, local) => got.push(local) });
    } catch {
      return; // no IPv6 here: the IPv4 half is what the gateway needs
    }
    const tx6 = UdpSocket.open({ address: '::1', port: 0, onMessage() {} });
    tx6.send(Buffer.from('x'), '::1', rx6.port);
    await until(() => got.length === 2, 5000);
    tx6.close();
    assert.equal(got[1], '::1');
  } finally {
    rx.close();
    tx.close();
    rx6?.close();
  }
});

test('routeSource: the source address of the route to a peer, without sending', async () => {
  assert.equal(await routeSource({ address: '127.0.0.5', port: 500 }), '127.0.0.1');
  assert.equal(await routeSource({ address: '127.0.0.1', port: 500 }), '127.0.0.1');
});

test('gateways listening on 0.0.0.0 (no NAT between them): NAT-D over the real addresses, no NAT reported, no float to the NAT-T port', { skip, timeout: 20_000 }, async () => {
  // both listen on the wildcard; the initiator talks to the responder's 127.0.0.2
  const config = (port: number, peerPort: number, over: Record<string, unknown>) => {
    const json = peerJson(port, peerPort, over);
    delete (json.connections as Record<string, Record<string, unknown>>).peer!.localId; // by default: the address the SA runs on
    (json.connections as Record<string, Record<string, unknown>>).peer!.remoteId = '%any';
    json.listen = { address: '0.0.0.0', port, nattPort: port + 1 };
    const c = parseConfig(json, { baseDir: '.', env: {} });
    assert.ok(c.ok, c.ok ? '' : c.errors.join('\n'));
    return c.config;
  };
  const r = new Gateway(config(base, base + 2, { remote: '%any', initiate: false, localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24' }));
  const i = new Gateway(config(base + 2, base, { remote: '127.0.0.2', initiate: true, localTs: '10.1.0.0/24', remoteTs: '10.2.0.0/24' }));
  const ei = events(i);
  const er = events(r);
  const wire: { direction: string; port: number }[] = [];
  i.on('datagram', (d) => wire.push({ direction: d.direction, port: d.remote.port }));
  await r.start();
  await i.start();
  try {
    await until(() => ei.childUp.length === 1 && er.childUp.length === 1, 10_000, 'a child on both sides');
    assert.deepEqual([ei.errors, er.errors], [[], []]);
    assert.deepEqual(ei.up[0]!.natDetected, { local: false, remote: false });
    assert.deepEqual(er.up[0]!.natDetected, { local: false, remote: false });
    assert.equal(er.up[0]!.local.address, '127.0.0.2', 'the responder runs on the address the peer wrote to');
    assert.equal(ei.up[0]!.local.address, '127.0.0.1', 'the initiator on its route\'s source');
    assert.equal(er.up[0]!.remoteId, '127.0.0.1');
    assert.equal(ei.up[0]!.remoteId, '127.0.0.2', 'the responder\'s identity is the address it answered from');
    assert.equal(ei.up[0]!.remote.port, base, 'IKE stayed on port 500 (no float)');
    assert.ok(wire.every((w) => w.port === base), `every datagram to the IKE port: ${JSON.stringify(wire)}`);
    assert.equal(ei.childUp[0]!.encapsulation, false);
    assert.equal(i.status().sas[0]!.nat.natt, false);
  } finally {
    await i.stop();
    await r.stop();
  }
});
