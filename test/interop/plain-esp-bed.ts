// Two of our gateways in a NetnsPair with the TUN data plane and no NAT: the part the plain-ESP tunnel and
// transport tests share. Both come up, a capture on B's veth holds pings both ways, iperf3 moves 8 MiB, and
// the checks every plain-ESP child must pass: protocol 50 with the child's SPIs on the wire and nothing on
// UDP 4500 or in clear, counters and "plain ESP" in `ike status`, and tshark decrypting the pings with the
// keys of `ike keylog`. The caller's `then` goes on with what is particular to its mode.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { readPcapPackets, runCommand, sleep, stopChild, type NetnsPair } from './harness/index.js';
import { OurGateway, ourPairConfig, pingThrough, startBoth, type OurEvent } from './ours.js';
import { controlRequest } from '../../ts/gateway/index.js';
import { iperf } from '../gateway/dataplane-harness.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
const PSK = 'plain-esp-test-secret';
/** B's Prometheus endpoint, on the loopback of its own namespace. */
const METRICS_PORT = 9464;

export interface PlainEspBed {
  a: OurGateway;
  b: OurGateway;
  childA: OurEvent;
  childB: OurEvent;
  /** The protocol-50 packets of the capture on B's veth. */
  esp: { src: string; payload: Buffer }[];
  spi(p: { payload: Buffer }): string;
}

export async function plainEspBed(t: TestContext, pair: NetnsPair, mode: 'tunnel' | 'transport', then: (bed: PlainEspBed) => Promise<void>): Promise<void> {
  const over = mode === 'transport' ? { type: 'transport' } : {};
  const a = new OurGateway(pair, 'a', ourPairConfig(pair.a, 'a', PSK, over));
  const b = new OurGateway(pair, 'b', { ...ourPairConfig(pair.b, 'b', PSK, over), metrics: { listen: `127.0.0.1:${METRICS_PORT}` } });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-plain-'));
  // tunnel mode carries the inner addresses, transport mode the hosts' own
  const host = (side: 'a' | 'b') => (mode === 'tunnel' ? { me: pair[side].inner, peer: pair[side].peerInner } : { me: pair[side].addr, peer: pair[side].peerAddr });
  try {
    const [childA, childB] = await startBoth(a, b);
    assert.deepEqual([childA.mode, childA.encap, childB.encap], [mode, false, false]);
    const up = a.events.find((e) => e.event === 'phase1-up')!;
    assert.deepEqual([up.natLocal, up.natRemote, up.remote], [false, false, `${pair.b.addr}:500`]);

    const pcap = path.join(dir, 'b.pcap');
    const dumpcap = pair.spawn('b', 'dumpcap', ['-q', '-i', pair.b.veth, '-f', 'esp or udp', '-w', pcap], { stdio: 'ignore' });
    await sleep(1000); // dumpcap starts (and, in transport mode, the policy routes are in by then)
    for (const side of ['a', 'b'] as const) await pingThrough(pair, side, host(side).peer, host(side).me);
    await sleep(300);
    await stopChild(dumpcap, 'SIGINT', 5000);
    const tcp = await iperf(pair, host('a').peer, host('a').me, ['-n', '8M']);
    t.diagnostic(`iperf3 through plain ESP (${mode} mode): ${tcp.gbps.toFixed(2)} Gbit/s, ${tcp.retransmits} retransmits`);
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
    const text = await runCommand(process.execPath, [IKE, 'status', '--control', a.controlPath]);
    assert.equal(text.code, 0, text.stderr);
    for (const line of text.stdout.trimEnd().split('\n')) t.diagnostic(line);
    assert.match(text.stdout, new RegExp(`child [0-9a-f]{8}_i [0-9a-f]{8}_o: aes128gcm16 ${mode}, plain ESP`));

    // the Prometheus endpoint inside B's namespace: the data plane's workers, each with the SAs SPI steering gave
    // it; together they hold the child's two SAs and counted its ESP
    const scrape = await pair.run('b', process.execPath, ['-e', `fetch('http://127.0.0.1:${METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    assert.equal(scrape.code, 0, scrape.stderr);
    const series = (name: string) => [...scrape.stdout.matchAll(new RegExp(`^ike_${name}\\{([^}]*)\\} (\\d+)$`, 'gm'))].map((m) => ({ labels: m[1]!, value: Number(m[2]) }));
    const sas = series('dataplane_worker_sas');
    assert.ok(sas.length >= 1, scrape.stdout.split('\n').filter((l) => l.includes('dataplane')).join('\n'));
    assert.equal(sas.reduce((n, s) => n + s.value, 0), 2, JSON.stringify(sas));
    const received = series('dataplane_worker_packets').filter((s) => s.labels.includes('what="esp_received"'));
    assert.ok(received.reduce((n, s) => n + s.value, 0) >= 6, JSON.stringify(received));

    // `ike keylog` for tshark: the pings in the capture decrypt to the addresses they carry
    const keys = path.join(dir, 'keys');
    const kl = await runCommand(process.execPath, [IKE, 'keylog', '--control', b.controlPath, '--out', keys]);
    assert.equal(kl.code, 0, kl.stderr);
    const ts = await runCommand('tshark', ['-n', '-r', pcap, '-o', 'esp.enable_encryption_decode:TRUE', '-Y', 'icmp', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst'], {
      env: { ...process.env, WIRESHARK_CONFIG_DIR: keys },
    });
    const icmp = ts.stdout.trim().split('\n').filter(Boolean);
    assert.ok(icmp.filter((l) => l.includes(host('a').me) && l.includes(host('a').peer)).length >= 12, `tshark decrypted: ${ts.stdout}${ts.stderr}`);

    await then({ a, b, childA, childB, esp, spi });
  } finally {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
