// Floods against a real gateway on loopback: forged message 1s from many "peers" keep the half-open table
// bounded, garbage on both ports is ignored, and an established SA keeps working throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { Gateway, type GatewayConfig } from '../../ts/gateway/index.js';
import { ikeOffer, parseIkeProposal } from '../../ts/ike/index.js';
import { encodeMessage, ExchangeType, ISAKMP_VERSION } from '../../ts/isakmp/index.js';

import { peerConfig, until } from '../gateway/peers.js';

const base = 24000 + (process.pid % 2000) * 4;

function config(listenPort: number, remotePort: number, initiate: boolean): GatewayConfig {
  return peerConfig(listenPort, remotePort, { auth: { psk: 'flood test key' }, esp: ['aes128gcm16'], initiate });
}


function forgedMessage1(): Buffer {
  const p = parseIkeProposal('aes128-sha256-ecp256');
  assert.ok(p.ok);
  return encodeMessage({
    header: { initiatorCookie: randomBytes(8), responderCookie: Buffer.alloc(8), nextPayload: 0, version: ISAKMP_VERSION, exchangeType: ExchangeType.IDENTITY_PROTECTION, flags: 0, messageId: 0, length: 0 },
    payloads: [{ type: 1, doi: 1, situation: Buffer.from([0, 0, 0, 1]), proposals: [ikeOffer(p.value)] }],
  });
}

test('a message-1 flood keeps the half-open table bounded; garbage on 500 and 4500 is ignored; the real SA keeps working', { timeout: 60_000 }, async () => {
  const r = new Gateway(config(base, base + 2, false), { maxHalfOpen: 200, maxHalfOpenPerPeer: 100 });
  const i = new Gateway(config(base + 2, base, true));
  let espIn = 0;
  r.on('esp-packet', () => espIn++);
  // the forged exchanges that were admitted time out ('the initiator went silent after message 2')
  r.on('error', () => {});
  const childUps: unknown[] = [];
  r.on('child-up', (e) => childUps.push(e));
  await r.start();
  await i.start();
  const flooder = dgram.createSocket('udp4');
  try {
    await until(() => childUps.length === 1, 10_000);
    const heap0 = process.memoryUsage().heapUsed;
    let maxHalfOpen = 0;
    for (let k = 0; k < 5000; k++) {
      flooder.send(forgedMessage1(), base, '127.0.0.1');
      if (k % 3 === 0) flooder.send(randomBytes(1 + (k % 300)), base, '127.0.0.1');
      if (k % 3 === 1) flooder.send(randomBytes(1 + (k % 300)), base + 1, '127.0.0.1');
      if (k % 100 === 99) {
        await new Promise((res) => setTimeout(res, 5));
        maxHalfOpen = Math.max(maxHalfOpen, r.stats().halfOpen);
        i.sendEsp('peer', Buffer.alloc(64, k & 0xff), 4);
      }
    }
    await new Promise((res) => setTimeout(res, 300));
    const s = r.stats();
    maxHalfOpen = Math.max(maxHalfOpen, s.halfOpen);
    assert.ok(maxHalfOpen <= 100, `half-open grew to ${maxHalfOpen} (per-peer limit 100)`);
    assert.equal(s.phase1, 1, 'the genuine ISAKMP SA survived');
    assert.equal(s.children, 1);
    assert.ok(espIn >= 35, `ESP kept flowing during the flood (${espIn}/50; a loopback socket buffer may drop a few under the flood)`);
    const grown = process.memoryUsage().heapUsed - heap0;
    assert.ok(grown < 64 * 1024 * 1024, `heap grew ${grown} bytes`);
    // after the flood: a new negotiation still succeeds
    i.delete('peer');
    await until(() => r.stats().phase1 === 0, 5000);
    await i.initiate('peer');
    await until(() => childUps.length === 2, 10_000);
  } finally {
    flooder.close();
    await i.stop();
    await r.stop();
  }
});
