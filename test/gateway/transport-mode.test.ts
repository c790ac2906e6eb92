// Transport mode, host to host, as L2TP/IPsec clients ask for it: the server of examples/l2tp-ipsec-server.json
// answers the proposals of Windows, macOS / iOS and Android (their selectors for UDP 1701 and the ESP / IKE
// transforms of theirs we implement), with UDP encapsulation standing in for the NAT these clients sit behind
// (NAT-T, UDP-Encapsulated-Transport, NAT-OA payloads both ways), and without it (plain transport mode).
// Then host traffic through the SA with the embedding API: a UDP datagram sealed with next header 17.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, loadConfig, parseConfig } from '../../ts/gateway/index.js';
import { events, until } from './peers.js';

const base = 38000 + (process.pid % 2000) * 4;
const example = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/l2tp-ipsec-server.json');

/** What each client offers for L2TP/IPsec (/work/shared/CLIENTS.md), less 3DES / MD5, which we do not implement. */
const CLIENTS = {
  windows: { ike: ['aes256-sha1-ecp384'], esp: ['aes256-sha1', 'aes128-sha1'], localTs: '%dynamic[udp/1701]', remoteTs: '%dynamic[udp/1701]' },
  macos: { ike: ['aes256-sha256-modp2048'], esp: ['aes256-sha1', 'aes128-sha1'], localTs: '%dynamic[udp/%any]', remoteTs: '%dynamic[udp/1701]' },
  android: { ike: ['aes256-sha1-modp1024'], esp: ['aes256-sha1', 'aes128-sha1'], localTs: '%dynamic[udp/1701]', remoteTs: '%dynamic[udp/1701]', allowWeak: true },
};

async function server(port: number): Promise<Gateway> {
  const c = await loadConfig(example, { IKE_PSK_L2TP: 'l2tp test secret' });
  c.listen = { address: '127.0.0.1', port, nattPort: port + 1 };
  return new Gateway(c);
}

function client(port: number, serverPort: number, over: Record<string, unknown>): Gateway {
  const r = parseConfig({
    listen: { address: '127.0.0.1', port, nattPort: port + 1 },
    connections: {
      l2tp: { remote: '127.0.0.1', remotePort: serverPort, remoteNattPort: serverPort + 1, auth: { psk: 'l2tp test secret' }, type: 'transport', initiate: true, retransmit: { tries: 2, timeout: '0.3s' }, ...over },
    },
  }, { baseDir: '.', env: {} });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return new Gateway(r.config);
}

for (const [name, offer] of Object.entries(CLIENTS)) {
  for (const encap of [true, false]) {
    test(`L2TP/IPsec server: the ${name} client's transport-mode proposal for UDP 1701, ${encap ? 'UDP-encapsulated with NAT-OA' : 'plain'}`, { timeout: 20_000 }, async () => {
      const b = base + (encap ? 0 : 1000) + Object.keys(CLIENTS).indexOf(name) * 10;
      const s = await server(b);
      const c = client(b + 2, b, { ...offer, encap });
      const es = events(s);
      const ec = events(c);
      await s.start();
      await c.start();
      try {
        await until(() => (es.childUp.length === 1 && ec.childUp.length === 1) || es.errors.length + ec.errors.length > 0, 10_000, 'a child on both sides');
        assert.deepEqual([es.errors, ec.errors], [[], []]);
        const [cs, cc] = [es.childUp[0]!, ec.childUp[0]!];
        assert.deepEqual([cs.mode, cc.mode, cs.encapsulation, cc.encapsulation], ['transport', 'transport', encap, encap]);
        assert.equal(cs.localTs, '127.0.0.1[17/1701]');
        assert.equal(cs.remoteTs, `127.0.0.1[17/${offer.localTs.includes('%any') ? 0 : 1701}]`);
        assert.equal(cs.proposal, 'aes256-sha1', 'the server picks its first choice among the offers');
        if (encap) {
          // RFC 3947 5.2: each side received the other's NAT-OAi and NAT-OAr
          assert.deepEqual(cs.child.natOa, { initiator: '127.0.0.1', responder: '127.0.0.1' });
          assert.deepEqual(cc.child.natOa, { initiator: '127.0.0.1', responder: '127.0.0.1' });
        } else {
          assert.equal(cs.child.natOa, undefined, 'no NAT-OA without UDP encapsulation');
          assert.equal(cc.child.natOa, undefined);
        }
        // the host's own traffic through the SA: a UDP datagram (L2TP's) as the ESP payload, next header 17
        const udp = Buffer.from('06a506a5000c0000' + 'c8020000', 'hex');
        c.sendEsp('l2tp', udp, 17);
        await until(() => es.esp.length === 1, 5_000, 'the datagram at the server');
        assert.deepEqual([es.esp[0]!.nextHeader, es.esp[0]!.payload], [17, udp]);
      } finally {
        await c.stop();
        await s.stop();
      }
    });
  }
}

test('transport mode needs %dynamic selectors; a [protocol/port] suffix must parse', () => {
  const conf = (over: Record<string, unknown>) => parseConfig({ connections: { x: { remote: '192.0.2.1', auth: { psk: 'k' }, ...over } } }, { baseDir: '.', env: {} });
  const bad = conf({ type: 'transport', localTs: '10.1.0.0/24' });
  assert.ok(!bad.ok && bad.errors.some((e) => /transport mode protects the two hosts/.test(e)), JSON.stringify(bad));
  const port = conf({ localTs: '%dynamic[icmp/7]' });
  assert.ok(!port.ok && port.errors.some((e) => /a port needs protocol tcp, udp or sctp/.test(e)));
  const mixed = conf({ localTs: ['10.1.0.0/24[tcp]', '10.2.0.0/24[udp]'] });
  assert.ok(!mixed.ok && mixed.errors.some((e) => /same \[protocol\/port\]/.test(e)));
  const junk = conf({ localTs: '%dynamic[udp/1701/3]' });
  assert.ok(!junk.ok && junk.errors.some((e) => /is not \[protocol\/port\]/.test(e)));
  const ok = conf({ localTs: ['10.1.0.0/24[tcp/443]', '10.2.0.0/24[6/https]'] });
  assert.ok(ok.ok, ok.ok ? '' : ok.errors.join());
  assert.deepEqual(ok.config.connections[0]!.localProtoPort, { protocol: 6, port: 443 });
});
