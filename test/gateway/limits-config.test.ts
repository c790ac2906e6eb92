// The config's `limits` section (config/limits.ts): parsed into admission and error limits, every problem
// named with its key path, and the gateway runs with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gateway, parseConfig } from '../../ts/gateway/index.js';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { ikeOffer, parseIkeProposal } from '../../ts/ike/index.js';
import { encodeMessage, ExchangeType, ISAKMP_VERSION } from '../../ts/isakmp/index.js';
import { peerJson, until } from './peers.js';

function message1(): Buffer {
  const p = parseIkeProposal('aes128-sha256-ecp256');
  assert.ok(p.ok);
  return encodeMessage({
    header: { initiatorCookie: randomBytes(8), responderCookie: Buffer.alloc(8), nextPayload: 0, version: ISAKMP_VERSION, exchangeType: ExchangeType.IDENTITY_PROTECTION, flags: 0, messageId: 0, length: 0 },
    payloads: [{ type: 1, doi: 1, situation: Buffer.from([0, 0, 0, 1]), proposals: [ikeOffer(p.value)] }],
  });
}

test('config limits: parsed with units; unknown keys and bad values are named', () => {
  const ok = parseConfig({ ...peerJson(500, 501), limits: { halfOpen: 2000, halfOpenPerPeer: 10, busyThreshold: 500, busyHalfOpenPerPeer: 1, busyNewPerSecond: 300, busyAggressivePerSecond: 5, recentSeconds: '2h', errors: { perSource: 1, perKind: 10, window: '30s' } } }, { baseDir: '.', env: {} });
  assert.ok(ok.ok, ok.ok ? '' : ok.errors.join('\n'));
  assert.deepEqual(ok.config.limits, {
    admission: { maxHalfOpen: 2000, maxHalfOpenPerPeer: 10, busyThreshold: 500, busyHalfOpenPerPeer: 1, busyNewPerSecond: 300, busyAggressivePerSecond: 5, recentSeconds: 7200 },
    errors: { perSource: 1, perKind: 10, windowMs: 30_000 },
  });
  const bad = parseConfig({ ...peerJson(500, 501), limits: { halfOpen: 0, halfopenPerPeer: 3, recentSeconds: 'soon', errors: { perKind: -1 } } }, { baseDir: '.', env: {} });
  assert.equal(bad.ok, false);
  const text = bad.ok ? '' : bad.errors.join('\n');
  assert.match(text, /limits\.halfOpen/);
  assert.match(text, /limits.*halfopenPerPeer/);
  assert.match(text, /limits\.recentSeconds/);
  assert.match(text, /limits\.errors\.perKind/);
});

test('config limits: the gateway admits with them (halfOpen 3: five message 1s leave three, the oldest dropped)', async () => {
  const r = parseConfig({ ...peerJson(0, 501), listen: { address: '127.0.0.1', port: 27900 + (process.pid % 500) * 2, nattPort: 27901 + (process.pid % 500) * 2 }, limits: { halfOpen: 3, busyThreshold: 100 } }, { baseDir: '.', env: {} });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  const gw = new Gateway(r.config);
  gw.on('error', () => {});
  await gw.start();
  const sock = dgram.createSocket('udp4');
  try {
    for (let k = 0; k < 5; k++) sock.send(message1(), gw.boundPorts.ike, '127.0.0.1');
    await until(() => gw.status().admission.admitted === 5, 3000, 'five message 1s admitted');
    const s = gw.status();
    assert.equal(s.halfOpen, 3, 'limits.halfOpen');
    assert.equal(s.admission.evicted, 2, 'the two oldest unanswered went');
  } finally {
    sock.close();
    await gw.stop();
  }
});
