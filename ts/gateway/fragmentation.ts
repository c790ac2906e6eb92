// IKEv1 fragmentation in the gateway (the protocol is ts/ike/fragments.ts): datagrams that carry a Fragment are
// held until their message is whole, which then goes on as if it had come in one datagram; our messages above
// the connection's fragmentSize go out cut when the connection forces it or the peer announced it.
import { fragment, Reassembly } from '../ike/fragments.js';
import { PayloadType } from '../isakmp/index.js';
import type { Endpoint } from '../ike/index.js';
import type { PolicyCompiler } from './policy.js';
import type { SaTable } from './sa-table.js';

/** Below this no connection fragments (the smallest fragmentSize): most messages skip the lookup. */
const MIN_SIZE = 576;

export class Fragmentation {
  private readonly reassembly = new Reassembly();

  constructor(
    private readonly table: SaTable,
    private readonly policies: PolicyCompiler,
  ) {}

  /** A received IKE datagram: itself, the whole message its fragment completes, or null (held, or dropped). */
  incoming(msg: Buffer, nextPayload: number, from: Endpoint, now: number): Buffer | null {
    if (nextPayload !== PayloadType.FRAGMENT) return msg;
    const r = this.reassembly.add(msg, `${from.address}:${from.port}`, now);
    return r.kind === 'complete' ? r.message : null;
  }

  /** The datagrams that carry `msg` to the peer of its ISAKMP SA. */
  outgoing(msg: Buffer): Buffer[] {
    if (msg.length <= MIN_SIZE) return [msg];
    const entry = this.table.get(msg.subarray(0, 8).toString('hex'));
    const c = entry && this.policies.find(entry.connection);
    if (!entry || !c || c.fragmentation.mode === 'no' || msg.length <= c.fragmentation.size) return [msg];
    const peer = entry.phase1?.peerFragmentation ?? entry.sa?.peerVendorIds.fragmentation ?? false;
    if (c.fragmentation.mode === 'yes' && !peer) return [msg];
    return fragment(msg, { initiatorCookie: msg.subarray(0, 8), responderCookie: msg.subarray(8, 16) }, { size: c.fragmentation.size, aggressive: c.mode === 'aggressive' });
  }

  /** Drops every partial message (the gateway stops). */
  clear(): void {
    this.reassembly.clear();
  }
}
