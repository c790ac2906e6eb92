import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { ExchangeType, Flags, ISAKMP_VERSION, NotifyType, ProtocolId, encodeMessage, parseMessage } from '../../ts/isakmp/index.js';
import {
  deleteEspPayload,
  deleteIsakmpPayload,
  Dpd,
  dpdPayload,
  informationalMessage,
  initialContactPayload,
  notifyPayload,
  readInformational,
  type IsakmpSa,
  plainIsakmpSa,
} from '../../ts/ike/index.js';
import { child, phase1Pair, Phase2Pair } from './quick-mode-pair.js';

const providers: CryptoProvider[] = [nativeCrypto, nodeCrypto].filter((p): p is CryptoProvider => p !== null);
const crypto = providers[0]!;
let cached: Promise<{ i: IsakmpSa; r: IsakmpSa }> | null = null;
const sas = () => (cached ??= phase1Pair(crypto));

test('Delete ESP after a Quick Mode: the peer learns our inbound SPI, which is its outbound SPI', async () => {
  const pair = new Phase2Pair(crypto, await sas(), { r: [child('c', 'aes128gcm16')] });
  await pair.initiate(child('c', 'aes128gcm16'));
  await pair.run();
  const [ci] = pair.children('i');
  const [cr] = pair.children('r');
  assert.ok(ci && cr);
  pair.inject(pair.i.ctx.deleteChildren([ci.spiIn]), 'i');
  await pair.run();
  const del = pair.r.events.find((e) => e.type === 'delete');
  assert.deepEqual(del, { type: 'delete', protocol: ProtocolId.IPSEC_ESP, spis: [cr.spiOut] });
});

test('Delete ISAKMP, INITIAL-CONTACT and other notifies become events on the peer', async () => {
  for (const c of providers) {
    const base = await phase1Pair(c);
    const pair = new Phase2Pair(c, base, { r: [] });
    const sent = [
      pair.i.ctx.informational([initialContactPayload(base.i)]),
      pair.i.ctx.informational([notifyPayload(NotifyType.CONNECTED, ProtocolId.IPSEC_ESP, Buffer.from('01020304', 'hex'), Buffer.from('x'))]),
      pair.r.ctx.deleteIsakmp(),
    ];
    sent.forEach((m, k) => pair.inject(m, k < 2 ? 'i' : 'r'));
    await pair.run();
    assert.deepEqual(pair.r.events.map((e) => e.type), ['initialContact', 'notify']);
    const n = pair.r.events[1]!;
    assert.ok(n.type === 'notify');
    assert.equal(n.name, 'CONNECTED');
    assert.equal(n.error, false);
    assert.deepEqual(n.data, Buffer.from('x'));
    assert.deepEqual(pair.i.events, [{ type: 'delete', protocol: ProtocolId.ISAKMP, spis: [Buffer.concat([base.i.cookieI, base.i.cookieR])] }]);
    // Each Informational has its own message ID.
    const mids = sent.map((m) => m.readUInt32BE(20));
    assert.equal(new Set(mids).size, 3);
  }
});

test('DPD: an idle peer is asked R-U-THERE, answers R-U-THERE-ACK with the same sequence number', async () => {
  const pair = new Phase2Pair(crypto, await sas(), { r: [] }, (b) => [b], { delayMs: 10_000, timeoutMs: 30_000, action: 'restart' });
  await pair.run(25_000);
  const req = pair.r.events.find((e) => e.type === 'dpdRequest');
  const ack = pair.i.events.find((e) => e.type === 'dpdAck');
  assert.ok(req && ack && req.type === 'dpdRequest' && ack.type === 'dpdAck');
  assert.equal(req.sequence, ack.sequence);
  assert.equal(pair.i.events.concat(pair.r.events).filter((e) => e.type === 'peerDead').length, 0);
  // The R-U-THERE went out 10 s after the start, not before.
  assert.ok(pair.wire.length >= 2);
});

test('DPD: a silent peer is declared dead after the timeout, once, with the configured action', async () => {
  const pair = new Phase2Pair(crypto, await sas(), { r: [] }, (_b, from) => (from === 'r' ? [] : [_b]), { delayMs: 10_000, timeoutMs: 35_000, action: 'clear' });
  const start = pair.now;
  await pair.run(120_000);
  const dead = pair.i.events.filter((e) => e.type === 'peerDead');
  assert.equal(dead.length, 1);
  assert.deepEqual(dead[0], { type: 'peerDead', action: 'clear', idleMs: 35_000 });
  const probes = pair.wire.filter((w) => w.from === 'i').length;
  assert.equal(probes, 3, 'R-U-THERE at 10, 20, 30 s (each with the next sequence number)');
  // The responder saw three requests with increasing sequence numbers and answered each (lost on the way).
  const seqs = pair.r.events.flatMap((e) => (e.type === 'dpdRequest' ? [e.sequence] : []));
  assert.deepEqual(seqs, [seqs[0]!, seqs[0]! + 1, seqs[0]! + 2]);
  assert.ok(pair.now - start < 120_000);
});

test('Dpd helper: activity postpones probes, a stray ACK is ignored, a matching ACK ends probing', () => {
  const d = new Dpd({ delayMs: 1000, timeoutMs: 5000, action: 'hold' }, 0, 41);
  assert.equal(d.deadline, 1000);
  assert.deepEqual(d.poll(999), { kind: 'none' });
  d.activity(900);
  assert.equal(d.deadline, 1900);
  assert.deepEqual(d.poll(1900), { kind: 'probe', sequence: 42 });
  assert.equal(d.ack(7, 2000), false);
  assert.deepEqual(d.poll(2900), { kind: 'probe', sequence: 43 });
  assert.equal(d.ack(42, 3000), true, 'an answer to an earlier probe still counts');
  assert.equal(d.deadline, 4000);
  assert.deepEqual(d.poll(4000), { kind: 'probe', sequence: 44 });
  assert.equal(d.deadline, 5000);
  for (let t = 5000; t < 8000; t += 1000) assert.equal(d.poll(t).kind, 'probe');
  assert.deepEqual(d.poll(8000), { kind: 'dead', action: 'hold', idleMs: 5000 }, 'timeout counted from the last sign of life (3000)');
  assert.equal(d.poll(10_000).kind, 'none');
  assert.equal(d.deadline, null);
  assert.equal(d.isDead, true);
});

test('forged, replayed or unauthenticated Informationals change nothing', async () => {
  const base = await sas();
  const pair = new Phase2Pair(crypto, base, { r: [] });
  const forger = { ...plainIsakmpSa(base.i), skeyidA: Buffer.alloc(base.i.skeyidA.length, 7) };
  const stranger = { ...plainIsakmpSa(base.i), cookieR: Buffer.alloc(8, 1) };
  const clear = encodeMessage({
    header: { initiatorCookie: base.i.cookieI, responderCookie: base.i.cookieR, nextPayload: 0, version: ISAKMP_VERSION, exchangeType: ExchangeType.INFORMATIONAL, flags: 0, messageId: 99, length: 0 },
    payloads: [deleteIsakmpPayload(base.i)],
  });
  const genuine = informationalMessage(crypto, base.i, 12345, [deleteEspPayload([Buffer.from('01020304', 'hex')])]);
  const otherSa = { ...plainIsakmpSa(base.i), cookieI: Buffer.alloc(8, 9) };
  for (const m of [
    informationalMessage(crypto, forger, 1, [deleteIsakmpPayload(base.i)]), // wrong SKEYID_a: HASH(1) fails
    informationalMessage(crypto, stranger, 2, [deleteIsakmpPayload(base.i)]), // other cookies
    clear, // not encrypted
    informationalMessage(crypto, base.i, 3, [deleteIsakmpPayload(otherSa)]), // authentic, but deletes another SA
    informationalMessage(crypto, base.i, 4, [dpdPayload(otherSa, false, 5)]), // R-U-THERE with another SA's cookies
    genuine,
    genuine, // replay
  ]) {
    pair.inject(m, 'i');
  }
  await pair.run();
  assert.deepEqual(pair.r.events, [{ type: 'delete', protocol: ProtocolId.IPSEC_ESP, spis: [Buffer.from('01020304', 'hex')] }]);
  assert.equal(pair.wire.length, 0, 'nothing answered (no ACK to the forged R-U-THERE)');
  assert.equal(pair.r.dropped.length, 4);
  assert.match(pair.r.dropped.join('\n'), /HASH\(1\) does not verify/);
  assert.match(pair.r.dropped.join('\n'), /cookies of another ISAKMP SA/);
  assert.match(pair.r.dropped.join('\n'), /unencrypted/);
  assert.match(pair.r.dropped.join('\n'), /used message ID 12345/);
});

test('readInformational never throws on garbage bodies', () => {
  const sa = { cookieI: Buffer.alloc(8, 1), cookieR: Buffer.alloc(8, 2), skeyidA: Buffer.alloc(20, 3), skeyidD: Buffer.alloc(20, 4), encryptionKey: Buffer.alloc(16, 5), lastIv: Buffer.alloc(16, 6), proposal: { encryption: 'aes-128-cbc', hash: 'sha1', group: 14, authMethod: 1, lifetimeSeconds: 1 } } as const;
  for (const c of providers) {
    for (let n = 0; n < 300; n++) {
      const header = { initiatorCookie: sa.cookieI, responderCookie: sa.cookieR, nextPayload: n % 3 === 0 ? 8 : n % 256, version: ISAKMP_VERSION, exchangeType: 5, flags: Flags.ENCRYPTION, messageId: n, length: 0 };
      const r = readInformational(c, sa as never, header, c.randomBytes(n % 97));
      assert.equal(r.ok, false);
    }
    // A well-formed message with a random payload chain behind a valid HASH still never throws.
    const m = informationalMessage(c, sa as never, 7, [notifyPayload(1, 3, Buffer.alloc(0)), { type: 12, doi: 1, protocolId: 3, spiSize: 4, spis: [] }]);
    const p = parseMessage(m);
    assert.ok(p.ok && 'encrypted' in p.value);
    const r = readInformational(c, sa as never, p.value.header, p.value.encrypted);
    assert.ok(r.ok);
    assert.equal(r.events.length, 1, 'the empty ESP delete carries nothing');
  }
});
