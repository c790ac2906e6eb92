// The gateway configuration the loopback benchmarks share (ike bench gateway, ike bench memory --gateway,
// ike soak): one connection between two gateways on 127.0.0.1, parsed like a config file would be.
import { parseConfig, type GatewayConfig } from '../ts/gateway/index.js';

/**
 * A gateway on 127.0.0.1 (listen: IKE and NAT-T ports) with one connection `name` to the peer's ports, PSK
 * `psk`, IDs `@<localId>` / `@<remoteId>`, plus the connection fields in `more` (proposals, selectors, ...).
 */
export function loopbackConfig(
  name: string,
  listen: readonly [number, number],
  remote: readonly [number, number],
  ids: readonly [string, string],
  psk: string,
  more: Record<string, unknown>,
): GatewayConfig {
  const r = parseConfig(
    {
      listen: { address: '127.0.0.1', port: listen[0], nattPort: listen[1] },
      connections: {
        [name]: { remote: '127.0.0.1', remotePort: remote[0], remoteNattPort: remote[1], auth: { psk }, localId: `@${ids[0]}`, remoteId: `@${ids[1]}`, ...more },
      },
    },
    { baseDir: '.', env: {} },
  );
  if (!r.ok) throw new RangeError(r.errors.join('\n'));
  return r.config;
}
