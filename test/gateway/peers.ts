// Two gateways on 127.0.0.1 with their own ports: the configuration the loopback, control, load and flood
// tests share (not a test file itself).
import assert from 'node:assert/strict';
import { parseConfig, type GatewayConfig } from '../../ts/index.js';

/** The JSON of a gateway on 127.0.0.1:listenPort whose one connection `peer` talks to 127.0.0.1:remotePort. */
export function peerJson(listenPort: number, remotePort: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { address: '127.0.0.1', port: listenPort, nattPort: listenPort + 1 },
    connections: {
      peer: {
        remote: '127.0.0.1',
        remotePort,
        remoteNattPort: remotePort + 1,
        auth: { psk: 'loopback secret' },
        localId: `@gw${listenPort}`,
        remoteId: `@gw${remotePort}`,
        ike: ['aes128-sha256-ecp256'],
        retransmit: { tries: 2, timeout: '0.2s', factor: 1.5 },
        ...over,
      },
    },
  };
}

export function peerConfig(listenPort: number, remotePort: number, over: Record<string, unknown> = {}): GatewayConfig {
  const r = parseConfig(peerJson(listenPort, remotePort, over), { baseDir: '.', env: {} });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.config;
}

/** Polls until pred() holds; throws after ms. */
export async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
