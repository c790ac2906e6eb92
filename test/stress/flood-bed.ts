// A test bed for message-1 floods (issue 20.1), shared by test/stress/flood-spoofed.test.ts and
// bench/flood.ts (not a test file itself). Two namespaces from the interop harness:
//
//   a (10.99.0.1)  the responder under test: our `ike gateway` with a %any connection, or strongSwan
//   b (10.99.0.2)  a legitimate strongSwan initiator, and bench/flood-sender.py sending Main Mode message 1s
//                  from random addresses of 10.98.0.0/16 (local to b by an AnyIP route) with random cookies
//
// a routes 10.98.0.0/16 back to b, where nothing listens on those addresses: each spoofed source gets the
// responder's message 2 and never answers, as the victim of a forged source would. Everything stays inside
// the two namespaces, which have no default route; NetnsPair.destroy() removes them.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ikeOffer, parseIkeProposal } from '../../ts/ike/index.js';
import { encodeMessage, ExchangeType, ISAKMP_VERSION, PayloadType, type Payload } from '../../ts/isakmp/index.js';
import { NetnsPair, StrongSwanPeer, type StrongSwanOptions } from '../interop/harness/index.js';

export const SPOOFED = '10.98.0.0/16';
export const PSK = 'flood-bed-secret';
export const IKE = 'aes128-sha1-modp2048';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const IKE_BIN = path.join(root, 'bin', 'ike.js');
const SENDER = path.join(root, 'bench', 'flood-sender.py');

/** The two namespaces with the spoofed prefix routed: local to b, reached from a through b. */
export async function floodPair(prefix: string): Promise<NetnsPair> {
  const pair = await NetnsPair.create({ prefix });
  try {
    for (const [side, args] of [
      ['b', ['route', 'add', 'local', SPOOFED, 'dev', 'lo']],
      ['a', ['route', 'add', SPOOFED, 'via', pair.a.peerAddr]],
    ] as const) {
      const r = await pair.run(side, 'ip', args);
      if (r.code !== 0) throw new Error(`ip ${args.join(' ')} in ${side}: ${r.stderr.trim()}`);
    }
  } catch (e) {
    await pair.destroy();
    throw e;
  }
  return pair;
}

/**
 * A Main Mode message 1 as strongSwan 5.9 sends it for `aes128-sha1-modp2048`: one proposal and four vendor
 * IDs (XAUTH, DPD, NAT-T, fragmentation), 200 bytes or so. The sender overwrites the initiator cookie.
 */
export function message1(): Buffer {
  const p = parseIkeProposal(IKE);
  if (!p.ok) throw new Error(p.error);
  const vids = ['09002689dfd6b712', 'afcad71368a1f1c96b8696fc77570100', '4a131c81070358455c5728f20e95452f', '4048b7d56ebce88525e7de7f00d6c2d3'];
  return encodeMessage({
    header: { initiatorCookie: Buffer.alloc(8), responderCookie: Buffer.alloc(8), nextPayload: 0, version: ISAKMP_VERSION, exchangeType: ExchangeType.IDENTITY_PROTECTION, flags: 0, messageId: 0, length: 0 },
    payloads: [
      { type: PayloadType.SA, doi: 1, situation: Buffer.from([0, 0, 0, 1]), proposals: [ikeOffer(p.value)] },
      ...vids.map((v) => ({ type: PayloadType.VENDOR_ID, data: Buffer.from(v, 'hex') }) as Payload),
    ],
  });
}

export interface FloodResult {
  sent: number;
  seconds: number;
  rate: number;
}

/** Message 1s from b to a's port 500 at `rate` a second for `seconds`, from random spoofed sources (on `cpu`). */
export function flood(pair: NetnsPair, rate: number, seconds: number, cpu?: number): { child: ChildProcess; done: Promise<FloodResult> } {
  const args = [SENDER, pair.a.addr, '500', String(rate), String(seconds), SPOOFED, message1().toString('hex')];
  const child = cpu === undefined
    ? pair.spawn('b', 'python3', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    : pair.spawn('b', 'taskset', ['-c', String(cpu), 'python3', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<FloodResult>((resolve, reject) =>
    child.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as FloodResult);
      } catch {
        reject(new Error(`flood-sender.py exited ${code}: ${err.trim() || out.trim()}`));
      }
    }),
  );
  return { child, done };
}

/** The datagram counters of a's veth (what the responder received and sent, whoever it is). */
export async function vethPackets(pair: NetnsPair): Promise<{ rx: number; tx: number; rxBytes: number; txBytes: number }> {
  const dir = `/sys/class/net/${pair.a.veth}/statistics`;
  const r = await pair.run('a', 'cat', [`${dir}/rx_packets`, `${dir}/tx_packets`, `${dir}/rx_bytes`, `${dir}/tx_bytes`]);
  const [rx, tx, rxBytes, txBytes] = r.stdout.trim().split('\n').map(Number);
  return { rx: rx!, tx: tx!, rxBytes: rxBytes!, txBytes: txBytes! };
}

/** UDP datagrams the kernel of a dropped because a socket's receive queue was full (RcvbufErrors). */
export async function udpQueueDrops(pair: NetnsPair): Promise<number> {
  const r = await pair.run('a', 'cat', ['/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? NaN);
}

/** Our gateway's config in a: one %any connection that the legitimate initiator (and the flood) match. */
export function ourConfig(pair: NetnsPair, limits?: Record<string, unknown>): Record<string, unknown> {
  return {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    ...(limits ? { limits } : {}),
    connections: {
      any: { remote: '%any', auth: { psk: PSK }, ike: [IKE], esp: ['aes128-sha1'], localTs: `${pair.a.inner}/32`, remoteTs: `${pair.b.inner}/32` },
    },
  };
}

const QUIET: StrongSwanOptions = { ike: IKE, esp: 'aes128-sha1', psk: PSK, kernel: 'netlink', logLevel: 1, cfgLogLevel: 1, knlLogLevel: 0, netLogLevel: 0 };

/** The legitimate peer: strongSwan in b, initiating with its usual schedule (first retransmission after 2 s). */
export function legitimateInitiator(pair: NetnsPair): StrongSwanPeer {
  return new StrongSwanPeer(pair, 'b', { ...QUIET, retransmitTries: 5, retransmitTimeout: 2, retransmitBase: 1.8 });
}

/**
 * strongSwan as the responder in a, with its own defaults for floods: block_threshold 5 half-open per
 * source IP (the harness raises it for load tests), no total limit (init_limit_half_open 0); its IKE_SA
 * table sized for many SAs (the default, ikesa_table_size 1, makes every lookup a scan of all SAs).
 */
export function strongSwanResponder(pair: NetnsPair): StrongSwanPeer {
  return new StrongSwanPeer(pair, 'a', {
    ...QUIET,
    remote: '%any',
    remoteId: '%any',
    threads: 16,
    extraCharon: { block_threshold: 5, ikesa_table_size: 65536, ikesa_table_segments: 16 },
  });
}

/** Milliseconds until the initiator's ISAKMP SA is up, or null when it gave up within `timeoutSec`. */
export async function timeToGetIn(initiator: StrongSwanPeer, timeoutSec: number): Promise<number | null> {
  const t0 = performance.now();
  const r = await initiator.initiateIke(timeoutSec);
  const ms = performance.now() - t0;
  if (!r.ok) return null;
  await initiator.terminateIke(5);
  return ms;
}

/** `ike status --json` of our gateway through its control socket (run in a: the socket is a file). */
export async function ourStatus(controlPath: string): Promise<Record<string, any>> {
  const child = spawn(process.execPath, [IKE_BIN, 'status', '--control', controlPath, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await new Promise((r) => child.on('exit', r));
  return JSON.parse(out) as Record<string, any>;
}
