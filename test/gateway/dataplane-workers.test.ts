// The data plane on two workers while SAs move between them: numbered UDP datagrams both ways through the
// tunnel across three rekeys, each to SPIs of the other worker (owner = SPI % 2), and none may be lost or
// arrive twice. The rekey is done as a gateway does it: both new inbound SAs first, then each side's new
// outbound (installed on its owner before the other worker's route to it) and the old outbound out, the
// old inbound last, once what was sealed with it has arrived.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsPair, interopSkipReason, netnsAvailable, pingAvailable } from '../interop/harness/index.js';
import { nativeAddon } from '../../ts/native.js';
import { createEspSa } from '../../ts/esp/index.js';
import { DataPlane, openTun } from '../../ts/gateway/dataplane.js';
import { startTunnel, type TunnelPeer } from './dataplane-harness.js';

const noNative = nativeAddon() !== null ? false : 'native addon not built';

/** FIFOs stand in for the TUN queues (no data: the workers only wait); no root needed. */
function fifos(n: number): { fds: number[]; close(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'dpw-'));
  const fds = Array.from({ length: n }, (_, i) => {
    execFileSync('mkfifo', [path.join(dir, `q${i}`)]);
    return openSync(path.join(dir, `q${i}`), 'r+');
  });
  return { fds, close: () => (fds.forEach((fd) => closeSync(fd)), rmSync(dir, { recursive: true, force: true })) };
}

test('data plane workers without root: bad worker counts are errors; SAs go to SPI % workers, an outbound one to its pair\'s worker; remove and setPeer find them; IKE and runts at worker 0', { skip: noNative }, async () => {
  assert.throws(() => openTun('dq0', { queues: 0 }), RangeError);
  assert.throws(() => openTun('dq0', { queues: 65 }), RangeError);
  assert.throws(() => new DataPlane({ tunFd: [], address: '127.0.0.1', port: 0 }), /1 to 64 fds/);
  assert.throws(() => new DataPlane({ tunFd: [0, 1.5], address: '127.0.0.1', port: 0 }), /tunFds\[1\] must be a file descriptor/);
  const q = fifos(2);
  const got: string[] = [];
  const dp = new DataPlane({ tunFd: q.fds, address: '127.0.0.1', port: 0, onIke: (m) => got.push(m.toString()) });
  const sock = dgram.createSocket('udp4');
  try {
    const sa = (spi: number, direction: 'outbound' | 'inbound') => createEspSa({ spi, algorithm: 'aes128gcm16', direction, keymat: Buffer.alloc(20, 1), implementation: 'native' });
    const ts = { localTs: ['10.0.0.0/8'], remoteTs: ['10.1.0.0/16'] };
    const peer = { address: '127.0.0.1', port: 4500 };
    dp.addInbound({ spi: 0x100, sa: sa(0x100, 'inbound'), ...ts }); // worker 0
    dp.addOutbound({ spi: 0x201, sa: sa(0x201, 'outbound'), ...ts, peer, pairSpi: 0x100 }); // with its pair: worker 0
    dp.addInbound({ spi: 0x301, sa: sa(0x301, 'inbound'), ...ts }); // worker 1
    dp.addOutbound({ spi: 0x401, sa: sa(0x401, 'outbound'), ...ts, peer }); // no pair given: its own SPI, worker 1
    assert.deepEqual(dp.stats().workers.map((w) => w.sas), [2, 2]);
    assert.equal(dp.stats().sas.length, 4, 'the other workers\' routes to an outbound SA are not SAs');
    assert.throws(() => dp.addOutbound({ spi: 0x201, sa: sa(0x201, 'outbound'), ...ts, peer, pairSpi: 0x301 }), /already installed/);
    assert.throws(() => dp.addOutbound({ spi: 0x205, sa: sa(0x205, 'outbound'), ...ts, peer, pairSpi: -1 }), RangeError);
    assert.equal(dp.setPeer(0x201, { address: '127.0.0.2', port: 4501 }), true, 'found at its pair\'s worker');
    assert.equal(dp.remove(0x201, 'outbound'), 1);
    assert.equal(dp.remove(0x201, 'outbound'), 0);
    assert.equal(dp.setPeer(0x201, { address: '127.0.0.2', port: 4501 }), false);
    assert.deepEqual(dp.stats().workers.map((w) => w.sas), [1, 2]);
    // The steered port: IKE, a keepalive and a runt at worker 0, an unknown SPI at its worker (1).
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const send = (b: Buffer) => new Promise<void>((r, j) => sock.send(b, dp.port, '127.0.0.1', (e) => (e ? j(e) : r())));
    await send(Buffer.concat([Buffer.alloc(4), Buffer.from('isakmp')]));
    await send(Buffer.from([0xff]));
    await send(Buffer.from([1, 2, 3]));
    await send(Buffer.from('0badf00d00000001' + '00'.repeat(40), 'hex'));
    for (let i = 0; i < 100 && (got.length === 0 || dp.stats().drops.unknownSpi === 0); i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ['isakmp']);
    const s = dp.stats();
    assert.deepEqual([s.ikeReceived, s.keepalives, s.drops.malformed, s.drops.unknownSpi, s.handedOver], [1, 1, 1, 1, 0]);
    // A second data plane on the port is refused as with one worker (SO_REUSEPORT must not let it share the port),
    // and a bad fd among several leaves nothing behind.
    const q2 = fifos(2);
    try {
      assert.throws(() => new DataPlane({ tunFd: q2.fds, address: '127.0.0.1', port: dp.port }), /already owns it/);
      assert.throws(() => new DataPlane({ tunFd: [q2.fds[0]!, 987654], address: '127.0.0.1', port: 0 }), /tunFd is not an open file descriptor/);
    } finally {
      q2.close();
    }
  } finally {
    sock.close();
    dp.close();
    q.close();
  }
});

test('a multi-queue TUN device where a single-queue one of that name exists: refused, and the error says so', { skip: interopSkipReason(netnsAvailable(), { ok: true, why: '' }, noNative ? { ok: false, why: noNative } : { ok: true, why: '' }) }, async () => {
  const pair = await NetnsPair.create({ prefix: 'dq' });
  try {
    const mod = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ts/gateway/dataplane.js');
    const code = `const { openTun } = await import(${JSON.stringify(mod)}); const one = openTun('dq0'); try { openTun('dq0', { queues: 2 }); console.log('opened'); } catch (e) { console.log(e.code, e.message); } const two = openTun('dq1', { queues: 2 }); console.log(two.fds.length, two.name);`;
    const r = await pair.run('a', process.execPath, ['--input-type=module', '-e', code], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.stderr);
    const [refused, made] = r.stdout.trim().split('\n');
    assert.match(refused!, /^ETUN cannot create multi-queue TUN device 'dq0': .*IFF_MULTI_QUEUE.*use one worker/);
    assert.equal(made, '2 dq1');
  } finally {
    await pair.destroy();
  }
});

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
