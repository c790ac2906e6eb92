// A phase 1 with XAUTH_INIT_PSK (65001) between two engines in memory, then a pump for the Transaction
// exchanges between a RemoteAccessClient (the phase 1 initiator) and a RemoteAccessServer (responder).
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { AuthMethod } from '../../ts/isakmp/index.js';
import { parseIkeProposal, type IsakmpSa, type RemoteAccessEvent, type RemoteAccessOutput } from '../../ts/ike/index.js';
import { policy, runPhase1 } from './pair.js';

export const crypto: CryptoProvider = [nativeCrypto, nodeCrypto].find((p): p is CryptoProvider => p !== null)!;

export const idA = { kind: 'ipv4', address: '10.99.0.1' } as const;
export const idB = { kind: 'ipv4', address: '10.99.0.2' } as const;

let cached: Promise<{ i: IsakmpSa; r: IsakmpSa }> | null = null;

/** Phase 1 negotiated with XAUTH_INIT_PSK on both sides (cached: the SAs are only read). */
export function xauthPhase1(): Promise<{ i: IsakmpSa; r: IsakmpSa }> {
  cached ??= (async () => {
    const p = parseIkeProposal('aes128-sha256-modp2048', { authMethod: AuthMethod.XAUTH_INIT_PSK });
    assert.ok(p.ok);
    const res = await runPhase1(crypto, policy({ proposals: p.value, localId: idA, remoteId: idB }), [policy({ proposals: p.value, localId: idB, remoteId: idA })]);
    assert.ok(res.initiator.sa && res.responder.sa, `phase 1: ${res.initiator.error?.message ?? res.responder.error?.message}`);
    return { i: res.initiator.sa, r: res.responder.sa };
  })();
  return cached;
}

export interface Endpoint {
  handle(message: Buffer, now: number): Promise<RemoteAccessOutput>;
  onTimer(now: number): Promise<RemoteAccessOutput>;
}

export interface PumpSide {
  ep: Endpoint;
  events: RemoteAccessEvent[];
  dropped: string[];
  timer: number | null;
}

/** Delivers datagrams between client ('c') and server ('s'), firing timers on a virtual clock. */
export class Pump {
  now = 1_000_000;
  readonly c: PumpSide;
  readonly s: PumpSide;
  readonly wire: { from: 'c' | 's'; bytes: Buffer }[] = [];
  queue: { to: 'c' | 's'; bytes: Buffer }[] = [];
  /** Return the datagrams to deliver (default: as sent). */
  channel: (b: Buffer, from: 'c' | 's') => Buffer[] = (b) => [b];

  constructor(client: Endpoint, server: Endpoint) {
    this.c = { ep: client, events: [], dropped: [], timer: null };
    this.s = { ep: server, events: [], dropped: [], timer: null };
  }

  take(who: 'c' | 's', out: RemoteAccessOutput): void {
    const side = this[who];
    side.timer = out.timer;
    side.events.push(...out.events);
    side.dropped.push(...out.dropped);
    for (const m of out.send) {
      this.wire.push({ from: who, bytes: m });
      for (const d of this.channel(m, who)) this.queue.push({ to: who === 'c' ? 's' : 'c', bytes: d });
    }
  }

  async run(maxMs = 600_000): Promise<void> {
    const start = this.now;
    while (this.now - start <= maxMs) {
      const q = this.queue.shift();
      if (q) {
        this.take(q.to, await this[q.to].ep.handle(q.bytes, this.now));
        continue;
      }
      const next = [this.c.timer, this.s.timer].filter((t): t is number => t !== null).sort((a, b) => a - b)[0];
      if (next === undefined || next - start > maxMs) return;
      this.now = Math.max(this.now, next);
      for (const who of ['c', 's'] as const) {
        const t = this[who].timer;
        if (t !== null && t <= this.now) this.take(who, await this[who].ep.onTimer(this.now));
      }
    }
  }
}
