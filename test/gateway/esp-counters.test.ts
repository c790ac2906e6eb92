// Issue 20.7 on the JavaScript path (no data plane): ESP is counted as received only once it authenticated;
// forged, replayed and unknown-SPI datagrams are counted as drops by reason (Gateway.status().esp).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../../ts/gateway/index.js';
import { events, peerConfig, until } from './peers.js';

const base = 25000 + (process.pid % 1500) * 4;

test('ESP counters: only authenticated datagrams count as received; forged ones are drops by reason', { timeout: 30_000 }, async () => {
  const r = new Gateway(peerConfig(base, base + 2, { esp: ['aes128gcm16'] }));
  const i = new Gateway(peerConfig(base + 2, base, { esp: ['aes128gcm16'], initiate: true }));
  const er = events(r);
  await r.start();
  await i.start();
  const sock = dgram.createSocket('udp4');
  const send = (b: Buffer) => new Promise<void>((res, rej) => sock.send(b, base + 1, '127.0.0.1', (e) => (e ? rej(e) : res())));
  try {
    await until(() => er.childUp.length === 1, 10_000, 'the child SA');
    const spi = Buffer.from(er.childUp[0]!.spiIn, 'hex');
    for (let k = 0; k < 5; k++) i.sendEsp('peer', Buffer.alloc(40, k), 4);
    await until(() => er.esp.length === 5, 5000, 'five genuine packets');
    // forged: the right SPI, sequence numbers ahead, garbage where the ciphertext and ICV are
    for (let k = 0; k < 20; k++) {
      const seq = Buffer.alloc(4);
      seq.writeUInt32BE(1000 + k);
      await send(Buffer.concat([spi, seq, randomBytes(64)]));
    }
    // an SPI nobody has
    for (let k = 0; k < 7; k++) await send(Buffer.concat([Buffer.from('0badf00d', 'hex'), randomBytes(60)]));
    await until(() => r.status().esp.drops.authFailed + r.status().esp.drops.unknownSpi >= 27, 5000, 'the forged datagrams counted');
    const s = r.status().esp;
    assert.equal(s.received, 5, 'received: the genuine packets only');
    assert.equal(s.drops.authFailed, 20);
    assert.equal(s.drops.unknownSpi, 7);
    assert.equal(er.esp.length, 5, 'nothing forged was delivered');
  } finally {
    sock.close();
    await i.stop();
    await r.stop();
  }
});
