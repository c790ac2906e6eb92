// Phase 1 against a real strongSwan 5.9 in network namespaces: Main and Aggressive Mode, PSK, both
// roles, several proposals, and a wrong key on either side. Our side runs as `ike gateway --config`,
// the entry point users run; the assertions look at strongSwan's own view (swanctl --list-sas and the
// keys in its log) as well as ours.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway } from './ours.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const PSK = 'interop-secret-0123';

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikp1' });
});
after(async () => {
  await pair?.destroy();
});

interface Case {
  mode: 'main' | 'aggressive';
  ike: string;
  weak?: boolean;
  /** Who starts the exchange. */
  initiator: 'ours' | 'strongswan';
  ourPsk?: string;
  /** strongSwan's kernel interface: libipsec fakes a NAT so IKE floats to 4500 (default netlink). */
  kernel?: 'libipsec' | 'netlink';
}

function ourConfig(c: Case) {
  return {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      s: {
        remote: pair.b.addr,
        mode: c.mode,
        auth: { psk: c.ourPsk ?? PSK, allowAggressivePsk: c.mode === 'aggressive' },
        localId: pair.a.addr,
        remoteId: pair.b.addr,
        ike: [c.ike],
        allowWeak: c.weak ?? false,
        initiate: c.initiator === 'ours',
        retransmit: { tries: 2, timeout: '1s', factor: 1.5 },
        keylog: true,
      },
    },
  };
}

async function withPeers(c: Case, body: (ours: OurGateway, ss: StrongSwanPeer) => Promise<void>): Promise<void> {
  const ss = new StrongSwanPeer(pair, 'b', {
    mode: c.mode,
    ike: c.ike,
    psk: PSK,
    kernel: c.kernel ?? 'netlink',
    retransmitTries: 2,
    retransmitTimeout: 1,
  });
  await ss.start();
  const ours = new OurGateway(pair, 'a', ourConfig(c));
  try {
    await ours.start();
    await body(ours, ss);
  } finally {
    await ours.stop();
    await ss.stop(1000);
  }
}

const STRONGSWAN_NAMES: Record<string, [string, number | undefined, string, string]> = {
  'aes128-sha1-modp2048': ['AES_CBC', 128, 'HMAC_SHA1_96', 'MODP_2048'],
  'aes256-sha256-modp2048': ['AES_CBC', 256, 'HMAC_SHA2_256_128', 'MODP_2048'],
  'aes128-sha256-ecp256': ['AES_CBC', 128, 'HMAC_SHA2_256_128', 'ECP_256'],
  '3des-sha1-modp1024': ['3DES_CBC', undefined, 'HMAC_SHA1_96', 'MODP_1024'],
  'aes256-sha512-ecp384': ['AES_CBC', 256, 'HMAC_SHA2_512_256', 'ECP_384'],
};

async function assertEstablished(ours: OurGateway, ss: StrongSwanPeer, c: Case): Promise<void> {
  const up = await ours.waitFor((e) => e.event === 'phase1-up' || e.event === 'error', 15_000);
  assert.equal(up.event, 'phase1-up', `our gateway: ${JSON.stringify(up)}`);
  assert.equal(up.algorithms, c.ike);
  assert.equal(up.mode, c.mode);
  assert.equal(up.role, c.initiator === 'ours' ? 'initiator' : 'responder');
  assert.equal(up.remoteId, pair.b.addr);
  // strongSwan's own view
  let sas = await ss.listSas();
  for (let i = 0; i < 20 && !sas.some((s) => s.state === 'ESTABLISHED'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    sas = await ss.listSas();
  }
  const sa = sas.find((s) => s.cookieI === up.cookieI);
  assert.ok(sa, `strongSwan has no IKE SA with cookie ${up.cookieI}: ${JSON.stringify(sas.map((s) => [s.cookieI, s.state]))}`);
  assert.equal(sa.state, 'ESTABLISHED');
  assert.equal(sa.version, 1);
  assert.equal(sa.cookieR, up.cookieR);
  assert.equal(sa.initiator, c.initiator === 'strongswan');
  const [encr, keysize, integ, dh] = STRONGSWAN_NAMES[c.ike]!;
  assert.equal(sa.encrAlg, encr);
  assert.equal(sa.encrKeysize, keysize);
  assert.equal(sa.integAlg, integ);
  assert.equal(sa.dhGroup, dh);
  // Same keys: strongSwan logs Ka, we write Wireshark's "cookie,Ka" key log line.
  const keys = (await ss.keys()).find((k) => k.cookieI === up.cookieI);
  assert.ok(keys?.ka, 'strongSwan logged Ka');
  assert.ok(ours.keylog().includes(`${up.cookieI},${keys.ka}`), `Ka differs: ours ${ours.keylog().join(' ')} strongSwan ${keys.ka}`);
}

const cases: Case[] = [
  { mode: 'main', ike: 'aes128-sha1-modp2048', initiator: 'ours' },
  { mode: 'main', ike: 'aes256-sha256-modp2048', initiator: 'ours' },
  { mode: 'main', ike: 'aes128-sha256-ecp256', initiator: 'ours' },
  { mode: 'main', ike: '3des-sha1-modp1024', weak: true, initiator: 'ours' },
  { mode: 'main', ike: 'aes128-sha1-modp2048', initiator: 'strongswan' },
  { mode: 'main', ike: 'aes256-sha512-ecp384', initiator: 'strongswan' },
  { mode: 'main', ike: '3des-sha1-modp1024', weak: true, initiator: 'strongswan' },
  { mode: 'aggressive', ike: 'aes128-sha1-modp2048', initiator: 'ours' },
  { mode: 'aggressive', ike: 'aes256-sha256-modp2048', initiator: 'ours' },
  { mode: 'aggressive', ike: 'aes128-sha1-modp2048', initiator: 'strongswan' },
  { mode: 'aggressive', ike: 'aes128-sha256-ecp256', initiator: 'strongswan' },
  { mode: 'main', ike: 'aes128-sha1-modp2048', initiator: 'ours', kernel: 'libipsec' },
  { mode: 'main', ike: 'aes128-sha1-modp2048', initiator: 'strongswan', kernel: 'libipsec' },
  { mode: 'aggressive', ike: 'aes128-sha1-modp2048', initiator: 'ours', kernel: 'libipsec' },
];

for (const c of cases) {
  test(`strongSwan interop: ${c.mode} mode ${c.ike}, ${c.initiator === 'ours' ? 'we initiate' : 'strongSwan initiates'}${c.kernel === 'libipsec' ? ', NAT-T float to 4500' : ''}`, { skip, timeout: 60_000 }, async () => {
    await withPeers(c, async (ours, ss) => {
      if (c.initiator === 'strongswan') {
        const r = await ss.initiateIke(10);
        assert.ok(r.ok, `strongSwan initiate failed:\n${r.output}\n${ss.logTail(30)}`);
      }
      await assertEstablished(ours, ss, c);
      const up = ours.events.find((e) => e.event === 'phase1-up')!;
      if (c.kernel === 'libipsec') {
        // strongSwan's user-space ESP needs UDP encapsulation, so it reports a NAT that is not there
        assert.equal(up.natRemote, true);
        assert.equal(up.remote, `${pair.b.addr}:4500`, 'IKE moved to the NAT-T port');
      } else {
        assert.equal(up.natRemote, false);
        assert.equal(up.natLocal, false);
        assert.equal(up.remote, `${pair.b.addr}:500`);
      }
    });
  });
}

test('strongSwan interop: wrong pre-shared key, we initiate main mode: our clear error, strongSwan fails, no SA', { skip, timeout: 60_000 }, async () => {
  const c: Case = { mode: 'main', ike: 'aes128-sha1-modp2048', initiator: 'ours', ourPsk: 'not-the-right-key' };
  await withPeers(c, async (ours, ss) => {
    const e = await ours.waitFor((x) => x.event === 'error' || x.event === 'phase1-up', 20_000);
    assert.equal(e.event, 'error', JSON.stringify(e));
    assert.match(String(e.message), /pre-shared key mismatch/);
    assert.ok(await ss.waitForLog(/(integrity check failed|invalid HASH|message verification failed|decryption failed|failed to decrypt|MESSAGE_ID|INVALID_HASH|parsing .* failed|message parsing failed)/i, 5000), ss.logTail(40));
    assert.deepEqual((await ss.listSas()).filter((s) => s.state === 'ESTABLISHED'), []);
  });
});

test('strongSwan interop: wrong pre-shared key, strongSwan initiates main mode: "pre-shared key mismatch", no SA', { skip, timeout: 60_000 }, async () => {
  const c: Case = { mode: 'main', ike: 'aes128-sha1-modp2048', initiator: 'strongswan', ourPsk: 'not-the-right-key' };
  await withPeers(c, async (ours, ss) => {
    const r = await ss.initiateIke(6);
    assert.equal(r.ok, false, 'strongSwan must fail');
    const e = await ours.waitFor((x) => x.event === 'error', 10_000);
    assert.equal(e.kind, 'PSK_MISMATCH');
    assert.match(String(e.message), /pre-shared key mismatch/);
    assert.deepEqual((await ss.listSas()).filter((s) => s.state === 'ESTABLISHED'), []);
    assert.equal(ours.events.filter((x) => x.event === 'phase1-up').length, 0);
  });
});

test('strongSwan interop: no common proposal: NO_PROPOSAL_CHOSEN on both sides', { skip, timeout: 60_000 }, async () => {
  const ss = new StrongSwanPeer(pair, 'b', { ike: 'aes256-sha512-ecp384', psk: PSK, kernel: 'netlink', retransmitTries: 1, retransmitTimeout: 1 });
  await ss.start();
  const ours = new OurGateway(pair, 'a', ourConfig({ mode: 'main', ike: 'aes128-sha1-modp2048', initiator: 'ours' }));
  try {
    await ours.start();
    const e = await ours.waitFor((x) => x.event === 'error', 15_000);
    assert.match(String(e.message), /NO_PROPOSAL_CHOSEN/);
    assert.ok(await ss.waitForLog(/no proposal found/, 5000), ss.logTail(30));
  } finally {
    await ours.stop();
    await ss.stop(1000);
  }
});

test('tshark dissects our Main Mode and Aggressive Mode messages, decrypted with strongSwan\'s keys, without errors', { skip, timeout: 60_000 }, async () => {
  const { Capture, tsharkDecode, tsharkKeysFromCharon, tsharkAvailable } = await import('./harness/index.js');
  assert.ok(tsharkAvailable().ok, tsharkAvailable().why);
  for (const mode of ['main', 'aggressive'] as const) {
    const cap = await Capture.start(pair, 'a');
    const c: Case = { mode, ike: 'aes256-sha256-modp2048', initiator: 'ours' };
    let keys: Awaited<ReturnType<StrongSwanPeer['keys']>> = [];
    await withPeers(c, async (ours, ss) => {
      await assertEstablished(ours, ss, c);
      keys = await ss.keys();
    });
    const file = await cap.stop(400);
    const dec = await tsharkDecode(file, tsharkKeysFromCharon(keys), { verbose: true });
    assert.ok(dec.ok, dec.stderr);
    assert.deepEqual(dec.malformed, [], `${mode}: tshark reports malformed frames`);
    assert.match(dec.text, /Exchange type: (Identity Protection \(Main Mode\)|Aggressive) \((2|4)\)/);
    // the encrypted messages decrypt to an ID/HASH chain: proof that our IV chain and padding are what tshark expects
    assert.match(dec.text, /Payload: Hash \(8\)/);
    if (mode === 'main') assert.equal(dec.text.match(/Payload: Identification \(5\)/g)?.length, 2, 'IDii and IDir decrypted');
  }
});
