// ESP in UDP (RFC 3948) over real loopback sockets: what a port-4500 socket hands over is the ESP packet
// itself, and the SA opens it unchanged. Also the datagram classification (non-ESP marker, keepalive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { classifyNatTDatagram, espSpiOf, NON_ESP_MARKER } from '../../ts/esp/index.js';
import { IMPLS, saPair, skipFor } from './helpers.js';

test('classifyNatTDatagram: keepalive, non-ESP marker (IKE), ESP, too short', () => {
  assert.equal(classifyNatTDatagram(Buffer.from([0xff])), 'keepalive');
  assert.equal(classifyNatTDatagram(Buffer.concat([NON_ESP_MARKER, Buffer.alloc(28)])), 'ike');
  assert.equal(classifyNatTDatagram(Buffer.from('c0ffee0100000001', 'hex')), 'esp');
  assert.equal(classifyNatTDatagram(Buffer.from('c0ffee01', 'hex')), 'invalid');
  assert.equal(espSpiOf(Buffer.from('c0ffee0100000001', 'hex')), 0xc0ffee01);
  assert.equal(espSpiOf(Buffer.alloc(12)), undefined);
});

for (const impl of IMPLS) {
  test(`[${impl}] ESP sealed into a UDP socket opens from the received datagram (loopback)`, { skip: skipFor(impl) }, async () => {
    const { out, in: inb } = saPair('aes128gcm16', { outImpl: impl, inImpl: impl, udpEncapsulation: true });
    assert.equal(out.udpEncapsulation, true);
    // An ephemeral port stands in for 4500 (other tests on this machine may hold 4500).
    const rx = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    try {
      rx.bind(0, '127.0.0.1');
      await once(rx, 'listening');
      const port = rx.address().port;
      const inner = Buffer.from('45000020000000004011000000000000000000000000000000000000', 'hex');
      const got: Buffer[] = [];
      const done = new Promise<void>((resolve) =>
        rx.on('message', (m) => {
          got.push(m);
          if (got.length === 3) resolve();
        }),
      );
      tx.send(out.seal(inner, 4), port, '127.0.0.1');
      tx.send(Buffer.concat([NON_ESP_MARKER, Buffer.from('ike message')]), port, '127.0.0.1');
      tx.send(Buffer.from([0xff]), port, '127.0.0.1');
      await done;
      const kinds = got.map(classifyNatTDatagram).sort();
      assert.deepEqual(kinds, ['esp', 'ike', 'keepalive']);
      const esp = got.find((m) => classifyNatTDatagram(m) === 'esp')!;
      const r = inb.open(esp);
      assert.ok(r.ok);
      assert.deepEqual(r.payload, inner);
      assert.equal(r.nextHeader, 4);
    } finally {
      rx.close();
      tx.close();
    }
  });

  test(`[${impl}] a captured UDP datagram (8-octet UDP header + ESP) opens from offset 8 in a batch`, { skip: skipFor(impl) }, () => {
    const { out, in: inb } = saPair('aes256-sha256', { outImpl: impl, inImpl: impl });
    const esp = out.seal(Buffer.from('payload'), 17);
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(4500, 0);
    udp.writeUInt16BE(4500, 2);
    udp.writeUInt16BE(8 + esp.length, 4);
    const datagram = Buffer.concat([udp, esp]);
    const output = Buffer.alloc(inb.openedCapacity(esp.length));
    const lens = new Uint32Array(1);
    const nh = new Uint8Array(1);
    const st = new Uint8Array(1);
    assert.equal(inb.openBatch(datagram, new Uint32Array([8]), new Uint32Array([esp.length]), output, new Uint32Array([0]), lens, nh, st), 1);
    assert.equal(output.subarray(0, lens[0]).toString(), 'payload');
    assert.equal(nh[0], 17);
  });
}
