// Runs a phase 1 exchange between two engines in memory: a virtual clock, a channel that can drop,
// duplicate or corrupt datagrams, and the timers each machine asks for.
import type { CryptoProvider } from '../../ts/crypto/index.js';
import { parseHeader } from '../../ts/isakmp/index.js';
import { CookieGenerator, Phase1, type Endpoint, type IsakmpSa, type IkeError, type Phase1Output, type Phase1Policy } from '../../ts/ike/index.js';

export const A: Endpoint = { address: '10.99.0.1', port: 500 };
export const B: Endpoint = { address: '10.99.0.2', port: 500 };

export interface Channel {
  /** Called for each datagram; returns the datagrams actually delivered (none = lost). */
  (bytes: Buffer, from: 'i' | 'r'): Buffer[];
}
export const perfect: Channel = (b) => [b];

export interface PairResult {
  initiator: { sa?: IsakmpSa; error?: IkeError };
  responder: { sa?: IsakmpSa; error?: IkeError };
  /** Every datagram sent, in order. */
  wire: { from: 'i' | 'r'; bytes: Buffer }[];
  now: number;
}

export async function runPhase1(
  crypto: CryptoProvider,
  initiatorPolicy: Phase1Policy,
  responderPolicies: Phase1Policy[],
  channel: Channel = perfect,
  maxTimeMs = 600_000,
  /** The virtual clock's start (ms); certificate tests start at the real time so validity checks apply. */
  startMs = 1_000_000,
): Promise<PairResult> {
  let now = startMs;
  const res: PairResult = { initiator: {}, responder: {}, wire: [], now };
  const envI = { crypto, cookies: new CookieGenerator(crypto), local: A, remote: B };
  const envR = { crypto, cookies: new CookieGenerator(crypto), local: B, remote: A };
  let responder: Phase1 | null = null;
  const timers: { i: number | null; r: number | null } = { i: null, r: null };
  const queue: { to: 'i' | 'r'; bytes: Buffer }[] = [];

  const take = (who: 'i' | 'r', out: Phase1Output) => {
    if (out.timer !== undefined) timers[who] = out.timer;
    // `later` leaves after `send` (a moment later on a real socket; here simply next in line)
    for (const m of [...out.send, ...(out.later ?? [])]) {
      res.wire.push({ from: who, bytes: m });
      for (const d of channel(m, who)) queue.push({ to: who === 'i' ? 'r' : 'i', bytes: d });
    }
    const side = who === 'i' ? res.initiator : res.responder;
    if (out.established) side.sa = out.established;
    if (out.failed) side.error = out.failed;
  };

  let initiator: Phase1;
  try {
    const s = await Phase1.initiate(envI, initiatorPolicy, now);
    initiator = s.phase1;
    take('i', s.out);
  } catch (e) {
    res.initiator.error = e as IkeError;
    return res;
  }
  const start = now;
  while (now - start < maxTimeMs) {
    if (queue.length > 0) {
      const { to, bytes } = queue.shift()!;
      if (to === 'r') {
        const h = parseHeader(bytes);
        if (responder === null) {
          if (!h.ok || !h.value.responderCookie.every((x) => x === 0)) continue;
          const r = await Phase1.respond(envR, responderPolicies, bytes, now);
          responder = r.phase1;
          take('r', r.out);
        } else {
          take('r', await responder.handle(bytes, now));
        }
      } else {
        take('i', await initiator.handle(bytes, now));
      }
      continue;
    }
    const done = (s: { sa?: IsakmpSa; error?: IkeError }) => s.sa !== undefined || s.error !== undefined;
    if (done(res.initiator) && (done(res.responder) || responder === null)) break;
    // Advance the clock to the next timer.
    const next = [timers.i, timers.r].filter((t): t is number => t !== null).sort((a, b) => a - b)[0];
    if (next === undefined) break;
    now = Math.max(now, next);
    if (timers.i !== null && timers.i <= now) take('i', initiator.onTimer(now));
    if (responder && timers.r !== null && timers.r <= now) take('r', responder.onTimer(now));
  }
  res.now = now;
  return res;
}

export function policy(over: Partial<Phase1Policy> & Pick<Phase1Policy, 'proposals'>): Phase1Policy {
  return {
    name: 'test',
    mode: 'main',
    psk: Buffer.from('correct horse battery staple'),
    localId: { kind: 'ipv4', address: '10.99.0.1' },
    ...over,
  };
}
