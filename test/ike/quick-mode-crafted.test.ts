// Hand-built Quick Mode messages, correctly encrypted and hashed, that a conforming peer would not send:
// each must fail with its own error kind and notify, never throw, and leave no exchange behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { ExchangeType, IdType, NotifyType, parseMessage, parsePayloads, type Payload, type SaPayload } from '../../ts/isakmp/index.js';
import {
  espOffer,
  hash1,
  hash2,
  IsakmpSaContext,
  phase2Iv,
  readInformational,
  sealProtected,
  trafficSelector,
  tsIdPayload,
  type IsakmpSa,
} from '../../ts/ike/index.js';
import { child, esp, phase1Pair } from './quick-mode-pair.js';

const crypto: CryptoProvider = nativeCrypto ?? nodeCrypto;
let cached: Promise<{ i: IsakmpSa; r: IsakmpSa }> | null = null;
const sas = () => (cached ??= phase1Pair(crypto));
const nonce = Buffer.alloc(32, 0x4e);
const spi = Buffer.from('11223344', 'hex');
const offer = (s: string) => espOffer(esp(s), spi, { lifetimeSeconds: 3600, encapsulationMode: 1 });

function qm1(sa: IsakmpSa, mid: number, rest: Payload[]): Buffer {
  return sealProtected(crypto, sa, ExchangeType.QUICK_MODE, mid, phase2Iv(crypto, sa, mid), rest, (b) => hash1(crypto, sa, mid, b)).message;
}

/** The notify type in an Informational the responder sent back (decrypted with the same keys). */
function notifyIn(sa: IsakmpSa, msg: Buffer): number {
  const p = parseMessage(msg);
  assert.ok(p.ok && 'encrypted' in p.value);
  const r = readInformational(crypto, sa, p.value.header, p.value.encrypted);
  assert.ok(r.ok);
  const e = r.events[0]!;
  assert.ok(e.type === 'notify');
  return e.notifyType;
}

const cases: { name: string; rest: () => Payload[]; kind: string; notify: number; message: RegExp }[] = [
  { name: 'no NONCE', rest: () => [offer('aes128-sha1')], kind: 'PAYLOAD_MALFORMED', notify: NotifyType.PAYLOAD_MALFORMED, message: /no NONCE payload/ },
  { name: 'a 4-byte nonce', rest: () => [offer('aes128-sha1'), { type: 10, data: Buffer.alloc(4) }], kind: 'PAYLOAD_MALFORMED', notify: NotifyType.PAYLOAD_MALFORMED, message: /nonce of 4 bytes/ },
  { name: 'no SA', rest: () => [{ type: 10, data: nonce }], kind: 'PAYLOAD_MALFORMED', notify: NotifyType.PAYLOAD_MALFORMED, message: /no SA payload/ },
  {
    name: 'PFS group offered without KE',
    rest: () => [offer('aes128-sha1-modp2048'), { type: 10, data: nonce }],
    kind: 'PAYLOAD_MALFORMED',
    notify: NotifyType.INVALID_KEY_INFORMATION,
    message: /no KE payload/,
  },
  {
    name: 'a KE of zeros (invalid DH value)',
    rest: () => [offer('aes128-sha1-modp2048'), { type: 10, data: nonce }, { type: 4, data: Buffer.alloc(256) }],
    kind: 'INVALID_KE',
    notify: NotifyType.INVALID_KEY_INFORMATION,
    message: /invalid DH public value/,
  },
  {
    name: 'a KE of the wrong length',
    rest: () => [offer('aes128-sha1-ecp256'), { type: 10, data: nonce }, { type: 4, data: Buffer.alloc(10, 1) }],
    kind: 'INVALID_KE',
    notify: NotifyType.INVALID_KEY_INFORMATION,
    message: /KE payload of 10 bytes/,
  },
  {
    name: 'one ID payload',
    rest: () => [offer('aes128-sha1'), { type: 10, data: nonce }, tsIdPayload(trafficSelector('10.99.0.1')!)],
    kind: 'PAYLOAD_MALFORMED',
    notify: NotifyType.INVALID_ID_INFORMATION,
    message: /1 ID payloads/,
  },
  {
    name: 'FQDN IDs',
    rest: () => [offer('aes128-sha1'), { type: 10, data: nonce }, { type: 5, idType: IdType.FQDN, protocolId: 0, port: 0, data: Buffer.from('a.example') }, tsIdPayload(trafficSelector('10.99.0.2')!)],
    kind: 'POLICY',
    notify: NotifyType.INVALID_ID_INFORMATION,
    message: /not address selectors/,
  },
  {
    name: 'an AH-only proposal',
    rest: () => {
      const sa = offer('aes128-sha1') as SaPayload;
      sa.proposals[0]!.protocolId = 2;
      return [sa, { type: 10, data: nonce }];
    },
    kind: 'NO_PROPOSAL_CHOSEN',
    notify: NotifyType.NO_PROPOSAL_CHOSEN,
    message: /peer offered no ESP proposal/,
  },
  {
    name: 'an unknown IPsec attribute',
    rest: () => {
      const sa = offer('aes128-sha1') as SaPayload;
      sa.proposals[0]!.transforms[0]!.attributes.push({ type: 99, value: 1 });
      return [sa, { type: 10, data: nonce }];
    },
    kind: 'NO_PROPOSAL_CHOSEN',
    notify: NotifyType.NO_PROPOSAL_CHOSEN,
    message: /unknown attributes 99/,
  },
  {
    name: 'AES without Key Length',
    rest: () => {
      const sa = offer('aes128-sha1') as SaPayload;
      sa.proposals[0]!.transforms[0]!.attributes.shift();
      return [sa, { type: 10, data: nonce }];
    },
    kind: 'NO_PROPOSAL_CHOSEN',
    notify: NotifyType.NO_PROPOSAL_CHOSEN,
    message: /peer offered aes-sha1/,
  },
];

for (const c of cases) {
  test(`responder: QM1 with ${c.name} -> ${c.kind}`, async () => {
    const base = await sas();
    const ctx = new IsakmpSaContext(crypto, base.r, { children: [child('c', 'aes128-sha1'), child('d', 'aes128-sha1-modp2048'), child('e', 'aes128-sha1-ecp256')] });
    const out = await ctx.handle(qm1(base.i, 777, c.rest()), 0);
    const f = out.events.find((e) => e.type === 'childFailed');
    assert.ok(f && f.type === 'childFailed', `events: ${JSON.stringify(out.events)} dropped: ${out.dropped}`);
    assert.equal(f.error.kind, c.kind);
    assert.match(f.error.message, c.message);
    assert.equal(out.send.length, 1);
    assert.equal(notifyIn(base.i, out.send[0]!), c.notify);
    assert.equal(ctx.pendingExchanges, 0);
    // The same QM1 again (the peer did not get the notify) is refused again, with a new notify.
    const again = await ctx.handle(qm1(base.i, 777, c.rest()), 1);
    assert.equal(again.send.length, 1);
    assert.equal(notifyIn(base.i, again.send[0]!), c.notify);
    assert.equal(ctx.pendingExchanges, 0);
  });
}

/** Runs our initiator against a hand-made QM2 built from its QM1. */
async function initiatorGets(makeQm2: (ni: Buffer, saI: SaPayload) => Payload[]) {
  const base = await sas();
  const ctx = new IsakmpSaContext(crypto, base.i, { children: [] });
  const p = child('c', 'aes128-sha1', { localTs: trafficSelector('10.1.0.0/24')!, remoteTs: trafficSelector('10.2.0.0/24')! });
  const { messageId: mid, out } = await ctx.initiate(p, 0);
  // Read QM1 as the responder would.
  const m = parseMessage(out.send[0]!);
  assert.ok(m.ok && 'encrypted' in m.value);
  const iv = phase2Iv(crypto, base.r, mid);
  const plain = crypto.cbcDecrypt(base.r.proposal.encryption, base.r.encryptionKey, iv, m.value.encrypted);
  const pl = parsePayloads(8, plain);
  assert.ok(pl.ok);
  const ni = pl.value.find((x) => x.type === 10)!.data as Buffer;
  const saI = pl.value.find((x): x is SaPayload => x.type === 1)!;
  const next = Buffer.from(m.value.encrypted.subarray(m.value.encrypted.length - 16));
  const qm2 = sealProtected(crypto, base.r, ExchangeType.QUICK_MODE, mid, next, makeQm2(ni, saI), (b) => hash2(crypto, base.r, mid, ni, b)).message;
  return { r: await ctx.handle(qm2, 1), ctx, base };
}

test('initiator: a QM2 choosing a transform we did not offer fails with NO_PROPOSAL_CHOSEN and a notify', async () => {
  const { r, ctx, base } = await initiatorGets(() => {
    const answer = espOffer(esp('aes256gcm16'), Buffer.from('55667788', 'hex'), { lifetimeSeconds: 3600, encapsulationMode: 1 });
    return [answer, { type: 10, data: nonce }, ...idsOf('10.1.0.0/24', '10.2.0.0/24')];
  });
  const f = r.events.find((e) => e.type === 'childFailed');
  assert.ok(f && f.type === 'childFailed');
  assert.equal(f.error.kind, 'NO_PROPOSAL_CHOSEN');
  assert.match(f.error.message, /chose aes256gcm16, which we did not offer/);
  assert.equal(notifyIn(base.r, r.send[0]!), NotifyType.NO_PROPOSAL_CHOSEN);
  assert.equal(ctx.pendingExchanges, 0);
});

test('initiator: a QM2 with traffic selectors outside ours fails; narrowed ones are accepted', async () => {
  const answer = (saI: SaPayload): SaPayload => ({ ...saI, proposals: [{ ...saI.proposals[0]!, spi: Buffer.from('55667788', 'hex') }] });
  const bad = await initiatorGets((_ni, saI) => [answer(saI), { type: 10, data: nonce }, ...idsOf('10.1.0.0/16', '10.2.0.0/24')]);
  const f = bad.r.events.find((e) => e.type === 'childFailed');
  assert.ok(f && f.type === 'childFailed');
  assert.equal(f.error.message, 'traffic selectors do not match: responder answered 10.1.0.0/16 <=> 10.2.0.0/24, we proposed 10.1.0.0/24 <=> 10.2.0.0/24');
  const narrowed = await initiatorGets((_ni, saI) => [answer(saI), { type: 10, data: nonce }, ...idsOf('10.1.0.0/25', '10.2.0.7')]);
  const c = narrowed.r.events.find((e) => e.type === 'childSa');
  assert.ok(c && c.type === 'childSa');
  assert.deepEqual(c.child.localTs, trafficSelector('10.1.0.0/25'));
  assert.deepEqual(c.child.remoteTs, trafficSelector('10.2.0.7'));
  assert.equal(c.child.spiOut.toString('hex'), '55667788');
});

function idsOf(a: string, b: string): Payload[] {
  return [tsIdPayload(trafficSelector(a)!), tsIdPayload(trafficSelector(b)!)];
}
