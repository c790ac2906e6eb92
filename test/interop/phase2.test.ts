// Quick Mode against a real strongSwan 5.9 (its user-space ESP, kernel-libipsec, which only takes
// UDP-encapsulated SAs: so this also proves our NAT-T float), both roles, with and without PFS. strongSwan's
// own view (swanctl --list-sas) must show the CHILD_SA installed with our SPIs, and the ESP keys it logs
// must be the ones we derived. Deletes from either side, DPD and a rekey are checked on both ends.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway, type OurEvent } from './ours.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const PSK = 'interop-phase2-secret';

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikp2' });
});
after(async () => {
  await pair?.destroy();
});

interface Case {
  ike?: string;
  esp: string;
  pfs?: boolean;
  initiator: 'ours' | 'strongswan';
  mode?: 'main' | 'aggressive';
  /** HMAC-MD5 needs the connection's allowWeak. */
  allowWeak?: boolean;
}

function ourConfig(c: Case, extra: Record<string, unknown> = {}) {
  const [espAlg, group] = c.esp.split(/-(?=modp|ecp)/) as [string, string | undefined];
  return {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: {
      s: {
        remote: pair.b.addr,
        mode: c.mode ?? 'main',
        auth: { psk: PSK, allowAggressivePsk: c.mode === 'aggressive' },
        ike: [c.ike ?? 'aes128-sha1-modp2048'],
        esp: [group ? `${espAlg}-${group}` : espAlg],
        pfs: group !== undefined,
        localTs: pair.a.inner + '/32',
        remoteTs: pair.b.inner + '/32',
        initiate: c.initiator === 'ours',
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
        keylog: true,
        ...(c.allowWeak ? { allowWeak: true } : {}),
        ...extra,
      },
    },
  };
}

async function withPeers(c: Case, ssExtra: Partial<ConstructorParameters<typeof StrongSwanPeer>[2]>, ourExtra: Record<string, unknown>, body: (ours: OurGateway, ss: StrongSwanPeer) => Promise<void>): Promise<void> {
  const ss = new StrongSwanPeer(pair, 'b', {
    mode: c.mode ?? 'main',
    ike: c.ike ?? 'aes128-sha1-modp2048',
    esp: c.esp,
    psk: PSK,
    kernel: 'libipsec',
    retransmitTries: 3,
    retransmitTimeout: 1,
    ...ssExtra,
  });
  await ss.start();
  const ours = new OurGateway(pair, 'a', ourConfig(c, ourExtra));
  try {
    await ours.start();
    await body(ours, ss);
  } finally {
    await ours.stop();
    await ss.stop(1000);
  }
}

/** Our child-up, strongSwan's CHILD_SA with the same SPIs, and the same keys in both directions. */
async function assertChild(ours: OurGateway, ss: StrongSwanPeer, c: Case): Promise<OurEvent> {
  const up = await ours.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
  assert.equal(up.event, 'child-up', JSON.stringify(up));
  assert.equal(up.proposal, c.esp);
  assert.equal(up.encap, true, 'UDP-encapsulated (strongSwan libipsec requires it)');
  assert.equal(up.localTs, pair.a.inner);
  assert.equal(up.remoteTs, pair.b.inner);
  let child;
  for (let i = 0; i < 30 && !child; i++) {
    const sas = await ss.listSas();
    child = sas.flatMap((s) => s.children).find((ch) => ch.spiIn === up.spiOut && ch.state === 'INSTALLED');
    if (!child) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(child, `strongSwan has no INSTALLED CHILD_SA with SPI ${up.spiOut}: ${JSON.stringify((await ss.listSas()).map((s) => s.children))}`);
  assert.equal(child.spiOut, up.spiIn);
  assert.ok(child.encap);
  assert.deepEqual(child.localTs, [`${pair.b.inner}/32`]);
  assert.deepEqual(child.remoteTs, [`${pair.a.inner}/32`]);
  // keys: our esp_sa rows (src, dst, spi, key|salt, integrity key) against what charon logged for its SAs
  const rows = ours.keylog('esp_sa').map((l) => l.split(',').map((f) => f.replace(/^"|"$/g, '')));
  const keys = (await ss.keys()).flatMap((k) => k.children).flatMap((ch) => ch.sas);
  for (const spi of [up.spiIn as string, up.spiOut as string]) {
    const row = rows.find((r) => r[3] === `0x${spi}`);
    const theirs = keys.find((k) => k.spi === spi);
    assert.ok(row && theirs, `keys for SPI ${spi}: ours ${JSON.stringify(row)} strongSwan ${JSON.stringify(theirs)}`);
    assert.equal(row[1], theirs.src);
    assert.equal(row[2], theirs.dst);
    assert.equal(row[5], `0x${theirs.encKey}`, `encryption key of SPI ${spi}`);
    assert.equal(row[7], theirs.integKey ? `0x${theirs.integKey}` : '', `integrity key of SPI ${spi}`);
  }
  return up;
}

const cases: Case[] = [
  { esp: 'aes128-sha1', initiator: 'ours' },
  { esp: 'aes128-sha1-modp2048', initiator: 'ours' },
  { esp: 'aes256-sha256', initiator: 'ours' },
  { esp: 'aes128gcm16', initiator: 'ours' },
  { esp: 'aes256gcm16-ecp256', initiator: 'ours', ike: 'aes128-sha256-ecp256' },
  { esp: 'aes128-sha1', initiator: 'strongswan' },
  { esp: 'aes256-sha256-modp2048', initiator: 'strongswan' },
  { esp: 'aes128gcm16', initiator: 'strongswan' },
  { esp: 'aes256gcm16', initiator: 'strongswan' },
  { esp: 'aes128-sha1', initiator: 'strongswan', mode: 'aggressive' },
  { esp: 'aes128gcm16-modp2048', initiator: 'ours', mode: 'aggressive' },
  // Legacy clients (Windows L2TP/IPsec, older Android): 3DES and HMAC-MD5-96.
  { esp: '3des-sha1', initiator: 'ours' },
  { esp: '3des-sha1', initiator: 'strongswan' },
  { esp: '3des-md5', initiator: 'strongswan', allowWeak: true },
  { esp: 'aes128-md5-modp2048', initiator: 'ours', allowWeak: true },
];

for (const c of cases) {
  test(`strongSwan interop: quick mode ${c.esp}${c.mode === 'aggressive' ? ' after aggressive mode' : ''}, ${c.initiator === 'ours' ? 'we initiate' : 'strongSwan initiates'}`, { skip, timeout: 60_000 }, async () => {
    await withPeers(c, {}, {}, async (ours, ss) => {
      if (c.initiator === 'strongswan') {
        const r = await ss.initiate(undefined, 15);
        assert.ok(r.ok, `strongSwan initiate failed:\n${r.output}\n${ss.logTail(40)}`);
      }
      await assertChild(ours, ss, c);
    });
  });
}

test('strongSwan interop: a delete from strongSwan removes the CHILD_SA and ISAKMP SA on our side', { skip, timeout: 60_000 }, async () => {
  const c: Case = { esp: 'aes128gcm16', initiator: 'ours' };
  await withPeers(c, {}, {}, async (ours, ss) => {
    const up = await assertChild(ours, ss, c);
    const r = await ss.terminateIke();
    assert.ok(r.ok, r.output);
    const down = await ours.waitFor((e) => e.event === 'child-down', 10_000);
    assert.equal(down.spiIn, up.spiIn);
    assert.equal(down.reason, 'deleted by the peer');
    await ours.waitFor((e) => e.event === 'phase1-down', 10_000);
  });
});

test('strongSwan interop: stopping our gateway deletes its SAs on strongSwan', { skip, timeout: 60_000 }, async () => {
  const c: Case = { esp: 'aes128-sha1', initiator: 'ours' };
  await withPeers(c, {}, {}, async (ours, ss) => {
    await assertChild(ours, ss, c);
    const mark = ss.logMark();
    await ours.stop();
    assert.ok(await ss.waitForLog(/received DELETE for ESP CHILD_SA/, 10_000, mark), ss.logTail(30));
    assert.ok(await ss.waitForLog(/received DELETE for IKE_SA/, 10_000, mark), ss.logTail(30));
    for (let i = 0; i < 30 && (await ss.listSas()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await ss.listSas(), []);
  });
});

test('strongSwan interop: DPD R-U-THERE from strongSwan is acknowledged, and its CHILD_SA rekey replaces ours', { skip, timeout: 60_000 }, async () => {
  const c: Case = { esp: 'aes128gcm16', initiator: 'strongswan' };
  await withPeers(c, { dpdDelay: 1, dpdTimeout: 5, childRekeyTime: 4, childLifeTime: 30, childRandTime: 0 }, { dpd: { delay: '30s' } }, async (ours, ss) => {
    const mark = ss.logMark();
    const r = await ss.initiate(undefined, 15);
    assert.ok(r.ok, r.output);
    const first = await assertChild(ours, ss, c);
    assert.ok(await ss.waitForLog(/parsed INFORMATIONAL_V1 request \d+ \[ HASH N\(DPD_ACK\) \]/, 8_000, mark), `no DPD ACK seen by strongSwan:\n${ss.logTail(30)}`);
    const second = await ours.waitFor((e) => e.event === 'child-up' && e.spiIn !== first.spiIn, 15_000);
    assert.equal(second.rekey, true);
    const gone = await ours.waitFor((e) => e.event === "child-down" && e.spiIn === first.spiIn, 15_000).catch((e) => { throw new Error(`${(e as Error).message}\n${ss.logTail(80)}`); });
    assert.match(String(gone.reason), /deleted by the peer|replaced by a rekey/);
    assert.equal(ours.events.filter((e) => e.event === 'error').length, 0, JSON.stringify(ours.events.filter((e) => e.event === 'error')));
  });
});
