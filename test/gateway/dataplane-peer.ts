// One tunnel end, run by the data plane test and bench/tunnel.ts inside a network namespace
// (pair.spawnNode(side, [this file], { ipc: true })): a TUN device 'dp0' routing the peer's inner address,
// a DataPlane on <veth address>:4500 with one outbound and one inbound SA from fixed keys, and a few
// commands over IPC so the test can look inside and throw bad packets at the other side.
//
// The inner addresses stay where the harness put them (on lo); the TUN device only carries the route
// `<peer inner>/32 dev dp0 src <inner>`, so `ping -I <inner> <peer inner>` goes through the tunnel.
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { createEspSa, espKeyLengths, type EspAlgorithm, type EspEngineChoice } from '../../ts/esp/index.js';
import { DataPlane, configureTun, openTun } from '../../ts/gateway/dataplane.js';

export interface PeerConfig {
  algorithm: EspAlgorithm;
  /** KEYMAT of our outbound SA (= the peer's inbound) and of our inbound SA, hex. */
  keymatOut: string;
  keymatIn: string;
  spiOut: number;
  spiIn: number;
  addr: string;
  inner: string;
  peerAddr: string;
  peerInner: string;
  /** Optional IPv6 inner addresses (put on lo here), carried by the same SAs: their selectors get both families. */
  inner6?: string;
  peerInner6?: string;
  /** TUN offloads (TSO cut by the data plane); default true. */
  offload?: boolean;
  /** Plain ESP (IP protocol 50, the raw socket) instead of ESP in UDP 4500 for the outbound SA. */
  plain?: boolean;
  /** Data plane workers (a multi-queue TUN device with as many queues); default 1. */
  workers?: number;
  /** The SAs' crypto engine (default 'auto'). */
  engine?: EspEngineChoice;
  /**
   * Child SA pairs (default 1). Child k > 0 joins inner addresses one further (10.99.1.1 + k and 10.99.2.1 + k,
   * put on lo here: innerOf) with SPIs spiOut + k / spiIn + k and keys from the SPI (keymatOf), so that
   * consecutive children belong to different workers.
   */
  children?: number;
}

/** Child k's inner address: the last octet of the IPv4 address plus k. */
export function innerOf(address: string, k: number): string {
  const o = address.split('.').map(Number);
  return [o[0], o[1], o[2], o[3]! + k].join('.');
}

/** Another SA pair for rekey tests: keys made from the SPI, so both sides agree without being told. */
export interface ExtraSa {
  spi: number;
  direction: 'outbound' | 'inbound';
  /** outbound: the SPI of the inbound SA of the same child (its worker owns this one too). */
  pairSpi?: number;
}

export type PeerCommand =
  | { cmd: 'start'; config: PeerConfig }
  | { cmd: 'stats' }
  | { cmd: 'inject' }
  | { cmd: 'ikeProbe' }
  | { cmd: 'add'; sa: ExtraSa }
  | { cmd: 'remove'; spi: number; direction: 'outbound' | 'inbound' }
  | { cmd: 'sink'; port: number; count: number }
  | { cmd: 'flood'; port: number; count: number; perMs: number }
  | { cmd: 'sunk' }
  | { cmd: 'close' };

/** Keys of the extra SAs: the same on both sides for one SPI. */
export function keymatOf(spi: number, length: number): Buffer {
  const k = Buffer.alloc(length);
  for (let i = 0; i < length; i++) k[i] = (spi >>> (8 * (i % 4))) ^ (i * 37);
  return k;
}

/** A minimal IPv4 ICMP echo request (valid checksums), so a genuine injected packet is accepted by the kernel. */
export function icmpEcho(src: string, dst: string, id = 0x4242): Buffer {
  const p = Buffer.alloc(28);
  p[0] = 0x45;
  p.writeUInt16BE(28, 2);
  p[8] = 64; // TTL
  p[9] = 1; // ICMP
  Buffer.from(src.split('.').map(Number)).copy(p, 12);
  Buffer.from(dst.split('.').map(Number)).copy(p, 16);
  p.writeUInt16BE(checksum(p.subarray(0, 20)), 10);
  p[20] = 8; // echo request
  p.writeUInt16BE(id, 24);
  p.writeUInt16BE(1, 26);
  p.writeUInt16BE(checksum(p.subarray(20)), 22);
  return p;
}

function checksum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(cmd, args, (e, _o, err) => (e ? reject(new Error(`${cmd} ${args.join(' ')}: ${err}`)) : resolve())));
}

/** Children 1 .. children-1 (PeerConfig.children): their inner addresses, routes and SA pairs. */
async function addChildren(dp: DataPlane, cfg: PeerConfig, dev: string): Promise<void> {
  const len = espKeyLengths(cfg.algorithm).keymatLength;
  for (let k = 1; k < (cfg.children ?? 1); k++) {
    const [inner, peerInner] = [innerOf(cfg.inner, k), innerOf(cfg.peerInner, k)];
    await run('ip', ['addr', 'replace', `${inner}/32`, 'dev', 'lo']); // stays from an earlier peer in the namespace
    await run('ip', ['route', 'add', `${peerInner}/32`, 'dev', dev, 'src', inner]);
    const ts = { localTs: [`${inner}/32`], remoteTs: [`${peerInner}/32`] };
    const [spiOut, spiIn] = [cfg.spiOut + k, cfg.spiIn + k];
    const mk = (spi: number, direction: 'outbound' | 'inbound') =>
      createEspSa({ spi, algorithm: cfg.algorithm, direction, keymat: keymatOf(spi, len), implementation: 'native', engine: cfg.engine ?? 'auto' });
    dp.addOutbound({ spi: spiOut, sa: mk(spiOut, 'outbound'), ...ts, peer: { address: cfg.peerAddr, port: 4500 }, plain: cfg.plain === true, pairSpi: spiIn });
    dp.addInbound({ spi: spiIn, sa: mk(spiIn, 'inbound'), ...ts });
  }
}

async function main(): Promise<void> {
  let dp: DataPlane | undefined;
  let tun: ReturnType<typeof openTun> | undefined;
  let cfg: PeerConfig | undefined;
  let selectors: { localTs: string[]; remoteTs: string[] } | undefined;
  let sink: dgram.Socket | undefined;
  let seen = new Uint16Array(0);
  // A plain socket on another port: the test's "attacker" and IKE peer.
  const sock = dgram.createSocket('udp4');
  const reply = (m: unknown) => process.send!(m);

  process.on('message', async (m: PeerCommand) => {
    try {
      if (m.cmd === 'start') {
        cfg = m.config;
        tun = openTun('dp0', { offload: cfg.offload ?? true, queues: cfg.workers ?? 1 });
        const v6 = cfg.inner6 !== undefined && cfg.peerInner6 !== undefined;
        if (v6) await run('ip', ['-6', 'addr', 'add', `${cfg.inner6}/128`, 'dev', 'lo']);
        const routes = [`${cfg.peerInner}/32`, ...(v6 ? [`${cfg.peerInner6}/128`] : [])];
        await configureTun(tun.name, { routes, source: cfg.inner, source6: cfg.inner6 });
        const localTs = [`${cfg.inner}/32`, ...(v6 ? [`${cfg.inner6}/128`] : [])];
        const remoteTs = [`${cfg.peerInner}/32`, ...(v6 ? [`${cfg.peerInner6}/128`] : [])];
        const engine = cfg.engine ?? 'auto';
        const out = createEspSa({ spi: cfg.spiOut, algorithm: cfg.algorithm, direction: 'outbound', keymat: Buffer.from(cfg.keymatOut, 'hex'), implementation: 'native', engine });
        const inb = createEspSa({ spi: cfg.spiIn, algorithm: cfg.algorithm, direction: 'inbound', keymat: Buffer.from(cfg.keymatIn, 'hex'), implementation: 'native', engine });
        const plane: DataPlane = new DataPlane({
          tunFd: tun.fds,
          address: cfg.addr,
          onIke: (msg, from) => {
            reply({ event: 'ike', text: msg.toString(), from });
            plane.sendIke(Buffer.from(`pong ${msg.toString()}`), from.address, from.port);
          },
        });
        dp = plane;
        dp.addOutbound({ spi: cfg.spiOut, sa: out, localTs, remoteTs, peer: { address: cfg.peerAddr, port: 4500 }, plain: cfg.plain === true, pairSpi: cfg.spiIn });
        selectors = { localTs, remoteTs };
        dp.addInbound({ spi: cfg.spiIn, sa: inb, localTs, remoteTs });
        await addChildren(dp, cfg, tun.name);
        // The SA belongs to the data plane now: its own methods must refuse.
        let owned = false;
        try {
          out.stats();
        } catch (e) {
          owned = /belongs to a DataPlane/.test((e as Error).message);
        }
        await new Promise<void>((r) => sock.bind(0, cfg!.addr, r));
        reply({ event: 'ready', tun: tun.name, port: dp.port, owned, offload: tun.offload, engine: out.engine });
      } else if (m.cmd === 'stats') {
        reply({ event: 'stats', stats: dp!.stats() });
      } else if (m.cmd === 'inject') {
        // Packets sealed with our outbound keys by a second SA object (test hooks: chosen sequence numbers, far
        // above what the test's traffic used, so only the intended check fails; the peer's inbound SA is
        // unusable for real traffic afterwards, its window having jumped).
        const c = cfg!;
        const forge = (initialSequence: bigint, spi = c.spiOut) =>
          createEspSa({ spi, algorithm: c.algorithm, direction: 'outbound', keymat: Buffer.from(c.keymatOut, 'hex'), allowInsecureForTests: true, initialSequence, implementation: 'native' });
        const echo = icmpEcho(c.inner, c.peerInner);
        const base = 0x70000000n;
        const tampered = forge(base).seal(echo, 4);
        tampered[tampered.length - 20]! ^= 0x01; // a ciphertext / ICV bit
        const packets: Record<string, Buffer> = {
          unknownSpi: forge(base, 0x0badf00d).seal(echo, 4),
          authFailed: tampered,
          replay: forge(1n).seal(echo, 4), // sequence number 1: used by the first ping, long left of the window now
          selectorMismatch: forge(base + 100n).seal(icmpEcho('10.99.3.3', c.peerInner), 4),
          genuine: forge(base + 200n).seal(echo, 4),
          keepalive: Buffer.from([0xff]),
        };
        for (const p of Object.values(packets)) await new Promise<void>((r, j) => sock.send(p, 4500, c.peerAddr, (e) => (e ? j(e) : r())));
        reply({ event: 'injected', kinds: Object.keys(packets) });
      } else if (m.cmd === 'ikeProbe') {
        const got = new Promise<Buffer>((r) => sock.once('message', (d) => r(d)));
        sock.send(Buffer.concat([Buffer.alloc(4), Buffer.from('hello ike')]), 4500, cfg!.peerAddr);
        const d = await got;
        reply({ event: 'ikeReply', marker: d.readUInt32BE(0), text: d.subarray(4).toString() });
      } else if (m.cmd === 'add') {
        const c = cfg!;
        const x = m.sa;
        const sa = createEspSa({ spi: x.spi, algorithm: c.algorithm, direction: x.direction, keymat: keymatOf(x.spi, espKeyLengths(c.algorithm).keymatLength), implementation: 'native' });
        if (x.direction === 'inbound') dp!.addInbound({ spi: x.spi, sa, ...selectors! });
        else dp!.addOutbound({ spi: x.spi, sa, ...selectors!, peer: { address: c.peerAddr, port: 4500 }, plain: c.plain === true, pairSpi: x.pairSpi });
        reply({ event: 'added' });
      } else if (m.cmd === 'remove') {
        reply({ event: 'removed', count: dp!.remove(m.spi, m.direction) });
      } else if (m.cmd === 'sink') {
        seen = new Uint16Array(m.count);
        // 4 MiB (rmem_max here): a short stall of this process must not overflow the socket, which would look like loss
        sink = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
        sink.on('message', (d) => {
          const i = d.readUInt32BE(0);
          if (i < seen.length) seen[i]!++;
        });
        await new Promise<void>((r) => sink!.bind(m.port, cfg!.inner, r));
        reply({ event: 'sinking' });
      } else if (m.cmd === 'flood') {
        // Numbered datagrams from our inner address to the peer's, paced (perMs a millisecond) so that only the
        // data plane, not a socket buffer, could lose one.
        const out = dgram.createSocket('udp4');
        await new Promise<void>((r) => out.bind(0, cfg!.inner, r));
        const d = Buffer.alloc(200);
        for (let i = 0; i < m.count; i++) {
          d.writeUInt32BE(i, 0);
          await new Promise<void>((r, j) => out.send(d, m.port, cfg!.peerInner, (e) => (e ? j(e) : r())));
          if (i % m.perMs === m.perMs - 1) await new Promise((r) => setTimeout(r, 1));
        }
        out.close();
        reply({ event: 'flooded' });
      } else if (m.cmd === 'sunk') {
        let unique = 0, duplicates = 0;
        for (const n of seen) {
          if (n > 0) unique++;
          if (n > 1) duplicates += n - 1;
        }
        reply({ event: 'sunk', unique, duplicates });
      } else if (m.cmd === 'close') {
        sink?.close();
        dp?.close();
        tun?.close();
        sock.close();
        reply({ event: 'closed' });
        process.disconnect();
      }
    } catch (e) {
      reply({ event: 'error', message: (e as Error).stack ?? String(e) });
    }
  });
}

if (process.send) void main();
