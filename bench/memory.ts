// Memory per established SA pair: N ISAKMP SAs, each with one child SA pair (two ESP SAs), held the way a
// gateway holds them (the phase 1 machine with its keys, the phase 2 context, the ESP SAs in the addon).
// Run with --expose-gc for exact figures:  node --expose-gc dist/bench/memory.js [--count 100000] [--json]
// The handshakes use a null DH group (benchmarks only) so 100,000 of them take seconds, not minutes; the
// state kept is the same as with real DH.
import { pathToFileURL } from 'node:url';
import { defaultCrypto } from '../ts/crypto/index.js';
import type { EspSa } from '../ts/esp/index.js';
import {
  CookieGenerator,
  createChildEspSas,
  IsakmpSaContext,
  Phase1,
  parseEspProposal,
  parseIkeProposal,
  type ChildSa,
  type Endpoint,
  type Phase1Output,
  type Phase1Policy,
  type Phase2Output,
  type Phase2Policy,
} from '../ts/ike/index.js';
import { fakeDhCrypto } from './handshakes.js';

export interface MemoryResult {
  count: number;
  heapBytesPerPair: number;
  externalBytesPerPair: number;
  rssBytesPerPair: number;
  seconds: number;
}

interface Kept {
  phase1: Phase1;
  ctx: IsakmpSaContext;
  esp: { inbound: EspSa; outbound: EspSa };
}

const I: Endpoint = { address: '192.0.2.1', port: 500 };
const R: Endpoint = { address: '192.0.2.2', port: 500 };

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export async function runMemoryBench(count: number): Promise<MemoryResult> {
  const crypto = fakeDhCrypto(defaultCrypto());
  const ike = parseIkeProposal('aes128-sha256-modp2048');
  const esp = parseEspProposal('aes128gcm16');
  if (!ike.ok || !esp.ok) throw new Error('proposals');
  const common = { mode: 'main' as const, proposals: ike.value, psk: Buffer.from('memory benchmark key') };
  const pi: Phase1Policy = { ...common, name: 'm', localId: { kind: 'ipv4', address: I.address } };
  const pr: Phase1Policy = { ...common, name: 'm', localId: { kind: 'ipv4', address: R.address } };
  const child: Phase2Policy = { name: 'm', proposals: esp.value };
  const ci = new CookieGenerator(crypto);
  const cr = new CookieGenerator(crypto);
  const kept: Kept[] = [];

  const one = async (): Promise<void> => {
    const now = Date.now();
    const a = await Phase1.initiate({ crypto, cookies: ci, local: I, remote: R }, pi, now);
    const b = await Phase1.respond({ crypto, cookies: cr, local: R, remote: I }, [pr], a.out.send[0]!, now);
    if (!b.phase1) throw new Error(b.out.failed?.message);
    let toI: Phase1Output = b.out;
    for (let k = 0; k < 3; k++) {
      const oi = await a.phase1.handle(toI.send[0]!, now);
      if (oi.send.length === 0) break;
      toI = await b.phase1.handle(oi.send[0]!, now);
    }
    const saI = a.phase1.established;
    const saR = b.phase1.established;
    if (!saI || !saR) throw new Error('phase 1 did not complete');
    const ctxI = new IsakmpSaContext(crypto, saI, { children: [child] }, now);
    const ctxR = new IsakmpSaContext(crypto, saR, { children: [child] }, now);
    let childR: ChildSa | undefined;
    let m: Phase2Output = (await ctxI.initiate(child, now)).out;
    for (let k = 0; k < 3 && m.send.length > 0; k++) {
      const r = await ctxR.handle(m.send[0]!, now);
      for (const e of r.events) if (e.type === 'childSa') childR = e.child;
      if (r.send.length === 0) break;
      m = await ctxI.handle(r.send[0]!, now);
    }
    if (!childR) throw new Error('quick mode did not complete');
    // what a responder gateway keeps; the initiator side is dropped
    kept.push({ phase1: b.phase1, ctx: ctxR, esp: createChildEspSas(childR) });
  };

  await one(); // warm up the code paths before the baseline
  kept.length = 0;
  gc();
  const m0 = process.memoryUsage();
  const t0 = performance.now();
  for (let n = 0; n < count; n++) {
    await one();
    if (n % 10_000 === 9_999 && process.stderr.isTTY) process.stderr.write(`\r  ${n + 1}/${count} SA pairs`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  const seconds = (performance.now() - t0) / 1000;
  gc();
  const m1 = process.memoryUsage();
  const result = {
    count: kept.length,
    heapBytesPerPair: (m1.heapUsed - m0.heapUsed) / kept.length,
    externalBytesPerPair: (m1.external - m0.external) / kept.length,
    rssBytesPerPair: (m1.rss - m0.rss) / kept.length,
    seconds,
  };
  for (const k of kept) {
    k.esp.inbound.destroy?.();
    k.esp.outbound.destroy?.();
  }
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--count');
  const count = i > 0 ? Number(process.argv[i + 1]) : 100_000;
  if (!(globalThis as { gc?: unknown }).gc) process.stderr.write('memory: run with node --expose-gc for exact figures\n');
  const r = await runMemoryBench(count);
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    const kb = (b: number) => `${(b / 1024).toFixed(2)} KiB`;
    process.stdout.write(
      `${r.count} ISAKMP SAs with one child SA pair each, built in ${r.seconds.toFixed(1)} s\n` +
        `  JS heap     ${kb(r.heapBytesPerPair)} per SA pair\n` +
        `  external    ${kb(r.externalBytesPerPair)} per SA pair (Buffers)\n` +
        `  process RSS ${kb(r.rssBytesPerPair)} per SA pair (heap + native: OpenSSL contexts of the ESP SAs)\n`,
    );
  }
}
