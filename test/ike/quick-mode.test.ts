import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import {
  EncapsulationMode,
  ExchangeType,
  Flags,
  NotifyType,
  ProtocolId,
  parseMessage,
  parsePayloads,
  type SaPayload,
} from '../../ts/isakmp/index.js';
import { hash1, sealProtected } from '../../ts/ike/phase2-crypto.js';
import { notifyPayload } from '../../ts/ike/notify.js';
import {
  createChildEspSas,
  espSaParams,
  IsakmpSaContext,
  trafficSelector,
  type ChildSa,
  type IsakmpSa,
  type Phase2Policy,
  plainIsakmpSa,
} from '../../ts/ike/index.js';
import { child, phase1Pair, Phase2Pair } from './quick-mode-pair.js';

const providers: CryptoProvider[] = [nativeCrypto, nodeCrypto].filter((p): p is CryptoProvider => p !== null);
const crypto = providers[0]!;

const phase1Cache = new Map<string, Promise<{ i: IsakmpSa; r: IsakmpSa }>>();
function sas(c: CryptoProvider, ike = 'aes128-sha1-modp2048', mode: 'main' | 'aggressive' = 'main') {
  const k = `${c.name}/${ike}/${mode}`;
  if (!phase1Cache.has(k)) phase1Cache.set(k, phase1Pair(c, ike, mode));
  return phase1Cache.get(k)!;
}

const ts = (s: string, proto = 0, port = 0) => {
  const t = trafficSelector(s, proto, port);
  assert.ok(t, s);
  return t;
};
const netA = ts('10.99.1.0/24');
const netB = ts('10.99.2.0/24');

/** The two children are the two ends of one pair of SAs: our inbound is the peer's outbound. */
function assertMirrored(a: ChildSa, b: ChildSa): void {
  assert.deepEqual(a.spiIn, b.spiOut);
  assert.deepEqual(a.spiOut, b.spiIn);
  assert.notDeepEqual(a.spiIn, a.spiOut);
  assert.deepEqual(a.inbound, b.outbound);
  assert.deepEqual(a.outbound, b.inbound);
  assert.notDeepEqual(a.inbound.encryptionKey, a.outbound.encryptionKey);
  assert.equal(a.algorithm, b.algorithm);
  assert.equal(a.messageId, b.messageId);
  assert.equal(a.lifetimeSeconds, b.lifetimeSeconds);
  assert.equal(a.initiator, !b.initiator);
  assert.deepEqual(a.localTs, b.remoteTs);
  assert.deepEqual(a.remoteTs, b.localTs);
}

/** Real ESP both ways with the derived keys: what one side seals the other opens, and a wrong SA fails. */
function assertEspWorks(a: ChildSa, b: ChildSa): void {
  const sa = createChildEspSas(a);
  const sb = createChildEspSas(b);
  const inner = Buffer.from('4500001c0000000040010000' + '0a630101' + '0a630201' + '0800f7ff00000000', 'hex');
  for (const [from, to] of [[sa, sb], [sb, sa]] as const) {
    for (let k = 0; k < 3; k++) {
      const pkt = from.outbound.seal(inner, 4);
      const r = to.inbound.open(pkt);
      assert.ok(r.ok, `open: ${!r.ok && r.reason}`);
      assert.deepEqual(r.payload, inner);
      assert.equal(r.nextHeader, 4);
    }
  }
  // Our own outbound packets are not for our inbound SA (different SPI and keys).
  const own = sa.outbound.seal(inner, 4);
  assert.equal(sa.inbound.open(own).ok, false);
  for (const s of [sa, sb]) {
    s.inbound.destroy();
    s.outbound.destroy();
  }
}

for (const c of providers) {
  for (const alg of ['aes128-sha1', 'aes256-sha256', 'aes128gcm16', 'aes256gcm16', 'chacha20poly1305']) {
    for (const pfs of ['', '-modp2048', '-ecp256']) {
      test(`${c.name}: Quick Mode ${alg}${pfs || ' (no PFS)'}, both roles, keys mirror and ESP passes both ways`, async () => {
        const pair1 = await sas(c);
        for (const starter of ['i', 'r'] as const) {
          const p = child('net', alg + pfs, { localTs: starter === 'i' ? netA : netB, remoteTs: starter === 'i' ? netB : netA });
          const q = child('net', alg + pfs, { localTs: starter === 'i' ? netB : netA, remoteTs: starter === 'i' ? netA : netB });
          const pair = new Phase2Pair(c, pair1, starter === 'i' ? { i: [p], r: [q] } : { i: [q], r: [p] });
          await pair.initiate(p, starter);
          await pair.run();
          const [ci] = pair.children(starter);
          const [cr] = pair.children(starter === 'i' ? 'r' : 'i');
          assert.ok(ci && cr, `children: ${pair.failures('i').concat(pair.failures('r')).map((e) => e.message).join('; ')}`);
          assert.equal(pair.wire.length, 3);
          assert.equal(ci.initiator, true);
          assertMirrored(ci, cr);
          assert.equal(ci.algorithm, alg);
          assert.equal(ci.pfsGroup, pfs === '' ? undefined : pfs === '-modp2048' ? 14 : 19);
          assert.equal(ci.proposal, alg + pfs);
          assert.equal(ci.mode, 'tunnel');
          assert.equal(ci.encapsulation, false);
          assertEspWorks(ci, cr);
        }
      });
    }
  }
}

test('the wire: three encrypted Quick Mode messages with one message ID; QM1 carries SA, Ni, KE, IDci, IDcr', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1-modp2048', { localTs: netB, remoteTs: netA })] });
  const mid = await pair.initiate(child('c', 'aes128-sha1-modp2048', { localTs: netA, remoteTs: netB }));
  await pair.run();
  assert.equal(pair.wire.length, 3);
  for (const w of pair.wire) {
    const m = parseMessage(w.bytes);
    assert.ok(m.ok && 'encrypted' in m.value);
    assert.equal(m.value.header.exchangeType, ExchangeType.QUICK_MODE);
    assert.equal(m.value.header.messageId, mid);
    assert.equal(m.value.header.flags, Flags.ENCRYPTION);
  }
  assert.notEqual(mid, 0);
});

test('traffic selectors: the responder accepts selectors inside its own, echoes them; the initiator keeps them', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('wide', 'aes128gcm16', { localTs: ts('10.99.0.0/16'), remoteTs: ts('10.0.0.0/8') })] });
  await pair.initiate(child('narrow', 'aes128gcm16', { localTs: ts('10.1.2.3', 6, 443), remoteTs: ts('10.99.2.0-10.99.2.9', 6, 0) }));
  await pair.run();
  const [ci] = pair.children('i');
  const [cr] = pair.children('r');
  assert.ok(ci && cr);
  assert.deepEqual(cr.remoteTs, ts('10.1.2.3', 6, 443));
  assert.deepEqual(cr.localTs, ts('10.99.2.0-10.99.2.9', 6));
  assert.equal(cr.name, 'wide');
  assertMirrored(ci, cr);
});

test('traffic selectors: a proposal holding all of ours (vpnc: its address <=> 0.0.0.0/0) is narrowed to ours, in QM2\'s IDs too; a partial overlap is refused', async () => {
  const responder = [child('ra', 'aes128-sha1', { localTs: netB, remoteTs: ts('10.99.70.1') })];
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: responder });
  await pair.initiate(child('vpnc', 'aes128-sha1', { localTs: ts('10.99.70.1'), remoteTs: ts('0.0.0.0/0') }));
  await pair.run();
  const [ci] = pair.children('i');
  const [cr] = pair.children('r');
  assert.ok(ci && cr, JSON.stringify(pair.failures('r')));
  assert.deepEqual([cr.localTs, cr.remoteTs], [netB, ts('10.99.70.1')]);
  // the initiator learnt the narrowed selector from QM2's IDcr
  assert.deepEqual([ci.localTs, ci.remoteTs], [ts('10.99.70.1'), netB]);
  assertMirrored(ci, cr);
  // overlapping without holding ours: refused as before
  const pair2 = new Phase2Pair(crypto, await sas(crypto), { r: responder });
  await pair2.initiate(child('vpnc', 'aes128-sha1', { localTs: ts('10.99.70.1'), remoteTs: ts('10.99.2.128-10.99.3.10') }));
  await pair2.run();
  assert.match(pair2.failures('r')[0]?.message ?? '', /traffic selectors do not match: peer proposed 10\.99\.70\.1 <=> 10\.99\.2\.128-10\.99\.3\.10/);
  assert.equal(pair2.children('r').length, 0);
});

test('no IDs configured: no ID payloads, the selectors are the endpoint addresses', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('host', 'aes128-sha1')] });
  await pair.initiate(child('host', 'aes128-sha1'));
  await pair.run();
  const [ci] = pair.children('i');
  assert.ok(ci);
  assert.deepEqual(ci.localTs, ts('10.99.0.1'));
  assert.deepEqual(ci.remoteTs, ts('10.99.0.2'));
  // A responder whose policy is a subnet elsewhere refuses the implicit host selectors.
  const pair2 = new Phase2Pair(crypto, await sas(crypto), { r: [child('net', 'aes128-sha1', { localTs: netB, remoteTs: netA })] });
  await pair2.initiate(child('host', 'aes128-sha1'));
  await pair2.run();
  assert.match(pair2.failures('r')[0]!.message, /traffic selectors do not match: peer proposed 10\.99\.0\.1 <=> 10\.99\.0\.2, we allow 10\.99\.1\.0\/24 <=> 10\.99\.2\.0\/24/);
});

test('traffic selector mismatch: INVALID_ID_INFORMATION both ways, the reason on the responder', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1', { localTs: netB, remoteTs: netA })] });
  await pair.initiate(child('c', 'aes128-sha1', { localTs: ts('10.5.0.0/16'), remoteTs: netB }));
  await pair.run();
  const [er] = pair.failures('r');
  assert.ok(er);
  assert.equal(er.notifyType, NotifyType.INVALID_ID_INFORMATION);
  assert.equal(er.message, 'traffic selectors do not match: peer proposed 10.5.0.0/16 <=> 10.99.2.0/24, we allow 10.99.1.0/24 <=> 10.99.2.0/24');
  const [ei] = pair.failures('i');
  assert.ok(ei);
  assert.equal(ei.kind, 'PEER_NOTIFY');
  assert.match(ei.message, /INVALID_ID_INFORMATION/);
  assert.equal(pair.children('i').length + pair.children('r').length, 0);
  assert.equal(pair.i.ctx.pendingExchanges + pair.r.ctx.pendingExchanges, 0);
  // The notify is an encrypted Informational.
  const n = parseMessage(pair.wire[1]!.bytes);
  assert.ok(n.ok && n.value.header.exchangeType === ExchangeType.INFORMATIONAL && 'encrypted' in n.value);
});

test('proposal mismatch: a proposal the data path lacks is never listed as one we accept (issue 19)', async () => {
  const des = { ...child('x', 'aes128-sha1').proposals[0]!, algorithm: 'des-sha1' }; // only by hand: the config refuses it
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [{ ...child('c', 'aes256gcm16'), proposals: [...child('c', 'aes256gcm16').proposals, des] }] });
  await pair.initiate(child('c', 'aes128-sha1'));
  await pair.run();
  const [er] = pair.failures('r');
  assert.equal(er?.kind, 'NO_PROPOSAL_CHOSEN');
  assert.match(er!.message, /peer offered aes128-sha1; we accept aes256gcm16 \(\+1 not supported by the ESP data path\)$/);
});

test('proposal mismatch: NO_PROPOSAL_CHOSEN names both sides\' proposals; the initiator stops at once', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes256gcm16')] });
  await pair.initiate(child('c', 'aes128-sha1'));
  await pair.run();
  const [er] = pair.failures('r');
  assert.equal(er?.kind, 'NO_PROPOSAL_CHOSEN');
  assert.match(er!.message, /no matching ESP proposal: peer offered aes128-sha1; we accept aes256gcm16/);
  const [ei] = pair.failures('i');
  assert.equal(ei?.kind, 'PEER_NOTIFY');
  assert.match(ei!.message, /NO_PROPOSAL_CHOSEN/);
  assert.equal(pair.wire.length, 2, 'QM1 and the notify, no retransmission afterwards');
});

test('selection order: responder priority by default, initiator priority on request', async () => {
  for (const [selection, expect] of [['responder', 'aes256gcm16'], ['initiator', 'aes128-sha1']] as const) {
    const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes256gcm16', { selection, proposals: [...child('x', 'aes256gcm16').proposals, ...child('x', 'aes128-sha1').proposals] })] });
    await pair.initiate({ name: 'c', proposals: [...child('x', 'aes128-sha1').proposals, ...child('x', 'aes256gcm16').proposals] });
    await pair.run();
    assert.equal(pair.children('i')[0]?.algorithm, expect);
    assert.equal(pair.children('r')[0]?.algorithm, expect);
  }
});

test('PFS mismatch: required by the responder but not offered, or another group -> NO_PROPOSAL_CHOSEN', async () => {
  for (const [offer, want, why] of [
    ['aes128-sha1', 'aes128-sha1-modp2048', /we require PFS, the peer offered none/],
    ['aes128-sha1-ecp256', 'aes128-sha1-modp2048', /different DH groups/],
    ['aes128-sha1-modp2048', 'aes128-sha1', /the peer wants PFS, we do not use it/],
  ] as const) {
    const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', want)] });
    await pair.initiate(child('c', offer));
    await pair.run();
    const [er] = pair.failures('r');
    assert.equal(er?.kind, 'NO_PROPOSAL_CHOSEN', offer);
    assert.match(er!.message, why);
    assert.equal(pair.failures('i')[0]?.kind, 'PEER_NOTIFY');
  }
});

test('lifetimes: a shorter responder answers with RESPONDER-LIFETIME and both use the shorter one', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1', { lifetimeSeconds: 1200, lifetimeKilobytes: 5000 })] });
  await pair.initiate(child('c', 'aes128-sha1', { lifetimeSeconds: 3600 }));
  await pair.run();
  const [ci] = pair.children('i');
  const [cr] = pair.children('r');
  assert.equal(ci?.lifetimeSeconds, 1200);
  assert.equal(cr?.lifetimeSeconds, 1200);
  assert.equal(ci?.lifetimeKilobytes, 5000);
  assert.equal(cr?.lifetimeKilobytes, 5000);
  // A shorter initiator: taken as offered, no notify.
  const pair2 = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1', { lifetimeSeconds: 7200 })] });
  await pair2.initiate(child('c', 'aes128-sha1', { lifetimeSeconds: 600 }));
  await pair2.run();
  assert.equal(pair2.children('i')[0]?.lifetimeSeconds, 600);
  assert.equal(pair2.children('r')[0]?.lifetimeSeconds, 600);
  assert.equal(pair2.children('r')[0]!.expiresAt - pair2.children('r')[0]!.establishedAt, 600_000);
});

test('NAT-T: UDP encapsulation modes (RFC 3947 3/4, draft 61443/61444), transport mode, ESN', async () => {
  const base = await sas(crypto);
  for (const [version, mode, wire] of [
    ['rfc3947', 'tunnel', EncapsulationMode.UDP_TUNNEL],
    ['rfc3947', 'transport', EncapsulationMode.UDP_TRANSPORT],
    ['draft', 'tunnel', EncapsulationMode.UDP_TUNNEL_DRAFT],
    [null, 'transport', EncapsulationMode.TRANSPORT],
  ] as const) {
    const nat = { version, localBehindNat: version !== null, remoteBehindNat: false };
    const pair = new Phase2Pair(crypto, { i: { ...plainIsakmpSa(base.i), nat }, r: { ...plainIsakmpSa(base.r), nat: { ...nat, localBehindNat: false, remoteBehindNat: version !== null } } }, { r: [child('c', 'aes128gcm16-esn', { mode })] });
    await pair.initiate(child('c', 'aes128gcm16-esn', { mode }));
    await pair.run();
    const [ci] = pair.children('i');
    const [cr] = pair.children('r');
    assert.ok(ci && cr, pair.failures('r')[0]?.message);
    assert.equal(ci.mode, mode);
    assert.equal(cr.mode, mode);
    assert.equal(ci.encapsulation, version !== null);
    assert.equal(cr.encapsulation, version !== null);
    assert.equal(ci.esn, true);
    assert.equal(espSaParams(ci, 'outbound').udpEncapsulation, version !== null);
    assert.equal(espSaParams(ci, 'outbound').esn, true);
    // The encapsulation mode attribute on the wire (decrypt QM1 with the responder's view of the keys).
    assert.equal(encapModeOf(pair.wire[0]!.bytes, base.i, crypto), wire);
    assertEspWorks(ci, cr);
  }
  // A UDP mode offered to a responder that did not negotiate NAT-T is not acceptable.
  const nat = { version: 'rfc3947' as const, localBehindNat: true, remoteBehindNat: false };
  const pair = new Phase2Pair(crypto, { i: { ...plainIsakmpSa(base.i), nat }, r: { ...plainIsakmpSa(base.r), nat: { version: null, localBehindNat: false, remoteBehindNat: false } } }, { r: [child('c', 'aes128gcm16')] });
  await pair.initiate(child('c', 'aes128gcm16'));
  await pair.run();
  assert.equal(pair.failures('r')[0]?.kind, 'NO_PROPOSAL_CHOSEN');
});

function encapModeOf(qm1: Buffer, sa: IsakmpSa, c: CryptoProvider): number {
  const m = parseMessage(qm1);
  assert.ok(m.ok && 'encrypted' in m.value);
  const iv = c.phase2Iv(sa.proposal.hash, sa.lastIv, m.value.header.messageId, 16);
  const plain = c.cbcDecrypt(sa.proposal.encryption, sa.encryptionKey, iv, m.value.encrypted);
  const p = parsePayloads(8, plain);
  assert.ok(p.ok);
  const saP = p.value.find((x): x is SaPayload => x.type === 1)!;
  return saP.proposals[0]!.transforms[0]!.attributes.find((a) => a.type === 4)!.value as number;
}

test('a tampered message is ignored (HASH or padding fails), the genuine retransmission completes', async () => {
  for (const target of [0, 1, 2]) {
    let seen = 0;
    const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1-modp2048')] }, (b) => {
      if (seen++ !== target) return [b];
      const t = Buffer.from(b);
      t[t.length - 20]! ^= 0x01; // inside the encrypted body
      return [t];
    });
    await pair.initiate(child('c', 'aes128-sha1-modp2048', { retransmit: { tries: 3, timeoutMs: 1000, factor: 2 } }));
    await pair.run();
    const [ci] = pair.children('i');
    const [cr] = pair.children('r');
    assert.ok(ci && cr, `target ${target}: ${pair.failures('i')[0]?.message ?? pair.failures('r')[0]?.message}`);
    assertMirrored(ci, cr);
    assert.ok(pair.i.dropped.concat(pair.r.dropped).some((d) => /does not verify|valid payloads/.test(d)), 'the tampered copy was dropped');
  }
});

test('lost and duplicated messages: retransmission recovers, duplicates get the cached answer, one child each', async () => {
  for (const lose of [0, 1, 2]) {
    let n = 0;
    const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes256-sha256-ecp256')] }, (b) => (n++ === lose ? [] : [b, b]));
    await pair.initiate(child('c', 'aes256-sha256-ecp256', { retransmit: { tries: 3, timeoutMs: 1000, factor: 2 } }));
    await pair.run();
    assert.equal(pair.children('i').length, 1, `lose ${lose}`);
    assert.equal(pair.children('r').length, 1, `lose ${lose}`);
    assertMirrored(pair.children('i')[0]!, pair.children('r')[0]!);
    assert.equal(pair.i.ctx.pendingExchanges + pair.r.ctx.pendingExchanges, 0);
  }
});

test('no answer at all: the initiator gives up after its retransmissions with TIMEOUT', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1')] }, () => []);
  await pair.initiate(child('c', 'aes128-sha1', { retransmit: { tries: 2, timeoutMs: 1000, factor: 2 } }));
  await pair.run();
  assert.equal(pair.wire.length, 3);
  assert.equal(pair.failures('i')[0]?.kind, 'TIMEOUT');
  assert.match(pair.failures('i')[0]!.message, /no answer to Quick Mode message 1 from 10\.99\.0\.2/);
});

test('several Quick Modes at once on one ISAKMP SA, from both sides: distinct message IDs, SPIs, IVs and keys', async () => {
  const base = await sas(crypto);
  const lastIvBefore = [Buffer.from(base.i.lastIv), Buffer.from(base.r.lastIv)];
  const pairs = [
    [ts('10.1.0.0/24'), ts('10.2.0.0/24')],
    [ts('10.1.1.0/24'), ts('10.2.1.0/24')],
    [ts('10.1.2.0/24'), ts('10.2.2.0/24')],
  ] as const;
  const rChildren = pairs.map(([l, r], k) => child(`c${k}`, 'aes128gcm16-modp2048', { localTs: r, remoteTs: l }));
  const iChildren = pairs.map(([l, r], k) => child(`c${k}`, 'aes128gcm16-modp2048', { localTs: l, remoteTs: r }));
  const pair = new Phase2Pair(crypto, base, { i: iChildren, r: rChildren });
  const mids = [await pair.initiate(iChildren[0]!), await pair.initiate(iChildren[1]!), await pair.initiate(rChildren[2]!, 'r')];
  assert.equal(new Set(mids).size, 3);
  // The three QM1s are in flight before any answer.
  await pair.run();
  const ci = pair.children('i');
  const cr = pair.children('r');
  assert.equal(ci.length, 3);
  assert.equal(cr.length, 3);
  for (const a of ci) {
    const b = cr.find((x) => x.messageId === a.messageId)!;
    assertMirrored(a, b);
  }
  const spis = ci.flatMap((c) => [c.spiIn.toString('hex'), c.spiOut.toString('hex')]);
  assert.equal(new Set(spis).size, 6);
  assert.equal(new Set(ci.map((c) => c.inbound.encryptionKey.toString('hex'))).size, 3);
  assert.deepEqual(new Set(ci.map((c) => c.name)), new Set(['c0', 'c1', 'c2']));
  // The phase 1 IV is untouched by phase 2.
  assert.deepEqual([base.i.lastIv, base.r.lastIv], lastIvBefore);
});

test('garbage, truncations and bit flips at every step never throw; the exchange still completes', async () => {
  const rnd = (n: number) => crypto.randomBytes(n);
  let k = 0;
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1-modp2048')] }, (b) => {
    k++;
    const flipped = Buffer.from(b);
    flipped[(k * 7919) % b.length]! ^= 1 << k % 8;
    const badHeader = Buffer.from(b);
    badHeader[19] = 0; // E flag cleared
    return [rnd(k % 40), rnd(200), b.subarray(0, 28 + (k % 30)), flipped, badHeader, Buffer.concat([b.subarray(0, 28), rnd(b.length - 28)]), b];
  });
  await pair.initiate(child('c', 'aes128-sha1-modp2048'));
  await pair.run(60_000, () => pair.children('i').length === 1 && pair.children('r').length === 1);
  assert.equal(pair.children('i').length, 1);
  assert.equal(pair.children('r').length, 1);
  assert.equal(pair.failures('i').length + pair.failures('r').length, 0);
});

for (const setter of ['i', 'r'] as const) {
  test(`commit bit in QM${setter === 'i' ? '1 (an initiator' : '2 (IBM z/OS, racoon as responders'} sets it): accepted, the child is up at QM3 on both sides`, async () => {
    const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1')] }, (b, from) => {
      if (from !== setter) return [b];
      const t = Buffer.from(b);
      t[19]! |= Flags.COMMIT; // the header is not covered by the HASHes
      return [t];
    });
    await pair.initiate(child('c', 'aes128-sha1'));
    await pair.run();
    assert.equal(pair.failures('r').length + pair.failures('i').length, 0);
    assert.equal(pair.children('i').length, 1);
    assert.equal(pair.children('r').length, 1);
  });
}

/**
 * The fourth message a commit-bit peer sends after QM3 (racoon, IBM z/OS as responder): HDR*(Quick Mode, the
 * exchange's M-ID, C flag), HASH(4) = prf(SKEYID_a, M-ID | N), N(CONNECTED), CBC-chained on QM3's last block.
 */
function connectedMessage(sa: IsakmpSa, messageId: number, qm3: Buffer, forge = false): Buffer {
  const iv = qm3.subarray(qm3.length - 16); // AES: the IV is the last cipher block of QM3
  const n = notifyPayload(NotifyType.CONNECTED, ProtocolId.IPSEC_ESP, Buffer.from([1, 2, 3, 4]));
  const m = sealProtected(crypto, sa, ExchangeType.QUICK_MODE, messageId, iv, [n], (b) => (forge ? Buffer.alloc(20, 7) : hash1(crypto, sa, messageId, b))).message;
  m[19]! |= Flags.COMMIT;
  return m;
}

for (const sender of ['r', 'i'] as const) {
  test(`a commit-bit peer's CONNECTED after QM3 (sent by the ${sender === 'r' ? 'responder' : 'initiator'}): verified and taken quietly, a copy too; a forged one is dropped`, async () => {
    const base = await sas(crypto);
    const pair = new Phase2Pair(crypto, base, { r: [child('c', 'aes128-sha1')] });
    const messageId = await pair.initiate(child('c', 'aes128-sha1'));
    // stop when both have the child: the finished exchange is kept only while its peer may retransmit
    await pair.run(60_000, () => pair.children('i').length === 1 && pair.children('r').length === 1);
    assert.equal(pair.children('r').length, 1);
    const qm3 = pair.wire.filter((w) => w.from === 'i')[1]!.bytes;
    const to = sender === 'r' ? pair.i : pair.r;
    const before = { dropped: to.dropped.length, events: to.events.length };
    const m4 = connectedMessage(sender === 'r' ? base.r : base.i, messageId, qm3);
    for (const copy of [m4, m4]) {
      const out = await to.ctx.handle(copy, pair.now);
      assert.deepEqual([out.send, out.dropped, out.events], [[], [], []]);
    }
    const forged = await to.ctx.handle(connectedMessage(sender === 'r' ? base.r : base.i, messageId, qm3, true), pair.now);
    assert.equal(forged.send.length, 0);
    assert.match(forged.dropped[0] ?? '', /exchange already complete/);
    assert.deepEqual([to.dropped.length, to.events.length], [before.dropped, before.events]);
  });
}

test('aggressive-mode race: a QM1 that arrives before phase 1 completes is queued, then answered', async () => {
  const base = await sas(crypto, 'aes128-sha1-modp2048', 'aggressive');
  const r: Phase2Policy[] = [child('c', 'aes128-sha1')];
  const ctxI = new IsakmpSaContext(crypto, base.i, { children: [] });
  const ctxR = new IsakmpSaContext(crypto, null, { children: r });
  const { out } = await ctxI.initiate(child('c', 'aes128-sha1'), 0);
  const early = await ctxR.handle(out.send[0]!, 0);
  assert.deepEqual(early.send, []);
  assert.match(early.dropped[0]!, /queued/);
  assert.equal(ctxR.established, false);
  const done = await ctxR.establish(base.r, 10);
  assert.equal(done.send.length, 1, 'QM2 once phase 1 is complete');
  const qm3 = await ctxI.handle(done.send[0]!, 20);
  const ci = qm3.events.find((e) => e.type === 'childSa');
  const final = await ctxR.handle(qm3.send[0]!, 30);
  const cr = final.events.find((e) => e.type === 'childSa');
  assert.ok(ci && cr && ci.type === 'childSa' && cr.type === 'childSa');
  assertMirrored(ci.child, cr.child);
  // The queue is bounded.
  const ctx2 = new IsakmpSaContext(crypto, null, { children: r, maxEarlyMessages: 2 });
  for (let n = 0; n < 4; n++) await ctx2.handle((await ctxI.initiate(child('c', 'aes128-sha1'), 0)).out.send[0]!, 0);
  const later = await ctx2.establish(base.r, 0);
  assert.equal(later.send.length, 2);
});

test('an initiator policy that cannot be offered throws IkeError POLICY', async () => {
  const ctx = new IsakmpSaContext(crypto, (await sas(crypto)).i, { children: [] });
  await assert.rejects(ctx.initiate({ name: 'x', proposals: [] }, 0), { name: 'IkeError', kind: 'POLICY' });
  await assert.rejects(ctx.initiate({ name: 'x', proposals: [...child('a', 'aes128-sha1').proposals, ...child('b', 'aes128-sha1-modp2048').proposals] }, 0), /same PFS group/);
  // The config refuses such a proposal (config-esp.test.ts); a policy built by hand still gets a clear error.
  const des = { ...child('x', 'aes128-sha1').proposals[0]!, algorithm: 'des-sha1' };
  await assert.rejects(ctx.initiate({ name: 'x', proposals: [des] }, 0), /des-sha1 is not supported by the ESP data path/);
});

test('lifetimes above 16 bits travel as 4-byte TLV attributes, in the offer and in RESPONDER-LIFETIME', async () => {
  const pair = new Phase2Pair(crypto, await sas(crypto), { r: [child('c', 'aes128-sha1', { lifetimeSeconds: 86_400, lifetimeKilobytes: 900_000 })] });
  await pair.initiate(child('c', 'aes128-sha1', { lifetimeSeconds: 100_000, lifetimeKilobytes: 2_000_000 }));
  await pair.run();
  for (const c of [pair.children('i')[0], pair.children('r')[0]]) {
    assert.equal(c?.lifetimeSeconds, 86_400);
    assert.equal(c?.lifetimeKilobytes, 900_000);
  }
});

test('gateway-style: real aggressive-mode Phase1 machines, QM1 sent right after AM3 and handled before it', async () => {
  const { Phase1, CookieGenerator, parseIkeProposal } = await import('../../ts/ike/index.js');
  const { A, B, policy } = await import('./pair.js');
  const ike = parseIkeProposal('aes128-sha1-modp2048');
  assert.ok(ike.ok);
  const idA = { kind: 'ipv4', address: A.address } as const;
  const idB = { kind: 'ipv4', address: B.address } as const;
  const polI = policy({ mode: 'aggressive', proposals: ike.value, localId: idA, remoteId: idB });
  const polR = policy({ mode: 'aggressive', proposals: ike.value, localId: idB, remoteId: idA, allowAggressivePsk: true });
  const envI = { crypto, cookies: new CookieGenerator(crypto), local: A, remote: B };
  const envR = { crypto, cookies: new CookieGenerator(crypto), local: B, remote: A };
  const now = 5_000;
  const am1 = await Phase1.initiate(envI, polI, now);
  const am2 = await Phase1.respond(envR, [polR], am1.out.send[0]!, now);
  const am3 = await am1.phase1.handle(am2.out.send[0]!, now);
  assert.ok(am3.established);
  // The initiator starts its Quick Mode at once, as strongSwan does.
  const ctxI = new IsakmpSaContext(crypto, am3.established, { children: [] }, now);
  const qm1 = await ctxI.initiate(child('c', 'aes128gcm16-ecp256', { localTs: netA, remoteTs: netB }), now);
  // The responder's context exists from AM1 on (same cookies) and sees QM1 before AM3.
  const ctxR = new IsakmpSaContext(crypto, null, { children: [child('c', 'aes128gcm16-ecp256', { localTs: netB, remoteTs: netA })] }, now);
  assert.match((await ctxR.handle(qm1.out.send[0]!, now)).dropped[0]!, /queued/);
  const done = await am2.phase1!.handle(am3.send[0]!, now + 1);
  assert.ok(done.established);
  const qm2 = await ctxR.establish(done.established, now + 1);
  assert.equal(qm2.send.length, 1);
  const qm3 = await ctxI.handle(qm2.send[0]!, now + 2);
  const fin = await ctxR.handle(qm3.send[0]!, now + 3);
  const a = qm3.events.find((e) => e.type === 'childSa');
  const b = fin.events.find((e) => e.type === 'childSa');
  assert.ok(a?.type === 'childSa' && b?.type === 'childSa');
  assertMirrored(a.child, b.child);
  assertEspWorks(a.child, b.child);
});
