// Runs phase 2 between two IsakmpSaContexts in memory, on top of a phase 1 pair from runPhase1:
// a virtual clock, a channel that may drop / duplicate / corrupt, and the timers both sides ask for.
import assert from 'node:assert/strict';
import type { CryptoProvider } from '../../ts/crypto/index.js';
import {
  IsakmpSaContext,
  parseEspProposal,
  parseIkeProposal,
  type DpdPolicy,
  type EspProposal,
  type IsakmpSa,
  type Phase2Event,
  type Phase2Policy,
} from '../../ts/ike/index.js';
import { policy, runPhase1, type Channel } from './pair.js';
import { MessagePump, type PumpRecord } from './pump.js';

export const idA = { kind: 'ipv4', address: '10.99.0.1' } as const;
export const idB = { kind: 'ipv4', address: '10.99.0.2' } as const;

export function esp(s: string): EspProposal[] {
  const r = parseEspProposal(s);
  assert.ok(r.ok, (r as { error?: string }).error);
  return r.value;
}

export async function phase1Pair(crypto: CryptoProvider, ike = 'aes128-sha1-modp2048', mode: 'main' | 'aggressive' = 'main'): Promise<{ i: IsakmpSa; r: IsakmpSa }> {
  const p = parseIkeProposal(ike, { allowWeak: true });
  assert.ok(p.ok);
  const res = await runPhase1(
    crypto,
    policy({ mode, proposals: p.value, localId: idA, remoteId: idB }),
    [policy({ mode, proposals: p.value, localId: idB, remoteId: idA, allowAggressivePsk: true })],
  );
  assert.ok(res.initiator.sa && res.responder.sa, `phase 1: ${res.initiator.error?.message ?? res.responder.error?.message}`);
  return { i: res.initiator.sa, r: res.responder.sa };
}

export interface Side extends PumpRecord<Phase2Event> {
  ctx: IsakmpSaContext;
}

/** Two contexts on a phase 1 pair plus a message pump. */
export class Phase2Pair extends MessagePump<'i' | 'r', Phase2Event> {
  readonly i: Side;
  readonly r: Side;

  constructor(
    readonly crypto: CryptoProvider,
    sas: { i: IsakmpSa; r: IsakmpSa },
    children: { i?: Phase2Policy[]; r: Phase2Policy[] },
    channel: Channel = (b) => [b],
    dpd?: DpdPolicy,
  ) {
    super(['i', 'r'], channel);
    const opts = (c: Phase2Policy[]) => (dpd ? { children: c, dpd } : { children: c });
    this.i = { ctx: new IsakmpSaContext(crypto, sas.i, opts(children.i ?? []), this.now), events: [], dropped: [], timer: null };
    this.r = { ctx: new IsakmpSaContext(crypto, sas.r, opts(children.r), this.now), events: [], dropped: [], timer: null };
    this.i.timer = this.i.ctx.deadline;
    this.r.timer = this.r.ctx.deadline;
  }

  protected record(who: 'i' | 'r'): Side {
    return this[who];
  }
  protected endpoint(who: 'i' | 'r'): IsakmpSaContext {
    return this[who].ctx;
  }

  async initiate(p: Phase2Policy, who: 'i' | 'r' = 'i'): Promise<number> {
    const { messageId, out } = await this[who].ctx.initiate(p, this.now);
    this.take(who, out);
    return messageId;
  }

  children(who: 'i' | 'r') {
    return this[who].events.flatMap((e) => (e.type === 'childSa' ? [e.child] : []));
  }

  failures(who: 'i' | 'r') {
    return this[who].events.flatMap((e) => (e.type === 'childFailed' ? [e.error] : []));
  }
}

export function child(name: string, proposals: string, over: Partial<Phase2Policy> = {}): Phase2Policy {
  return { name, proposals: esp(proposals), ...over };
}
