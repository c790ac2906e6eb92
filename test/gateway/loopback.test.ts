// Two of our gateways over real UDP sockets on loopback: the runtime (sockets, table, timers, events)
// around the phase 1 machines, and the `ike gateway` command's exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig, type GatewayConfig } from '../../ts/gateway/index.js';
import type { Phase1StatusReport } from '../../ts/gateway/status.js';
import { formatStatus } from '../../ts/cli/status.js';

import { events, peerConfig, until } from './peers.js';

const config = peerConfig;
const base = 20000 + (process.pid % 2000) * 4;




test('two gateways over UDP on loopback: main mode with FQDN identities, events on both sides', async () => {
  const r = new Gateway(config(base, base + 2, { initiate: false }));
  const i = new Gateway(config(base + 2, base, { initiate: true }));
  const er = events(r);
  const ei = events(i);
  await r.start();
  await i.start();
  try {
    await until(() => er.up.length === 1 && ei.up.length === 1, 10_000);
    assert.equal(ei.up[0]!.initiator, true);
    assert.equal(er.up[0]!.remoteId, `gw${base + 2}`);
    assert.equal(ei.up[0]!.remoteId, `gw${base}`);
    assert.equal(ei.up[0]!.cookieI, er.up[0]!.cookieI);
    assert.equal(i.phase1Sas().length, 1);
    assert.deepEqual(ei.errors, []);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('wrong key over UDP: the responder reports the mismatch, the initiator gets the notify or times out with the likely cause', async () => {
  const r = new Gateway(config(base, base + 2, { initiate: false }));
  const i = new Gateway(config(base + 2, base, { initiate: true, auth: { psk: 'another secret' } }));
  const er = events(r);
  const ei = events(i);
  await r.start();
  await i.start();
  try {
    await until(() => er.errors.length > 0 && ei.errors.length > 0, 10_000);
    assert.equal(er.errors[0]!.kind, 'PSK_MISMATCH');
    assert.match(ei.errors[0]!.message, /pre-shared key mismatch/);
    assert.deepEqual([er.up, ei.up], [[], []]);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('forced encapsulation moves IKE to the NAT-T port after message 4', async () => {
  const r = new Gateway(config(base, base + 2, { initiate: false }));
  const i = new Gateway(config(base + 2, base, { initiate: true, encap: true }));
  const er = events(r);
  const ei = events(i);
  await r.start();
  await i.start();
  try {
    await until(() => er.up.length === 1 && ei.up.length === 1, 10_000);
    assert.equal(ei.up[0]!.remote.port, base + 1, 'initiator talks to the NAT-T port');
    assert.equal(er.up[0]!.remote.port, base + 3, 'responder followed to the NAT-T port');
    assert.deepEqual(ei.up[0]!.natDetected, { local: false, remote: false }, 'forced encapsulation is no NAT');
    const st = i.status().sas[0] as Phase1StatusReport;
    assert.equal(st.nat.encapForced, true);
    assert.equal(st.nat.local, false);
    assert.match(formatStatus(i.status()), /nat none, UDP encapsulation forced, IKE on the NAT-T port/);
  } finally {
    await i.stop();
    await r.stop();
  }
});

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

test('ike gateway: configuration errors are one line each and exit with code 2; usage errors too', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-cli-'));
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ listen: { port: '500x' }, connections: { a: { remote: '10.0.0.1', ike: ['aes129-sha1-modp2048'] } } }));
  const r = spawnSync(process.execPath, [IKE, 'gateway', '--config', file], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.length >= 3, r.stderr);
  assert.ok(lines.some((l) => /listen\.port/.test(l)));
  assert.ok(lines.some((l) => /connections\.a\.ike\[0\].*aes129/.test(l)));
  assert.ok(lines.some((l) => /connections\.a\.auth/.test(l)));
  for (const args of [['gateway'], ['nope'], ['gateway', '--config', file, '--bogus']]) {
    const u = spawnSync(process.execPath, [IKE, ...args], { encoding: 'utf8' });
    assert.equal(u.status, 2, args.join(' '));
    assert.equal(u.stderr.trim().split('\n').length, 1, u.stderr);
  }
  const h = spawnSync(process.execPath, [IKE, '--help'], { encoding: 'utf8' });
  assert.equal(h.status, 0);
  assert.match(h.stdout, /ike gateway|gateway --config/);
});

test('quick mode over UDP: child SAs with crossed SPIs and keys, ESP both ways, then a delete tears both sides down', async () => {
  for (const [esp, pfs] of [['aes128gcm16', true], ['aes256-sha256', false]] as const) {
    const over = { esp: [esp], pfs, localTs: '10.1.0.0/24', remoteTs: '10.2.0.0/24' };
    const r = new Gateway(config(base, base + 2, { ...over, localTs: '10.2.0.0/24', remoteTs: '10.1.0.0/24', initiate: false }));
    const i = new Gateway(config(base + 2, base, { ...over, initiate: true }));
    const er = events(r);
    const ei = events(i);
    await r.start();
    await i.start();
    try {
      await until(() => er.childUp.length === 1 && ei.childUp.length === 1, 10_000);
      const a = ei.childUp[0]!;
      const b = er.childUp[0]!;
      assert.equal(a.spiIn, b.spiOut);
      assert.equal(a.spiOut, b.spiIn);
      assert.equal(a.proposal, pfs ? `${esp}-ecp256` : esp);
      assert.equal(a.localTs, '10.1.0.0/24');
      assert.equal(b.localTs, '10.2.0.0/24');
      assert.deepEqual(a.child.outbound, b.child.inbound);
      // traffic the host carries itself: seal with the SA, UDP to the peer's NAT-T port, opened there
      const packet = Buffer.from('4500001c0000000040010000 0a010001 0a020001 0800f7ff00000000'.replace(/ /g, ''), 'hex');
      i.sendEsp('peer', packet, 4);
      r.sendEsp('peer', packet, 4);
      await until(() => er.esp.length === 1 && ei.esp.length === 1, 5000);
      assert.deepEqual(er.esp[0]!.payload, packet);
      assert.equal(er.esp[0]!.nextHeader, 4);
      assert.deepEqual(ei.esp[0]!.payload, packet);
      // a delete from the initiator removes the child and the ISAKMP SA on both sides
      i.delete('peer');
      await until(() => er.down.length === 1 && er.childDown.length === 1, 5000);
      assert.equal(er.childDown[0]!.reason, 'deleted by the peer');
      assert.equal(ei.childDown[0]!.reason, 'deleted locally');
      assert.deepEqual(r.childSas(), []);
      assert.deepEqual(i.childSas(), []);
      assert.deepEqual(r.phase1Sas(), []);
      assert.deepEqual([er.errors, ei.errors], [[], []]);
    } finally {
      await i.stop();
      await r.stop();
    }
  }
});

test('our own child rekey: a new child before the lifetime ends, the old one deleted after the overlap, no ESP packet lost', { timeout: 60_000 }, async () => {
  // The config refuses ESP lifetimes under 60 s; the runtime takes what it is given.
  const short = (c: GatewayConfig) => {
    c.connections[0]!.lifetime.espSeconds = 3;
    return c;
  };
  const over = { esp: ['aes128gcm16'] };
  const r = new Gateway(short(config(base, base + 2, { ...over, initiate: false })));
  const i = new Gateway(short(config(base + 2, base, { ...over, initiate: true })));
  const er = events(r);
  const ei = events(i);
  await r.start();
  await i.start();
  try {
    await until(() => ei.childUp.length === 1, 10_000);
    // traffic every 20 ms across the rekey, each side sealing with its current outbound SA
    let sent = 0;
    const timer = setInterval(() => {
      const p = Buffer.alloc(40);
      p.writeUInt32BE(sent++, 36);
      i.sendEsp('peer', p, 4);
    }, 20);
    await until(() => ei.childUp.length === 2 && ei.childDown.length >= 1, 20_000);
    clearInterval(timer);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(ei.childUp[1]!.rekey, true);
    assert.equal(ei.childDown[0]!.spiIn, ei.childUp[0]!.spiIn);
    // both sides drop the replaced child when it expires: the peer's Delete may come first (a loaded machine)
    assert.match(ei.childDown[0]!.reason, /replaced by a rekey|lifetime expired|deleted by the peer/);
    assert.ok(sent > 100, `sent ${sent}`);
    assert.equal(er.esp.length, sent, 'every packet sealed before, during and after the rekey was opened');
    assert.deepEqual(new Set(er.esp.map((e) => e.payload.readUInt32BE(36))).size, sent);
    assert.deepEqual([er.errors, ei.errors], [[], []]);
  } finally {
    await i.stop();
    await r.stop();
  }
});

test('IPv6: two gateways on ::1 bring up an IPv6 tunnel (ID_IPV6_ADDR_SUBNET selectors) and carry ESP', async () => {
  const v6 = (p: number, q: number, init: boolean): GatewayConfig => {
    const r = parseConfig(
      {
        listen: { address: '::1', port: p, nattPort: p + 1 },
        connections: {
          c: {
            remote: '::1', remotePort: q, remoteNattPort: q + 1, auth: { psk: 'v6 secret' }, ike: ['aes128-sha256-ecp256'], esp: ['aes128gcm16'],
            localTs: init ? 'fd00:1::/64' : 'fd00:2::/64', remoteTs: init ? 'fd00:2::/64' : 'fd00:1::/64', initiate: init,
          },
        },
      },
      { baseDir: '.', env: {} },
    );
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    return r.config;
  };
  const r = new Gateway(v6(base, base + 2, false));
  const i = new Gateway(v6(base + 2, base, true));
  const er = events(r);
  const ei = events(i);
  await r.start();
  await i.start();
  try {
    await until(() => er.childUp.length === 1 && ei.childUp.length === 1, 10_000);
    assert.equal(ei.childUp[0]!.localTs, 'fd00:1::/64');
    assert.equal(er.childUp[0]!.localTs, 'fd00:2::/64');
    assert.equal(ei.up[0]!.remote.address, '::1');
    i.sendEsp('c', Buffer.alloc(60, 0x60), 41);
    await until(() => er.esp.length === 1, 5000);
    assert.equal(er.esp[0]!.nextHeader, 41);
  } finally {
    await i.stop();
    await r.stop();
  }
});
