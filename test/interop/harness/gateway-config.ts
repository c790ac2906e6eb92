// The configuration our gateway runs with on one side of a NetnsPair, as a config file would hold it.
import type { NetnsSide } from './netns.js';

/**
 * Side `side` of the pair with one connection 's' to the other side: PSK, aes128-sha1-modp2048 and
 * aes128-sha1, /32 selectors on the two inner addresses. `more` adds or overrides connection fields
 * (pfs, retransmit, ...). What the load interop test and the load benchmark against strongSwan run.
 */
export function pairGatewayConfig(side: NetnsSide, psk: string, more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { address: side.addr, port: 500, nattPort: 4500 },
    connections: {
      s: {
        remote: side.peerAddr,
        auth: { psk },
        ike: ['aes128-sha1-modp2048'],
        esp: ['aes128-sha1'],
        localTs: side.inner + '/32',
        remoteTs: side.peerInner + '/32',
        ...more,
      },
    },
  };
}
