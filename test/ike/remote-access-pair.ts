// A phase 1 with XAUTH_INIT_PSK (65001) between two engines in memory, then a pump for the Transaction
// exchanges between a RemoteAccessClient (the phase 1 initiator) and a RemoteAccessServer (responder).
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { AuthMethod } from '../../ts/isakmp/index.js';
import { parseIkeProposal, type IsakmpSa, type RemoteAccessEvent, type RemoteAccessOutput } from '../../ts/ike/index.js';
import { policy, runPhase1 } from './pair.js';
import { MessagePump, type PumpRecord } from './pump.js';

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

export interface PumpSide extends PumpRecord<RemoteAccessEvent> {
  ep: Endpoint;
}

/** Delivers datagrams between client ('c') and server ('s'), firing timers on a virtual clock. */
export class Pump extends MessagePump<'c' | 's', RemoteAccessEvent> {
  readonly c: PumpSide;
  readonly s: PumpSide;

  constructor(client: Endpoint, server: Endpoint) {
    super(['c', 's']);
    this.c = { ep: client, events: [], dropped: [], timer: null };
    this.s = { ep: server, events: [], dropped: [], timer: null };
  }

  protected record(who: 'c' | 's'): PumpSide {
    return this[who];
  }
  protected endpoint(who: 'c' | 's'): Endpoint {
    return this[who].ep;
  }
}
