// NAT traversal end to end: our gateway A behind a masquerading router N (which maps source ports too),
// our gateway B on the far side, both with the TUN data plane. NAT-D finds the NAT, IKE floats to 4500,
// the child SA is ESP in UDP, `ping` crosses the tunnel both ways through the NAT, A's keepalives (1 s)
// reach B's data plane, and `ike status` over each gateway's control socket shows it all.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { NatTopology, interopSkipReason, iptablesAvailable, netnsAvailable, runCommand, sleep, stopChild, tsharkAvailable } from './harness/index.js';
import { OurGateway, pingThrough, startBoth } from './ours.js';
import { controlRequest } from '../../ts/gateway/index.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? iptablesAvailable() : netns, tsharkAvailable());
const PSK = 'nat-test-secret';
const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

let topo: NatTopology;
/** A fresh topology per test (no NAT mappings left from the one before). */
beforeEach(async () => {
  if (!skip) topo = await NatTopology.create({ prefix: 'iknat' });
});
afterEach(async () => {
  await topo?.destroy();
});

function config(side: 'a' | 'b', over: Record<string, unknown> = {}) {
  const me = topo[side];
  const other = side === 'a' ? topo.b : topo.a;
  return {
    listen: { address: me.addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      nat: {
        // B sees A only as the router's public address
        remote: side === 'a' ? topo.b.addr : topo.publicAddr,
        auth: { psk: PSK },
        localId: `@${side}.nat.test`,
        remoteId: `@${side === 'a' ? 'b' : 'a'}.nat.test`,
        ike: ['aes128-sha256-modp2048'],
        esp: ['aes128gcm16'],
        localTs: `${me.inner}/32`,
        remoteTs: `${other.inner}/32`,
        initiate: side === 'a',
        natKeepalive: side === 'a' ? '1s' : 0,
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
        ...over,
      },
    },
  };
}

async function ping(from: 'a' | 'b'): Promise<void> {
  const me = topo[from];
  const dst = (from === 'a' ? topo.b : topo.a).inner;
  await pingThrough(topo, from, dst, me.inner, `\n${await topo.natRules()}`);
}

test('behind a port-mapping NAT: detection, float to 4500, ESP in UDP, ping both ways, keepalives reach the peer', { skip, timeout: 60_000 }, async (t) => {
  const a = new OurGateway(topo, 'a', config('a'));
  const b = new OurGateway(topo, 'b', config('b'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-nat-'));
  try {
    const [upA, upB] = await startBoth(a, b, 'phase1-up');
    // A knows it is behind a NAT, B that A is; IKE went to 4500, and B talks to the port the NAT picked
    assert.equal(upA.natLocal, true);
    assert.equal(upB.natRemote, true);
    assert.equal(upA.remote, `${topo.b.addr}:4500`);
    const [addr, port] = String(upB.remote).split(':');
    assert.equal(addr, topo.publicAddr, 'B sees A as the router');
    assert.ok(Number(port) >= 41000 && Number(port) <= 41999, `B sees A's NAT-T port mapped by the router: ${upB.remote}`);

    const childA = await a.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
    const childB = await b.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
    assert.equal(childA.event, 'child-up', JSON.stringify(childA));
    assert.equal(childB.event, 'child-up', JSON.stringify(childB));
    assert.equal(childA.encap, true);
    assert.equal(childB.encap, true);
    assert.equal(childA.spiOut, childB.spiIn);

    // B's side of the wire, to decrypt with the keys `ike keylog` hands out
    const pcap = path.join(dir, 'b.pcap');
    const dumpcap = topo.spawn('b', 'dumpcap', ['-q', '-i', topo.veths.bn, '-f', 'udp', '-w', pcap], { stdio: 'ignore' });
    await sleep(1000);
    await ping('a');
    await ping('b');
    await sleep(300);
    await stopChild(dumpcap, 'SIGINT', 5000);

    // keepalives every second from A; B's data plane counts those it receives
    await new Promise((r) => setTimeout(r, 2500));
    const sa = (await controlRequest(a.controlPath, { cmd: 'status' })).status;
    const sb = (await controlRequest(b.controlPath, { cmd: 'status' })).status;
    assert.equal(sa.sas[0]!.nat.keepaliveSeconds, 1);
    assert.ok(sa.sas[0]!.nat.keepalivesSent >= 2, `A sent ${sa.sas[0]!.nat.keepalivesSent} keepalives`);
    assert.ok(sb.dataplane && sb.dataplane.keepalivesReceived >= 2, `B's data plane received ${JSON.stringify(sb.dataplane)}`);
    // both ends count the pings (A's 3+ echo requests out, replies in; B the other way round)
    const ca = sa.sas[0]!.children[0]!;
    const cb = sb.sas[0]!.children[0]!;
    assert.ok(ca.out.packets >= 6 && ca.in.packets >= 6, `A's counters ${JSON.stringify(ca)}`);
    assert.ok(cb.in.packets >= 6 && cb.out.packets >= 6, `B's counters ${JSON.stringify(cb)}`);
    assert.equal(sb.sas[0]!.remote.address, topo.publicAddr);
    // what an operator sees: `ike status` from the root namespace (the control socket is a file)
    const text = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [IKE, 'status', '--control', a.controlPath], { encoding: 'utf8' }, (e, out) => (e ? reject(e) : resolve(out))),
    );
    for (const line of text.trimEnd().split('\n')) t.diagnostic(line);
    // only A is behind the NAT: with plain ESP available nobody forces encapsulation (which fakes NAT-D)
    assert.match(text, /nat local, IKE on the NAT-T port, keepalive every 1s/);
    assert.match(text, /child [0-9a-f]{8}_i [0-9a-f]{8}_o: aes128gcm16 tunnel in UDP/);

    // `ike keylog` and the tshark line it prints: the pings in the capture decrypt
    const keys = path.join(dir, 'keys');
    const kl = await runCommand(process.execPath, [IKE, 'keylog', '--control', b.controlPath, '--out', keys]);
    assert.equal(kl.code, 0, kl.stderr);
    assert.match(kl.stdout, /WIRESHARK_CONFIG_DIR=/);
    const ts = await runCommand('tshark', ['-n', '-r', pcap, '-o', 'esp.enable_encryption_decode:TRUE', '-Y', 'icmp', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst'], {
      env: { ...process.env, WIRESHARK_CONFIG_DIR: keys },
    });
    const icmp = ts.stdout.trim().split('\n').filter(Boolean);
    // each row: outer then inner addresses; the inner ones prove decryption
    assert.ok(icmp.filter((l) => l.includes(topo.a.inner) && l.includes(topo.b.inner)).length >= 12, `tshark decrypted: ${ts.stdout}${ts.stderr}`);
  } finally {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the NAT mapping moves: an IKE message from the new port moves ESP there too', { skip, timeout: 60_000 }, async () => {
  // The router forgets a mapping idle for 3 s; A's DPD (every 5 s, keepalives off) then leaves through a new
  // one with a new random port. B must send ESP to that port from then on, or nothing reaches A.
  await topo.setUdpTimeout(3);
  const a = new OurGateway(topo, 'a', config('a', { natKeepalive: 0, dpd: { delay: '5s', timeout: '60s' } }));
  const b = new OurGateway(topo, 'b', config('b', { natKeepalive: 0 }));
  try {
    await b.start();
    await a.start();
    const up = await b.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
    assert.equal(up.event, 'child-up', JSON.stringify(up));
    await a.waitFor((e) => e.event === 'child-up', 10_000);
    const first = (await controlRequest(b.controlPath, { cmd: 'status' })).status.sas[0]!.remote;
    let now = first;
    const deadline = Date.now() + 20_000;
    while (now.port === first.port && Date.now() < deadline) {
      await sleep(100);
      now = (await controlRequest(b.controlPath, { cmd: 'status' })).status.sas[0]!.remote;
    }
    assert.notEqual(now.port, first.port, `the mapping never moved (still ${first.address}:${first.port})`);
    assert.equal(now.address, topo.publicAddr);
    // at once, while the new mapping is fresh: B -> A goes to the new port (and pings keep it alive)
    await ping('b');
    await ping('a');
    assert.deepEqual(b.events.filter((e) => e.event === 'error'), []);
  } finally {
    await a.stop();
    await b.stop();
  }
});
