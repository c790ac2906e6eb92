// Test tooling for the tunnel data plane: start dataplane-peer.js in both namespaces of a NetnsPair with
// crossed fixed keys and talk to it over IPC. Used by dataplane.test.ts and bench/tunnel.ts.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetnsPair } from '../interop/harness/index.js';
import { espKeyLengths, type EspAlgorithm, type EspEngineChoice } from '../../ts/esp/index.js';
import type { DataPlaneStats } from '../../ts/gateway/dataplane.js';
import type { PeerCommand, PeerConfig } from './dataplane-peer.js';

const PEER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dataplane-peer.js');

/** A dataplane-peer.js child with a request/answer helper over IPC. */
export class TunnelPeer {
  private constructor(private readonly child: ChildProcess) {}

  /** The peer process (its CPU time is the data plane's, for bench/tunnel.ts). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  static spawn(pair: NetnsPair, side: 'a' | 'b'): TunnelPeer {
    const child = pair.spawnNode(side, [PEER_SCRIPT], { ipc: true });
    let err = '';
    child.stderr?.on('data', (d) => (err += String(d)));
    child.once('exit', (code) => {
      if (code) process.stderr.write(`dataplane peer ${side} exited ${code}: ${err}\n`);
    });
    return new TunnelPeer(child);
  }

  /** Sends a command and resolves with the first message whose event is `event` (rejects on 'error'). */
  ask<T = Record<string, unknown>>(cmd: PeerCommand, event: string, timeoutMs = 5000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.off('message', on);
        reject(new Error(`no '${event}' answer to ${cmd.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: { event: string; message?: string }) => {
        if (m.event !== event && m.event !== 'error') return;
        clearTimeout(timer);
        this.child.off('message', on);
        if (m.event === 'error') reject(new Error(`peer: ${m.message}`));
        else resolve(m as T);
      };
      this.child.on('message', on);
      this.child.send(cmd);
    });
  }

  /** The next unsolicited event of this kind (e.g. 'ike'). */
  next<T = Record<string, unknown>>(event: string): Promise<T> {
    return new Promise((resolve) => {
      const on = (m: { event: string }) => {
        if (m.event !== event) return;
        this.child.off('message', on);
        resolve(m as T);
      };
      this.child.on('message', on);
    });
  }

  async stats(): Promise<DataPlaneStats> {
    return (await this.ask<{ stats: DataPlaneStats }>({ cmd: 'stats' }, 'stats')).stats;
  }

  async close(): Promise<void> {
    if (this.child.connected) await this.ask({ cmd: 'close' }, 'closed').catch(() => undefined);
  }
}

/** Fixed, crossed keys: a's outbound = b's inbound and the other way round. */
/** IPv6 inner addresses the peers add on lo when asked (the harness itself is IPv4 only). */
export const INNER6 = { a: 'fd00:99:1::1', b: 'fd00:99:2::1' };

export interface TunnelOptions {
  /** Also IPv6 inner addresses (INNER6) on the same SAs. */
  ipv6?: boolean;
  /** TUN offloads (default true). */
  offload?: boolean;
  /** Plain ESP (IP protocol 50) both ways instead of ESP in UDP. */
  plain?: boolean;
  /** Data plane workers on each side (default 1). */
  workers?: number;
  /** The SAs' crypto engine (default 'auto'). */
  engine?: EspEngineChoice;
  /** Child SA pairs per side (PeerConfig.children; default 1). */
  children?: number;
}

export function peerConfigs(pair: NetnsPair, algorithm: EspAlgorithm, opts: TunnelOptions = {}): { a: PeerConfig; b: PeerConfig } {
  const len = espKeyLengths(algorithm).keymatLength;
  const kAB = Buffer.alloc(len, 0xab).toString('hex');
  const kBA = Buffer.alloc(len, 0xba).toString('hex');
  const side = (s: typeof pair.a, out: string, inn: string, spiOut: number, spiIn: number): PeerConfig => ({
    algorithm, keymatOut: out, keymatIn: inn, spiOut, spiIn, addr: s.addr, inner: s.inner, peerAddr: s.peerAddr, peerInner: s.peerInner,
    offload: opts.offload ?? true,
    plain: opts.plain ?? false,
    workers: opts.workers ?? 1,
    ...(opts.engine ? { engine: opts.engine } : {}),
    ...(opts.children ? { children: opts.children } : {}),
    ...(opts.ipv6 ? { inner6: INNER6[s.side], peerInner6: INNER6[s.side === 'a' ? 'b' : 'a'] } : {}),
  });
  return { a: side(pair.a, kAB, kBA, 0xa0b00001, 0xb0a00001), b: side(pair.b, kBA, kAB, 0xb0a00001, 0xa0b00001) };
}

export async function startTunnel(pair: NetnsPair, algorithm: EspAlgorithm, opts: TunnelOptions = {}): Promise<{ a: TunnelPeer; b: TunnelPeer; ready: Record<string, unknown>[] }> {
  const cfg = peerConfigs(pair, algorithm, opts);
  const a = TunnelPeer.spawn(pair, 'a');
  const b = TunnelPeer.spawn(pair, 'b');
  const ready = await Promise.all([a.ask({ cmd: 'start', config: cfg.a }, 'ready'), b.ask({ cmd: 'start', config: cfg.b }, 'ready')]);
  return { a, b, ready };
}


export interface IperfResult {
  gbps: number;
  /** Octets the client sent and the server counted (iperf3 stops counting at the end of the test: less). */
  sentBytes: number;
  bytes: number;
  retransmits: number;
  /** UDP (-u): datagrams the server counted and the share it missed. */
  packets: number;
  lostPercent: number;
  /** iperf3's host CPU use, sender and receiver (percent). */
  cpuSender: number;
  cpuReceiver: number;
}

/**
 * iperf3 TCP from a (bound to src) to a server on b at dst: `-t seconds` or `-n bytes` (e.g. ['-n', '8M']). Runs
 * at the same time need their own port.
 */
export async function iperf(pair: NetnsPair, dst: string, src: string | undefined, amount: string[], port = 5201): Promise<IperfResult> {
  const v6 = dst.includes(':');
  const server = pair.spawn('b', 'iperf3', ['-s', '-1', '-B', dst, '-p', String(port)]);
  try {
    let last = '';
    for (let attempt = 0; attempt < 20; attempt++) {
      await new Promise((r) => setTimeout(r, 100)); // the server binds
      const args = ['-c', dst, '-p', String(port), '-J', ...(v6 ? ['-6'] : []), ...(src ? ['-B', src] : []), ...amount];
      const r = await pair.run('a', 'iperf3', args, { timeoutMs: 60_000 });
      if (r.code === 0) {
        const j = JSON.parse(r.stdout);
        return {
          gbps: j.end.sum_received.bits_per_second / 1e9,
          sentBytes: j.end.sum_sent.bytes,
          bytes: j.end.sum_received.bytes,
          retransmits: j.end.sum_sent.retransmits ?? 0,
          packets: j.end.sum_received.packets ?? 0,
          lostPercent: j.end.sum_received.lost_percent ?? 0,
          cpuSender: j.end.cpu_utilization_percent?.host_total ?? 0,
          cpuReceiver: j.end.cpu_utilization_percent?.remote_total ?? 0,
        };
      }
      last = `${r.stdout.slice(0, 400)}${r.stderr}`;
      if (!/refused/i.test(last)) break;
    }
    throw new Error(`iperf3 to ${dst} failed: ${last}`);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}
