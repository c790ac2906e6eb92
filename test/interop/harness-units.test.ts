// The harness's parsers on their own (no root, no strongSwan needed): swanctl --pretty output,
// charon's key log, pcap/pcapng files (against the committed strongSwan captures), RFC 3948
// classification of port 4500 datagrams, and the tshark key options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseViciPretty } from './harness/vici.js';
import { toIkeSas } from './harness/strongswan.js';
import { parseCharonKeys } from './harness/charonlog.js';
import { readPcap, classifyUdp, type UdpDatagram } from './harness/pcap.js';
import { tsharkKeyArgs, tsharkKeysFromCharon } from './harness/capture.js';

const fixtures = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../test/fixtures/strongswan');

const PRETTY = `list-sa event {
  t {
    uniqueid = 3
    version = 1
    state = ESTABLISHED
    local-host = 10.99.0.1
    local-port = 4500
    local-id = C=CH, O=strongSwan, CN=moon
    remote-host = 10.99.0.2
    remote-port = 4500
    remote-id = 10.99.0.2
    initiator = yes
    initiator-spi = 0d79804483690fb4
    responder-spi = 9ccf008aa57fb6d9
    nat-remote = yes
    encr-alg = AES_CBC
    encr-keysize = 128
    integ-alg = HMAC_SHA1_96
    prf-alg = PRF_HMAC_SHA1
    dh-group = MODP_2048
    child-sas {
      t-1 {
        name = t
        uniqueid = 1
        reqid = 1
        state = INSTALLED
        mode = TUNNEL
        protocol = ESP
        encap = yes
        spi-in = 59b759b6
        spi-out = 18887e2a
        encr-alg = AES_CBC
        encr-keysize = 128
        integ-alg = HMAC_SHA1_96
        bytes-in = 168
        packets-in = 2
        bytes-out = 0
        packets-out = 0
        local-ts = [
          10.99.1.1/32
          10.99.1.2/32
        ]
        remote-ts = [
          10.99.2.1/32
        ]
      }
    }
  }
}
list-sas reply {
}
`;

test('swanctl --list-sas --pretty output becomes typed SAs', () => {
  const msgs = parseViciPretty(PRETTY);
  assert.deepEqual(msgs.map((m) => m.name), ['list-sa event', 'list-sas reply']);
  const [sa] = toIkeSas(msgs);
  assert.ok(sa);
  assert.equal(sa.name, 't');
  assert.equal(sa.uniqueId, 3);
  assert.equal(sa.state, 'ESTABLISHED');
  assert.equal(sa.localId, 'C=CH, O=strongSwan, CN=moon', 'values with spaces survive');
  assert.equal(sa.cookieI, '0d79804483690fb4');
  assert.equal(sa.cookieR, '9ccf008aa57fb6d9');
  assert.equal(sa.localPort, 4500);
  assert.equal(sa.natRemote, true);
  assert.equal(sa.natAny, false);
  assert.equal(sa.initiator, true);
  assert.equal(sa.children.length, 1);
  const c = sa.children[0]!;
  assert.equal(c.state, 'INSTALLED');
  assert.equal(c.encap, true);
  assert.equal(c.spiIn, '59b759b6');
  assert.equal(c.packetsIn, 2);
  assert.equal(c.bytesIn, 168);
  assert.deepEqual(c.localTs, ['10.99.1.1/32', '10.99.1.2/32']);
  assert.deepEqual(c.remoteTs, ['10.99.2.1/32']);
  assert.deepEqual(toIkeSas(parseViciPretty('list-sas reply {\n}\n')), []);
});

// The format of charon 5.9.8's filelog at ike/chd level 4 (values shortened where the format
// allows it): thread 07 and 09 interleave, and the responder's first lines carry no name (<1>).
const LOG = `07:31:03 09[IKE] <1> natd_chunk => 22 bytes @ 0x7ffbf8959a20
07:31:03 07[IKE] <t|1> SKEYID => 20 bytes @ 0x7ffbd40038d0
07:31:03 09[IKE] <1>    0: 92 25 82 E5 C4 04 C1 3C 91 BD BF 02 AA 7D C7 92  .%.....<.....}..
07:31:03 07[IKE] <t|1>    0: A9 60 BF 47 F3 EA 6E C3 26 CE 9A 59 53 53 67 4D  .\`.G..n.&..YSSgM
07:31:03 09[IKE] <1>   16: 0A 63 00 02 01 F4                                .c....
07:31:03 07[IKE] <t|1>   16: F3 07 C6 0A                                      ....
07:31:03 07[IKE] <t|1> encryption key Ka => 16 bytes @ 0x7ffbd4004cd0
07:31:03 07[IKE] <t|1>    0: 54 13 C6 2E 45 3E 1A DC B7 FE A0 4B 27 51 54 01  T...E>.....K'QT.
07:31:03 07[IKE] <t|1> next IV for MID 146403182 => 16 bytes @ 0x55ede41af640
07:31:03 07[IKE] <t|1>    0: 09 41 B2 5B 1E 09 7F C7 43 25 D4 A6 B8 5D F6 95  .A.[....C%...]..
07:31:03 12[IKE] <t|1> IKE_SA t[1] state change: CONNECTING => ESTABLISHED
07:31:03 11[CFG] <t|1> selected proposal: ESP:AES_CBC_128/HMAC_SHA1_96/NO_EXT_SEQ
07:31:03 11[CHD] <t|1> initiator SA seed => 9 bytes @ 0x7ffbf79578e0
07:31:03 11[CHD] <t|1>    0: 03 47 0D 42 11 AA BB CC DD                       .G.B.....
07:31:03 11[CHD] <t|1> responder SA seed => 9 bytes @ 0x7ffbf7957790
07:31:03 11[CHD] <t|1>    0: 03 93 15 10 11 AA BB CC DD                       .........
07:31:03 11[CHD] <t|1> encryption initiator key => 16 bytes @ 0x7ffbcc002350
07:31:03 11[CHD] <t|1>    0: 30 F8 5C 55 53 74 E8 89 A9 0C 6E 3A 72 5E F6 7B  0.\\USt....n:r^.{
07:31:03 11[CHD] <t|1> encryption responder key => 16 bytes @ 0x7ffbcc0023d0
07:31:03 11[CHD] <t|1>    0: 4C 0E 4A 2E 38 C0 CF 94 73 1B 11 3A 30 7E D4 DE  L.J.8...s..:0~..
07:31:03 11[CHD] <t|1> integrity initiator key => 4 bytes @ 0x7ffbcc002250
07:31:03 11[CHD] <t|1>    0: F4 9B BF 57                                      ...W
07:31:03 11[CHD] <t|1> integrity responder key => 4 bytes @ 0x7ffbcc002bd0
07:31:03 11[CHD] <t|1>    0: 9B B2 E4 8B                                      ....
07:31:03 11[CHD] <t|1> adding inbound ESP SA
07:31:03 11[CHD] <t|1>   SPI 0x93151011, src 10.99.0.2 dst 10.99.0.1
07:31:03 11[CHD] <t|1> adding outbound ESP SA
07:31:03 11[CHD] <t|1>   SPI 0x470d4211, src 10.99.0.1 dst 10.99.0.2
07:31:04 00[DMN] SIGTERM received, shutting down
`;

test('charon key log: interleaved threads, unnamed SA tag, CHILD_SA keys tied to their SPIs', () => {
  const keys = parseCharonKeys(LOG);
  assert.equal(keys.length, 1);
  const k = keys[0]!;
  assert.equal(k.uniqueId, 1);
  assert.equal(k.name, 't');
  assert.equal(k.cookieI, '922582e5c404c13c');
  assert.equal(k.cookieR, '91bdbf02aa7dc792');
  assert.equal(k.skeyid, 'a960bf47f3ea6ec326ce9a595353674df307c60a');
  assert.equal(k.ka, '5413c62e453e1adcb7fea04b27515401');
  assert.deepEqual(k.ivs, [{ mid: 146403182, iv: '0941b25b1e097fc74325d4a6b85df695' }]);
  assert.equal(k.established, true);
  assert.equal(k.children.length, 1);
  const c = k.children[0]!;
  assert.equal(c.spiI, '470d4211');
  assert.equal(c.spiR, '93151011');
  assert.equal(c.proposal, 'AES_CBC_128/HMAC_SHA1_96/NO_EXT_SEQ');
  const out = c.sas.find((s) => s.direction === 'out')!;
  const inb = c.sas.find((s) => s.direction === 'in')!;
  // outbound = initiator -> responder here, so the initiator's keys protect it
  assert.deepEqual(out, { direction: 'out', spi: '470d4211', src: '10.99.0.1', dst: '10.99.0.2', encKey: '30f85c555374e889a90c6e3a725ef67b', integKey: 'f49bbf57', encAlg: 'AES_CBC_128', integAlg: 'HMAC_SHA1_96' });
  assert.equal(inb.encKey, '4c0e4a2e38c0cf94731b113a307ed4de');
  assert.equal(inb.integKey, '9bb2e48b');

  const args = tsharkKeyArgs(tsharkKeysFromCharon(keys));
  assert.deepEqual(args.slice(0, 2), ['-o', 'uat:ikev1_decryption_table:922582e5c404c13c,5413c62e453e1adcb7fea04b27515401']);
  assert.ok(args.includes('uat:esp_sa:"IPv4","10.99.0.1","10.99.0.2","0x470d4211","AES-CBC [RFC3602]","0x30f85c555374e889a90c6e3a725ef67b","HMAC-SHA-1-96 [RFC2404]","0xf49bbf57"'));
  assert.deepEqual(parseCharonKeys('garbage\n\n00:00:00 00[DMN] Starting IKE charon daemon\n'), []);
});

test('readPcap reads the committed strongSwan captures: the IKE messages are the fixtures', () => {
  const jsons = readdirSync(fixtures).filter((f) => f.endsWith('.json'));
  assert.ok(jsons.length >= 4);
  for (const j of jsons) {
    const fx = JSON.parse(readFileSync(path.join(fixtures, j), 'utf8'));
    const udp = readPcap(path.join(fixtures, j.replace(/\.json$/, '.pcapng'))).map(classifyUdp);
    const ike = udp.filter((d) => d.kind === 'ike');
    assert.deepEqual(ike.map((d) => d.message.toString('hex')), fx.messages.map((m: { hex: string }) => m.hex), j);
    assert.deepEqual(ike.map((d) => d.nonEspMarker), fx.messages.map((m: { nonEspMarker: boolean }) => m.nonEspMarker));
    assert.deepEqual(udp.filter((d) => d.kind === 'esp').map((d) => d.message.toString('hex')), fx.espPackets.map((p: { hex: string }) => p.hex));
    for (const d of udp) assert.ok(d.time > 1.7e9 && d.time < 4e9, 'timestamps in seconds');
  }
});

test('classic pcap (both byte orders), truncated records, RFC 3948 classification', () => {
  const udp = (sport: number, dport: number, payload: Buffer) => {
    const eth = Buffer.from('0200000000010200000000020800', 'hex');
    const ip = Buffer.from('450000000000400040110000' + '0a630001' + '0a630002', 'hex');
    ip.writeUInt16BE(20 + 8 + payload.length, 2);
    const u = Buffer.alloc(8);
    u.writeUInt16BE(sport, 0);
    u.writeUInt16BE(dport, 2);
    u.writeUInt16BE(8 + payload.length, 4);
    return Buffer.concat([eth, ip, u, payload]);
  };
  const frames = [
    udp(500, 500, Buffer.alloc(28, 1)),
    udp(4500, 4500, Buffer.concat([Buffer.alloc(4), Buffer.alloc(28, 2)])),
    udp(4500, 4500, Buffer.from([0xff])),
    udp(4500, 4500, Buffer.from('c0ffee0100000001aabbccdd', 'hex')),
  ];
  for (const le of [true, false]) {
    const hdr = Buffer.alloc(24);
    if (le) {
      hdr.writeUInt32LE(0xa1b2c3d4, 0);
      hdr.writeUInt32LE(1, 20);
    } else {
      hdr.writeUInt32BE(0xa1b2c3d4, 0);
      hdr.writeUInt32BE(1, 20);
    }
    const recs = frames.map((f, i) => {
      const r = Buffer.alloc(16);
      const w = (v: number, o: number) => (le ? r.writeUInt32LE(v, o) : r.writeUInt32BE(v, o));
      w(1_800_000_000 + i, 0);
      w(500_000, 4);
      w(f.length, 8);
      w(f.length, 12);
      return Buffer.concat([r, f]);
    });
    const file = Buffer.concat([hdr, ...recs, Buffer.from('0000', 'hex')]); // a cut-off last record
    const d: UdpDatagram[] = readPcap(file);
    assert.equal(d.length, 4);
    assert.equal(d[0]!.src, '10.99.0.1');
    assert.equal(d[0]!.dst, '10.99.0.2');
    assert.equal(d[1]!.time, 1_800_000_001.5);
    assert.deepEqual(d.map((x) => classifyUdp(x).kind), ['ike', 'ike', 'keepalive', 'esp']);
    const marked = classifyUdp(d[1]!);
    assert.equal(marked.nonEspMarker, true);
    assert.equal(marked.message.length, 28, 'the 4-byte marker is stripped');
    assert.equal(classifyUdp(d[0]!).nonEspMarker, false);
  }
  assert.throws(() => readPcap(Buffer.from('not a capture at all')), RangeError);
});
