// `ike bench handshakes`: complete handshakes between an initiator and a responder in one process, in
// memory (no sockets, no timers), as fast as the engine goes. Prints handshakes/s, latency percentiles,
// CPU time per handshake and, measured in the same run, the DH-bound ceiling: the rate of the DH work one
// handshake needs on its own. The ratio of the two is the protocol's overhead.
import { pathToFileURL } from 'node:url';
import { defaultCrypto, dhGroupInfo, type CryptoProvider, type DhGroup, type DhGroupId, type DhKeyPairOptions, type DhPrivateKey } from '../ts/crypto/index.js';
import { CookieGenerator, Phase1, parseIkeProposal, type Endpoint, type Phase1Output, type Phase1Policy } from '../ts/ike/index.js';

export interface HandshakeBenchOptions {
  ike?: string;
  mode?: 'main' | 'aggressive';
  concurrency?: number;
  durationMs?: number;
  /** Replace DH by a null group (like strongSwan's modpnull): shows the protocol's own cost. Benchmarks only. */
  fakeDh?: boolean;
  fullLengthExponent?: boolean;
  /** DH on the libuv thread pool (uses every core). */
  asyncDh?: boolean;
  crypto?: CryptoProvider;
}

export interface HandshakeBenchResult {
  ike: string;
  mode: string;
  concurrency: number;
  fakeDh: boolean;
  asyncDh: boolean;
  fullLengthExponent: boolean;
  handshakes: number;
  seconds: number;
  handshakesPerSec: number;
  /** DH-only rate for the same work (2 key pairs + 2 shared secrets per handshake), sync, one thread. */
  ceilingPerSec: number;
  ratioToCeiling: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerHandshake: number;
}

const I: Endpoint = { address: '192.0.2.1', port: 500 };
const R: Endpoint = { address: '192.0.2.2', port: 500 };

/** One handshake, messages handed across directly. Resolves when both sides are established. */
async function handshake(crypto: CryptoProvider, pi: Phase1Policy, pr: Phase1Policy, cookiesI: CookieGenerator, cookiesR: CookieGenerator): Promise<void> {
  const now = Date.now();
  const { phase1: ini, out } = await Phase1.initiate({ crypto, cookies: cookiesI, local: I, remote: R }, pi, now);
  let toR = out.send[0]!;
  const first = await Phase1.respond({ crypto, cookies: cookiesR, local: R, remote: I }, [pr], toR, now);
  const res = first.phase1;
  if (!res) throw new Error(`responder refused: ${first.out.failed?.message}`);
  let o: Phase1Output = first.out;
  let iDone = false;
  let rDone = false;
  for (let step = 0; step < 8 && !(iDone && rDone); step++) {
    if (o.failed) throw o.failed;
    const toI = o.send[0];
    if (toI === undefined) break;
    const oi = await ini.handle(toI, now);
    if (oi.failed) throw oi.failed;
    iDone ||= oi.established !== undefined;
    if (oi.send.length === 0) break;
    toR = oi.send[0]!;
    o = await res.handle(toR, now);
    rDone ||= o.established !== undefined;
  }
  if (!iDone || !rDone) throw new Error('handshake did not complete');
}

/** The DH work of one handshake alone, sync, for the ceiling. */
function dhCeiling(crypto: CryptoProvider, group: DhGroupId, options: DhKeyPairOptions, durationMs: number): number {
  const g = crypto.dhGroup(group);
  const end = performance.now() + durationMs;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    const a = g.generateKeyPair(options);
    const b = g.generateKeyPair(options);
    a.computeSecret(b.publicValue);
    b.computeSecret(a.publicValue);
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

/** A crypto provider whose DH is a null group: public values are random, the secret a hash of both. */
export function fakeDhCrypto(base: CryptoProvider): CryptoProvider {
  const groups = new Map<DhGroupId, DhGroup>();
  const fake = (id: DhGroupId): DhGroup => {
    const info = dhGroupInfo(id)!;
    const key = (): DhPrivateKey => {
      const publicValue = base.randomBytes(info.publicLength);
      const secret = (peer: Uint8Array) => {
        const [x, y] = Buffer.compare(publicValue, Buffer.from(peer)) < 0 ? [publicValue, peer] : [peer, publicValue];
        const h = base.hash('sha256', x, y);
        return Buffer.concat(Array(Math.ceil(info.secretLength / h.length)).fill(h)).subarray(0, info.secretLength);
      };
      return { group: id, publicValue, computeSecret: secret, computeSecretAsync: async (p) => secret(p) };
    };
    return {
      id,
      kind: info.kind,
      publicLength: info.publicLength,
      secretLength: info.secretLength,
      generateKeyPair: key,
      generateKeyPairAsync: async () => key(),
      importPrivateKey: () => key(),
    };
  };
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'dhGroup') {
        return (id: DhGroupId) => {
          if (!groups.has(id)) groups.set(id, fake(id));
          return groups.get(id)!;
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runHandshakeBench(o: HandshakeBenchOptions = {}): Promise<HandshakeBenchResult> {
  const ike = o.ike ?? 'aes128-sha1-modp2048';
  const mode = o.mode ?? 'main';
  const concurrency = o.concurrency ?? 1;
  const durationMs = o.durationMs ?? 3000;
  const base = o.crypto ?? defaultCrypto();
  const crypto = o.fakeDh ? fakeDhCrypto(base) : base;
  const proposals = parseIkeProposal(ike, { allowWeak: true });
  if (!proposals.ok) throw new Error(proposals.error);
  const common = {
    mode,
    proposals: proposals.value,
    psk: Buffer.from('benchmark pre-shared key'),
    allowAggressivePsk: true,
    fullLengthExponent: o.fullLengthExponent ?? false,
    asyncDh: o.asyncDh ?? false,
  } as const;
  const pi: Phase1Policy = { ...common, name: 'bench', localId: { kind: 'ipv4', address: I.address } };
  const pr: Phase1Policy = { ...common, name: 'bench', localId: { kind: 'ipv4', address: R.address } };
  const cookiesI = new CookieGenerator(crypto);
  const cookiesR = new CookieGenerator(crypto);

  // warm-up (comb tables, JIT)
  for (let i = 0; i < 5; i++) await handshake(crypto, pi, pr, cookiesI, cookiesR);

  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const s = performance.now();
      await handshake(crypto, pi, pr, cookiesI, cookiesR);
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const handshakes = latencies.length;
  const ceiling = o.fakeDh ? Number.NaN : dhCeiling(base, proposals.value[0]!.group, { fullLengthExponent: common.fullLengthExponent }, Math.min(2000, durationMs));
  latencies.sort((a, b) => a - b);
  const rate = handshakes / seconds;
  return {
    ike,
    mode,
    concurrency,
    fakeDh: o.fakeDh ?? false,
    asyncDh: common.asyncDh,
    fullLengthExponent: common.fullLengthExponent,
    handshakes,
    seconds,
    handshakesPerSec: rate,
    ceilingPerSec: ceiling,
    ratioToCeiling: rate / ceiling,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMsPerHandshake: (cpu.user + cpu.system) / 1000 / handshakes,
  };
}

export function formatHandshakeBench(rows: HandshakeBenchResult[]): string {
  const head = '| proposal | mode | DH | exponent | concurrency | handshakes/s | DH ceiling/s | ratio | p50 ms | p99 ms | CPU ms/handshake |\n|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|';
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  return [
    head,
    ...rows.map(
      (r) =>
        `| ${r.ike} | ${r.mode} | ${r.fakeDh ? 'null (fake)' : r.asyncDh ? 'async pool' : 'sync'} | ${r.fullLengthExponent ? 'full' : 'short'} | ${r.concurrency} | ${f(r.handshakesPerSec)} | ${f(r.ceilingPerSec)} | ${f(r.ratioToCeiling, 2)} | ${f(r.p50Ms, 2)} | ${f(r.p99Ms, 2)} | ${f(r.cpuMsPerHandshake, 2)} |`,
    ),
  ].join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = process.argv.includes('--json');
  const o: HandshakeBenchOptions = {
    ike: arg('ike') ?? (arg('group') ? `aes128-sha1-${arg('group')}` : undefined),
    mode: (arg('mode') as 'main' | 'aggressive' | undefined) ?? 'main',
    concurrency: Number(arg('concurrency') ?? 1),
    durationMs: Number(arg('duration') ?? 3) * 1000,
    fakeDh: process.argv.includes('--fake-dh'),
    fullLengthExponent: process.argv.includes('--full-exponent'),
    asyncDh: process.argv.includes('--async'),
  };
  const r = await runHandshakeBench(o);
  if (json) process.stdout.write(JSON.stringify(r) + '\n');
  else process.stdout.write(formatHandshakeBench([r]) + '\n');
}
