// A flood of IKE fragments that never complete (random cookies, IDs and numbers, no last fragment, up to
// 1400 bytes each) against a real gateway on loopback: the reassembly keeps at most 256 partial messages of at
// most 64 KiB, so the heap stays bounded, and an established SA with fragmentation forced keeps negotiating.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../../ts/gateway/index.js';
import { encodeMessage, ExchangeType, ISAKMP_VERSION, PayloadType } from '../../ts/isakmp/index.js';
import { peerConfig, until } from '../gateway/peers.js';

const base = 26000 + (process.pid % 2000) * 4;

function fragment(k: number): Buffer {
  return encodeMessage({
    header: { initiatorCookie: randomBytes(8), responderCookie: randomBytes(8), nextPayload: PayloadType.FRAGMENT, version: ISAKMP_VERSION, exchangeType: ExchangeType.IDENTITY_PROTECTION, flags: 0, messageId: 0, length: 0 },
    payloads: [{ type: PayloadType.FRAGMENT, fragmentId: k & 0xffff, fragmentNumber: 1 + (k % 60), flags: 0, data: randomBytes(200 + (k % 1200)) }],
  });
}

test('a flood of fragments that never complete keeps memory bounded; a real exchange with forced fragmentation still succeeds', { timeout: 60_000 }, async (t) => {
  // the smallest fragmentSize and a 512-byte KE: the KE messages of the real exchange go in fragments
  const over = { auth: { psk: 'fragment flood key' }, ike: ['aes128-sha256-modp4096'], esp: ['aes128gcm16'], fragmentation: 'force', fragmentSize: 576 };
  const r = new Gateway(peerConfig(base, base + 2, { ...over, initiate: false }));
  const i = new Gateway(peerConfig(base + 2, base, { ...over, initiate: true }));
  const childUps: unknown[] = [];
  r.on('child-up', (e) => childUps.push(e));
  let fragmentsOut = 0;
  i.on('datagram', (d) => {
    if (d.direction === 'out' && d.bytes[16] === PayloadType.FRAGMENT) fragmentsOut++;
  });
  await r.start();
  await i.start();
  const flooder = dgram.createSocket('udp4');
  try {
    await until(() => childUps.length === 1, 10_000, 'the first child SA');
    assert.ok(fragmentsOut > 0, 'the initiator sent fragments');
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    for (let k = 0; k < 20_000; k++) {
      flooder.send(fragment(k), base, '127.0.0.1');
      if (k % 200 === 199) await new Promise((res) => setTimeout(res, 2));
    }
    await new Promise((res) => setTimeout(res, 300));
    global.gc?.();
    const grown = process.memoryUsage().heapUsed - heap0;
    t.diagnostic(`heap grew ${(grown / 1048576).toFixed(1)} MiB over 20000 never-completing fragments`);
    // 256 partial messages x 64 KiB is the ceiling of what the reassembly may hold
    assert.ok(grown < 32 * 1024 * 1024, `heap grew ${grown} bytes under ~16 MB of never-completing fragments`);
    assert.equal(r.stats().phase1, 1, 'the genuine ISAKMP SA survived');
    // and a new negotiation, itself fragmented, still gets through
    i.delete('peer');
    await until(() => r.stats().phase1 === 0, 5000, 'the delete');
    await i.initiate('peer');
    await until(() => childUps.length === 2, 10_000, 'the second child SA');
  } finally {
    flooder.close();
    await i.stop();
    await r.stop();
  }
});
