// The data plane on two workers while SAs move between them: numbered UDP datagrams both ways through the
// tunnel across three rekeys, each to SPIs of the other worker (owner = SPI % 2), and none may be lost or
// arrive twice. The rekey is done as a gateway does it: both new inbound SAs first, then each side's new
// outbound (installed on its owner before the other worker's route to it) and the old outbound out, the
// old inbound last, once what was sealed with it has arrived.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, interopSkipReason, netnsAvailable, pingAvailable } from '../interop/harness/index.js';
import { nativeAddon } from '../../ts/native.js';
import { startTunnel, type TunnelPeer } from './dataplane-harness.js';

const skip = interopSkipReason(netnsAvailable(), pingAvailable(), nativeAddon() !== null ? { ok: true, why: '' } : { ok: false, why: 'native addon not built' });

const COUNT = 25_000; // each way
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Generation g's SPIs: a -> b 0xa0b0000(g+1), b -> a 0xb0a0000(g+1); generation 0 is startTunnel's. Even g: odd
// SPIs, worker 1; odd g: worker 0.
const spiAB = (g: number) => 0xa0b00000 + g + 1;
const spiBA = (g: number) => 0xb0a00000 + g + 1;

async function rekey(a: TunnelPeer, b: TunnelPeer, g: number): Promise<void> {
  await Promise.all([
    a.ask({ cmd: 'add', sa: { spi: spiBA(g), direction: 'inbound' } }, 'added'),
    b.ask({ cmd: 'add', sa: { spi: spiAB(g), direction: 'inbound' } }, 'added'),
  ]);
  await Promise.all([
    a.ask({ cmd: 'add', sa: { spi: spiAB(g), direction: 'outbound', pairSpi: spiBA(g) } }, 'added'),
    b.ask({ cmd: 'add', sa: { spi: spiBA(g), direction: 'outbound', pairSpi: spiAB(g) } }, 'added'),
  ]);
  await Promise.all([a.ask({ cmd: 'remove', spi: spiAB(g - 1), direction: 'outbound' }, 'removed'), b.ask({ cmd: 'remove', spi: spiBA(g - 1), direction: 'outbound' }, 'removed')]);
  await sleep(200); // ESP sealed with the old SAs is on its way
  await Promise.all([a.ask({ cmd: 'remove', spi: spiBA(g - 1), direction: 'inbound' }, 'removed'), b.ask({ cmd: 'remove', spi: spiAB(g - 1), direction: 'inbound' }, 'removed')]);
}

test(`data plane, 2 workers: ${COUNT} datagrams each way across 3 rekeys that move the SAs between workers, none lost or duplicated`, { skip, timeout: 90_000 }, async (t0) => {
  const pair = await NetnsPair.create({ prefix: 'dw' });
  let peers: { a: TunnelPeer; b: TunnelPeer } | undefined;
  try {
    const t = await startTunnel(pair, 'aes128gcm16', { workers: 2 });
    peers = t;
    const { a, b } = t;
    await Promise.all([a.ask({ cmd: 'sink', port: 5001, count: COUNT }, 'sinking'), b.ask({ cmd: 'sink', port: 5001, count: COUNT }, 'sinking')]);
    const floods = Promise.all([
      a.ask({ cmd: 'flood', port: 5001, count: COUNT, perMs: 8 }, 'flooded', 60_000),
      b.ask({ cmd: 'flood', port: 5001, count: COUNT, perMs: 8 }, 'flooded', 60_000),
    ]);
    const owners: number[][] = [];
    for (let g = 1; g <= 3; g++) {
      await sleep(400);
      await rekey(a, b, g);
      owners.push((await a.stats()).workers.map((w) => w.sas));
    }
    await floods;
    await sleep(500); // the last datagrams reach the sinks
    const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    const [ra, rb] = await Promise.all([a.ask<{ unique: number; duplicates: number }>({ cmd: 'sunk' }, 'sunk'), b.ask<{ unique: number; duplicates: number }>({ cmd: 'sunk' }, 'sunk')]);
    const why = JSON.stringify({ a: sa, b: sb });
    t0.diagnostic(`handed over between workers: a ${sa.handedOver}, b ${sb.handedOver}; per worker espSent a ${sa.workers.map((w) => w.espSent)}, b ${sb.workers.map((w) => w.espSent)}`);
    assert.deepEqual({ unique: rb.unique, duplicates: rb.duplicates }, { unique: COUNT, duplicates: 0 }, `a -> b: ${why}`);
    assert.deepEqual({ unique: ra.unique, duplicates: ra.duplicates }, { unique: COUNT, duplicates: 0 }, `b -> a: ${why}`);
    // Each generation's pair (both directions of the child) sits on the worker its inbound SPI names.
    assert.deepEqual(owners, [[2, 0], [0, 2], [2, 0]]);
    // Both workers sealed and opened over the run, and neither dropped a handed-over packet.
    for (const s of [sa, sb]) {
      assert.ok(s.workers.every((w) => w.espSent > 0 && w.espReceived > 0), why);
      assert.equal(s.drops.handoverDropped, 0, why);
    }
  } finally {
    await Promise.all([peers?.a.close(), peers?.b.close()]);
    await pair.destroy();
  }
});
