// Two gateways on 127.0.0.1 with their own ports: the configuration the loopback, control, load and flood
// tests share (not a test file itself).
import assert from 'node:assert/strict';
import { parseConfig, type ChildDownEvent, type ChildUpEvent, type EspPacketEvent, type Gateway, type GatewayConfig, type GatewayErrorEvent, type Phase1DownEvent, type Phase1UpEvent } from '../../ts/gateway/index.js';

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

/** Polls until pred() holds; fails after ms (saying what it waited for, if told). */
export async function until(pred: () => boolean, ms: number, what?: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail(what === undefined ? 'timed out' : `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records a gateway's events, each kind in its own array. */
export function events(gw: Gateway) {
  const up: Phase1UpEvent[] = [];
  const down: Phase1DownEvent[] = [];
  const childUp: ChildUpEvent[] = [];
  const childDown: ChildDownEvent[] = [];
  const esp: EspPacketEvent[] = [];
  const errors: GatewayErrorEvent[] = [];
  gw.on('phase1-up', (e) => up.push(e));
  gw.on('phase1-down', (e) => down.push(e));
  gw.on('child-up', (e) => childUp.push(e));
  gw.on('child-down', (e) => childDown.push(e));
  gw.on('esp-packet', (e) => esp.push(e));
  gw.on('error', (e) => errors.push(e));
  return { up, down, childUp, childDown, esp, errors };
}
