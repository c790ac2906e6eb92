// The data plane's SA table at a size where a scan per packet would show: thousands of SAs, inbound found by
// SPI, outbound by selectors (first added wins, cached per flow, the cache emptied when the SAs change).
// No root needed: a FIFO stands in for the TUN device (the data plane reads packets from it as from TUN).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DataPlane } from '../../ts/gateway/dataplane.js';
import { createEspSa, type EspSa } from '../../ts/esp/index.js';
import { nativeAddon } from '../../ts/native.js';

const haveNative = nativeAddon() !== null;
const N = 3000;

function ipv4(src: string, dst: string): Buffer {
  const p = Buffer.alloc(28);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 17;
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  return p;
}

const keymat = (i: number) => Buffer.alloc(20, i & 0xff);
const sa = (spi: number, direction: 'inbound' | 'outbound', i: number): EspSa =>
  createEspSa({ spi, algorithm: 'aes128gcm16', direction, keymat: keymat(i), implementation: 'native' });
/** The i-th remote host: 10.9.0.0/16 then on. */
const host = (i: number) => `10.${9 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;

test(`data plane SA table: ${N} SAs each way, inbound by SPI, outbound by selectors with a per-flow cache that follows removals`, { skip: haveNative ? false : 'native addon not built', timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-table-'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  const fifo = openSync(path.join(dir, 'fifo'), 'r+');
  const dp = new DataPlane({ tunFd: fifo, address: '127.0.0.1', port: 0 });
  const peer = dgram.createSocket('udp4');
  const spis: number[] = [];
  peer.on('message', (m) => spis.push(m.readUInt32BE(0)));
  try {
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', r));
    const to = { address: '127.0.0.1', port: peer.address().port };
    for (let i = 0; i < N; i++) {
      dp.addOutbound({ spi: 0x10000 + i, sa: sa(0x10000 + i, 'outbound', i), localTs: ['10.1.0.0/16'], remoteTs: [`${host(i)}/32`], peer: to });
      dp.addInbound({ spi: 0x20000 + i, sa: sa(0x20000 + i, 'inbound', i), localTs: ['10.1.0.0/16'], remoteTs: [`${host(i)}/32`] });
    }
    // two SAs for one subnet: the first added carries its traffic, as long as it is there
    dp.addOutbound({ spi: 0xa0001, sa: sa(0xa0001, 'outbound', 1), localTs: ['10.1.0.0/16'], remoteTs: ['10.200.0.0/16'], peer: to });
    dp.addOutbound({ spi: 0xa0002, sa: sa(0xa0002, 'outbound', 2), localTs: ['10.1.0.0/16'], remoteTs: ['10.200.0.0/16'], peer: to });
    assert.throws(() => dp.addInbound({ spi: 0x20000 + 7, sa: sa(0x20000 + 7, 'inbound', 7), localTs: ['10.1.0.0/16'], remoteTs: ['10.9.0.7/32'] }), RangeError);

    // A FIFO is a byte stream: one packet at a time, or two writes could be read as one packet.
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 600 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(done(), 'the data plane did not get to it within 3 s');
    };
    /** Writes a packet from 10.1.0.1 to dst into the "TUN" device: the SPI it left with, or null if dropped. */
    const send = async (dst: string): Promise<number | null> => {
      const before = dp.stats();
      writeSync(fifo, ipv4('10.1.0.1', dst));
      await until(() => dp.stats().tunPackets === before.tunPackets + 1);
      if (dp.stats().espSent === before.espSent) return null;
      await until(() => spis.length > 0);
      return spis.shift()!;
    };
    // the last SA added, a middle one, the first; each flow twice (the second from the cache)
    for (const i of [N - 1, N - 1, N >> 1, 0, N >> 1]) assert.equal(await send(host(i)), 0x10000 + i);
    assert.equal(await send('10.200.1.1'), 0xa0001);
    assert.equal(await send('10.200.1.1'), 0xa0001);
    assert.equal(dp.remove(0xa0001), 1);
    assert.equal(await send('10.200.1.1'), 0xa0002, 'the flow was cached on the removed SA');
    assert.equal(await send(host(5)), 0x10005);
    assert.equal(dp.remove(0x10000 + 5, 'outbound'), 1);
    assert.equal(await send(host(5)), null, 'the flow was cached on the removed SA');
    assert.equal(await send(host(6)), 0x10006);
    assert.equal(dp.stats().drops.noOutboundSa, 1);

    // inbound: ESP for the SA in the middle of the table is opened by that SA and no other
    const i = N >> 1;
    const sealer = sa(0x20000 + i, 'outbound', i);
    const esp = sealer.seal(ipv4(host(i), '10.1.0.1'), 4);
    await new Promise<void>((r, j) => peer.send(esp, dp.port, '127.0.0.1', (e) => (e ? j(e) : r())));
    let entry;
    for (let k = 0; k < 300 && !entry?.packets; k++) {
      await new Promise((r) => setTimeout(r, 10));
      entry = dp.stats().sas.find((s) => s.spi === 0x20000 + i && s.direction === 'inbound');
    }
    assert.equal(entry?.packets, 1);
    assert.equal(dp.stats().sas.filter((s) => s.direction === 'inbound').reduce((a, s) => a + s.packets, 0), 1);
    // removing one direction leaves the other; SPIs not installed count as unknown
    assert.equal(dp.remove(0x20000 + i, 'inbound'), 1);
    await new Promise<void>((r, j) => peer.send(sealer.seal(ipv4(host(i), '10.1.0.1'), 4), dp.port, '127.0.0.1', (e) => (e ? j(e) : r())));
    for (let k = 0; k < 300 && dp.stats().drops.unknownSpi === 0; k++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dp.stats().drops.unknownSpi, 1);
    assert.equal(dp.stats().sas.length, 2 * N + 2 - 3);
  } finally {
    peer.close();
    dp.close();
    closeSync(fifo);
    rmSync(dir, { recursive: true, force: true });
  }
});
