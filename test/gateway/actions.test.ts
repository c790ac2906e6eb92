// closeAction / dpd.action (ts/gateway/config/actions.ts) and what `ike status` says of a connection that should
// be up and is not (issue 19 point 7): parsed with one-line errors, then two gateways on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, parseConfig } from '../../ts/gateway/index.js';
import type { GatewayStatusReport } from '../../ts/gateway/status.js';
import { formatStatus } from '../../ts/cli/status.js';
import { events, peerConfig, peerJson, until } from './peers.js';

const base = 29000 + (process.pid % 2000) * 4;

function errors(over: Record<string, unknown>): string[] {
  const r = parseConfig(peerJson(500, 500, over), { baseDir: '.', env: {} });
  return r.ok ? [] : r.errors;
}

test('closeAction and dpd.action: defaults none / clear, restart accepted, trap and hold refused with the reason', () => {
  const ok = parseConfig(peerJson(500, 500), { baseDir: '.', env: {} });
  assert.ok(ok.ok);
  assert.equal(ok.config.connections[0]!.closeAction, 'none');
  assert.equal(ok.config.connections[0]!.dpd.action, 'clear');
  const r = parseConfig(peerJson(500, 500, { closeAction: 'restart', dpd: { delay: '10s', action: 'restart' } }), { baseDir: '.', env: {} });
  assert.ok(r.ok);
  assert.equal(r.config.connections[0]!.closeAction, 'restart');
  assert.equal(r.config.connections[0]!.dpd.action, 'restart');
  assert.deepEqual(errors({ closeAction: 'start' }), [`connections.peer.closeAction: must be one of 'none', 'restart', got "start" (did you mean 'restart'?)`]);
  assert.deepEqual(errors({ dpd: { action: 'hold' } }), [`connections.peer.dpd.action: must be one of 'clear', 'restart': 'hold' needs trap policies in the kernel, which this engine does not install`]);
  assert.deepEqual(errors({ closeAction: 'trap' }), [`connections.peer.closeAction: must be one of 'none', 'restart': 'trap' needs trap policies in the kernel, which this engine does not install`]);
  assert.deepEqual(errors({ remote: '%any', closeAction: 'restart', dpd: { action: 'restart' } }), [
    `connections.peer.closeAction: cannot restart a connection with remote "%any"; give the peer's address or use 'none'`,
    `connections.peer.dpd.action: cannot restart a connection with remote "%any"; give the peer's address or use 'clear'`,
  ]);
});

for (const closeAction of ['restart', 'none'] as const) {
  test(`closeAction ${closeAction}: the peer deletes the connection; ${closeAction === 'restart' ? 'we bring it up again' : 'it stays down and ike status says so'}`, { timeout: 30_000 }, async () => {
    const b = base + (closeAction === 'restart' ? 0 : 1000);
    const r = new Gateway(peerConfig(b, b + 2, { esp: ['aes128gcm16'], initiate: false }));
    const i = new Gateway(peerConfig(b + 2, b, { esp: ['aes128gcm16'], initiate: true, closeAction }));
    const evI = events(i);
    const evR = events(r);
    await r.start();
    await i.start();
    try {
      await until(() => evI.childUp.length === 1 && evR.childUp.length === 1, 10_000);
      assert.deepEqual((i.status() as GatewayStatusReport).expected, [{ connection: 'peer', state: 'up' }]);
      r.delete('peer', 'deleted by the operator'); // child Deletes, then the ISAKMP Delete
      await until(() => evI.down.length === 1, 5_000);
      if (closeAction === 'restart') {
        await until(() => evI.childUp.length === 2 && evR.childUp.length === 2, 10_000, 'the connection restarted');
        await until(() => i.phase1Sas().length === 1 && i.childSas().length === 1, 5_000);
        assert.deepEqual((i.status() as GatewayStatusReport).expected, [{ connection: 'peer', state: 'up' }]);
        i.sendEsp('peer', Buffer.alloc(40, 1), 4);
        await until(() => evR.esp.length === 1, 2_000);
      } else {
        await new Promise((res) => setTimeout(res, 500));
        assert.equal(evI.childUp.length, 1, 'no restart');
        const st = i.status() as GatewayStatusReport;
        assert.deepEqual(st.expected, [{ connection: 'peer', state: 'down' }]);
        assert.match(formatStatus(st), /^connection peer should be up but is not: no SA/m);
      }
      assert.deepEqual(evI.childDown.map((d) => d.reason), ['deleted by the peer']);
      assert.deepEqual([...evI.errors, ...evR.errors], []);
    } finally {
      await i.stop();
      await r.stop();
    }
  });
}
