// Plain ESP (IP protocol 50) between two of our gateways with the TUN data plane, no NAT between them and
// `encap` off: the child SAs are negotiated without UDP encapsulation and the data plane sends and receives
// ESP on its raw socket. ping both ways and iperf3 TCP through the tunnel; the capture on the wire holds
// protocol-50 packets with our SPIs and no ESP in UDP; tshark, given the keys of `ike keylog`, decrypts them
// (an independent reading of the format); `ike status` says "plain ESP" per child.
// strongSwan cannot be the peer here: its user-space ESP (kernel-libipsec) speaks ESP in UDP only, and this
// kernel has no XFRM ESP for its kernel-netlink interface.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsPair, interopSkipReason, netnsAvailable, readPcapPackets, runCommand, sleep, stopChild, tsharkAvailable } from './harness/index.js';
import { OurGateway } from './ours.js';
import { controlRequest } from '../../ts/gateway/index.js';
import { iperf } from '../gateway/dataplane-harness.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, tsharkAvailable());
const PSK = 'plain-esp-test-secret';
const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikesp' });
});
after(async () => {
  await pair?.destroy();
});

function ours(side: 'a' | 'b') {
  const me = pair[side];
  return {
    listen: { address: me.addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      s: {
        remote: me.peerAddr,
        auth: { psk: PSK },
        ike: ['aes128-sha256-modp2048'],
        esp: ['aes128gcm16'],
        localTs: `${me.inner}/32`,
        remoteTs: `${me.peerInner}/32`,
        initiate: side === 'a',
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
      },
    },
  };
}

async function ping(from: 'a' | 'b'): Promise<void> {
  const me = pair[from];
  let r = await pair.ping(from, me.peerInner, { src: me.inner, count: 3 });
  if (r.code !== 0) r = await pair.ping(from, me.peerInner, { src: me.inner, count: 3 }); // the far side's install may lag
  assert.equal(r.code, 0, `ping ${me.inner} -> ${me.peerInner} failed: ${r.stdout}${r.stderr}`);
}

test('two of our gateways, no NAT: plain ESP (protocol 50) tunnel, ping and iperf3 through it, tshark decrypts it with our keylog', { skip, timeout: 120_000 }, async (t) => {
  const a = new OurGateway(pair, 'a', ours('a'));
  const b = new OurGateway(pair, 'b', ours('b'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-plain-'));
  try {
    await b.start();
    await a.start();
    const childA = await a.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
    const childB = await b.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
    assert.equal(childA.event, 'child-up', JSON.stringify(childA));
    assert.equal(childB.event, 'child-up', JSON.stringify(childB));
    assert.deepEqual([childA.mode, childA.encap, childB.encap], ['tunnel', false, false]);
    const up = a.events.find((e) => e.event === 'phase1-up')!;
    assert.deepEqual([up.natLocal, up.natRemote, up.remote], [false, false, `${pair.b.addr}:500`]);

    const pcap = path.join(dir, 'b.pcap');
    const dumpcap = pair.spawn('b', 'dumpcap', ['-q', '-i', pair.b.veth, '-f', 'esp or udp', '-w', pcap], { stdio: 'ignore' });
    await sleep(1000);
    await ping('a');
    await ping('b');
    await sleep(300);
    await stopChild(dumpcap, 'SIGINT', 5000);
    const tcp = await iperf(pair, pair.a.peerInner, pair.a.inner, ['-n', '8M']);
    t.diagnostic(`iperf3 through plain ESP: ${tcp.gbps.toFixed(2)} Gbit/s, ${tcp.retransmits} retransmits`);
    assert.ok(tcp.bytes > 4_000_000, `iperf3 moved ${tcp.bytes} octets`);

    // on the wire: protocol 50 with the SPIs of the child, both ways; no ESP in UDP
    const packets = readPcapPackets(pcap);
    const esp = packets.filter((p) => p.protocol === 50);
    const spi = (p: { payload: Buffer }) => p.payload.subarray(0, 4).toString('hex');
    assert.ok(esp.filter((p) => p.src === pair.a.addr && spi(p) === childA.spiOut).length >= 6, `ESP a -> b: ${esp.length} protocol-50 packets`);
    assert.ok(esp.filter((p) => p.src === pair.b.addr && spi(p) === childB.spiOut).length >= 6, 'ESP b -> a');
    assert.equal(packets.filter((p) => p.protocol === 17 && p.payload.readUInt16BE(2) === 4500).length, 0, 'nothing on UDP 4500');
    assert.equal(packets.filter((p) => p.protocol === 1).length, 0, 'no ICMP in clear');

    // per child: counters and "plain ESP" in `ike status`
    const sa = (await controlRequest(a.controlPath, { cmd: 'status' })).status;
    const ca = sa.sas[0]!.children[0]!;
    assert.equal(ca.encapsulation, false);
    assert.ok(ca.out.packets >= 6 && ca.in.packets >= 6, `A's counters ${JSON.stringify(ca)}`);
    const text = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [IKE, 'status', '--control', a.controlPath], { encoding: 'utf8' }, (e, out) => (e ? reject(e) : resolve(out))),
    );
    for (const line of text.trimEnd().split('\n')) t.diagnostic(line);
    assert.match(text, /child [0-9a-f]{8}_i [0-9a-f]{8}_o: aes128gcm16 tunnel, plain ESP/);

    // `ike keylog` for tshark: the pings in the capture decrypt to the inner addresses
    const keys = path.join(dir, 'keys');
    const kl = await runCommand(process.execPath, [IKE, 'keylog', '--control', b.controlPath, '--out', keys]);
    assert.equal(kl.code, 0, kl.stderr);
    const ts = await runCommand('tshark', ['-n', '-r', pcap, '-o', 'esp.enable_encryption_decode:TRUE', '-Y', 'icmp', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst'], {
      env: { ...process.env, WIRESHARK_CONFIG_DIR: keys },
    });
    const icmp = ts.stdout.trim().split('\n').filter(Boolean);
    assert.ok(icmp.filter((l) => l.includes(pair.a.inner) && l.includes(pair.b.inner)).length >= 12, `tshark decrypted: ${ts.stdout}${ts.stderr}`);

    // bad input on the raw socket, sent from A's namespace: a replay of a genuine packet, a tampered copy, an
    // unknown SPI, a runt. B's data plane reads all of them, delivers none, and the tunnel still carries traffic.
    const genuine = esp.find((p) => p.src === pair.a.addr && spi(p) === childA.spiOut)!.payload;
    const tampered = Buffer.from(genuine);
    tampered[tampered.length - 1]! ^= 1;
    const unknown = Buffer.from(genuine);
    unknown.writeUInt32BE(0xdeadbeef, 0);
    const inB = async () => {
      const st = (await controlRequest(b.controlPath, { cmd: 'status' })).status;
      return { delivered: st.sas[0]!.children[0]!.in.packets, esp: st.dataplane!.espReceived, drops: st.dataplane!.drops };
    };
    const before = await inB();
    const inject = 'import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)\nfor h in sys.argv[2:]: s.sendto(bytes.fromhex(h), (sys.argv[1], 0))';
    const sent = await pair.run('a', 'python3', ['-c', inject, pair.b.addr, ...[genuine, tampered, unknown, Buffer.from('0102', 'hex')].map((x) => x.toString('hex'))]);
    assert.equal(sent.code, 0, sent.stderr);
    await sleep(300);
    const after = await inB();
    // espReceived counts only what authenticated; the three ESP packets are drops, each by its reason (the
    // tampered copy carries the genuine packet's sequence number: the replay check, which comes first, drops it)
    assert.equal(after.esp, before.esp, 'none of them counted as received');
    const d = (k: keyof typeof before.drops) => after.drops[k] - before.drops[k];
    const why = `drops before ${JSON.stringify(before.drops)} after ${JSON.stringify(after.drops)}`;
    assert.equal(d('unknownSpi'), 1, why);
    assert.equal(d('replay') + d('authFailed'), 2, why);
    assert.equal(d('malformed'), 1, `the runt: ${why}`);
    assert.equal(after.delivered, before.delivered, 'none of them delivered');
    await ping('a');
  } finally {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
