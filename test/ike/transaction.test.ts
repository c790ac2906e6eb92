import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, ModeCfgAttr, ModeCfgType, parseMessage, tlv, tv, type IsakmpHeader } from '../../ts/isakmp/index.js';
import { TransactionChannel, phase2Iv, readTransaction, type TransactionOutput } from '../../ts/ike/index.js';
import { crypto, xauthPhase1 } from './remote-access-pair.js';

function split(m: Buffer): { header: IsakmpHeader; body: Buffer } {
  const p = parseMessage(m);
  assert.ok(p.ok && 'encrypted' in p.value);
  return { header: p.value.header, body: p.value.encrypted };
}

function deliver(ch: TransactionChannel, m: Buffer, now = 0): TransactionOutput {
  const { header, body } = split(m);
  return ch.handle(header, body, now);
}

const RETRANSMIT = { tries: 2, timeoutMs: 1000, factor: 2 };

test('transaction: REQUEST/REPLY round trip, exchange type 6, encrypted, HASH(1) over M-ID | ATTR', async () => {
  const { i, r } = await xauthPhase1();
  const server = new TransactionChannel(crypto, r, { retransmit: RETRANSMIT });
  const client = new TransactionChannel(crypto, i, { retransmit: RETRANSMIT });
  const { messageId, out } = server.request(ModeCfgType.CFG_REQUEST, [tv(ModeCfgAttr.XAUTH_TYPE, 0), tlv(ModeCfgAttr.XAUTH_USER_NAME, Buffer.alloc(0))], 0, 0x1234);
  assert.equal(out.send.length, 1);
  const { header, body } = split(out.send[0]!);
  assert.equal(header.exchangeType, ExchangeType.TRANSACTION);
  assert.equal(header.messageId, messageId);
  assert.equal(header.flags & 1, 1);
  assert.equal(out.timer, 1000);
  // Readable with the first-message IV of this M-ID from the other SA half (same keys).
  const rd = readTransaction(crypto, i, header, body, phase2Iv(crypto, i, messageId));
  assert.ok(rd.ok);
  assert.equal(rd.attr.identifier, 0x1234);

  const got = deliver(client, out.send[0]!);
  assert.equal(got.events.length, 1);
  const ev = got.events[0]!;
  assert.ok(ev.kind === 'request');
  assert.equal(ev.attr.cfgType, ModeCfgType.CFG_REQUEST);
  assert.throws(() => client.respond(messageId, ModeCfgType.CFG_ACK, []), RangeError);
  const reply = client.respond(messageId, ModeCfgType.CFG_REPLY, [tlv(ModeCfgAttr.XAUTH_USER_NAME, Buffer.from('alice'))]);
  const back = deliver(server, reply);
  assert.equal(back.events.length, 1);
  const rep = back.events[0]!;
  assert.ok(rep.kind === 'reply');
  assert.equal(rep.attr.cfgType, ModeCfgType.CFG_REPLY);
  assert.equal(rep.attr.identifier, 0x1234);
  assert.equal((rep.attr.attributes[0]!.value as Buffer).toString(), 'alice');
  assert.equal(server.pending, 0);
  assert.equal(server.deadline, null);
  // A duplicate answer changes nothing.
  assert.equal(deliver(server, reply).events.length, 0);
});

test('transaction: a retransmitted request is answered from the cache, not processed twice', async () => {
  const { i, r } = await xauthPhase1();
  const server = new TransactionChannel(crypto, r, { retransmit: RETRANSMIT });
  const client = new TransactionChannel(crypto, i, { retransmit: RETRANSMIT });
  const { messageId, out } = server.request(ModeCfgType.CFG_SET, [tv(ModeCfgAttr.XAUTH_STATUS, 1)], 0);
  assert.equal(deliver(client, out.send[0]!).events.length, 1);
  // Before the answer exists, a duplicate is dropped.
  const early = deliver(client, out.send[0]!);
  assert.equal(early.events.length, 0);
  assert.equal(early.send.length, 0);
  const ack = client.respond(messageId, ModeCfgType.CFG_ACK, [tv(ModeCfgAttr.XAUTH_STATUS, 1)]);
  const dup = deliver(client, out.send[0]!);
  assert.equal(dup.events.length, 0);
  assert.deepEqual(dup.send, [ack]);
  assert.throws(() => client.respond(messageId, ModeCfgType.CFG_ACK, []), RangeError);
});

test('transaction: retransmits its request on the schedule, then reports a timeout', async () => {
  const { r } = await xauthPhase1();
  const server = new TransactionChannel(crypto, r, { retransmit: RETRANSMIT });
  const { out } = server.request(ModeCfgType.CFG_REQUEST, [], 0);
  assert.equal(server.onTimer(999).send.length, 0);
  const a = server.onTimer(1000);
  assert.deepEqual(a.send, out.send);
  assert.equal(a.timer, 3000);
  assert.deepEqual(server.onTimer(3000).send, out.send);
  const t = server.onTimer(7000);
  assert.equal(t.send.length, 0);
  assert.equal(t.events[0]?.kind, 'timeout');
  assert.equal(t.timer, null);
});

test('transaction: bad HASH, garbage, wrong cookies, unsolicited REPLY and unencrypted copies change nothing', async () => {
  const { i, r } = await xauthPhase1();
  const server = new TransactionChannel(crypto, r, { retransmit: RETRANSMIT });
  const client = new TransactionChannel(crypto, i, { retransmit: RETRANSMIT });
  const { messageId, out } = server.request(ModeCfgType.CFG_REQUEST, [tlv(ModeCfgAttr.INTERNAL_IP4_ADDRESS, Buffer.alloc(0))], 0);
  const m = out.send[0]!;
  // Flip a bit in the last cipher block: decrypts to garbage or a HASH that does not verify.
  for (const pos of [m.length - 1, 28, 40]) {
    const bad = Buffer.from(m);
    bad[pos]! ^= 0x01;
    const o = deliver(client, bad);
    assert.equal(o.events.length, 0, `flip at ${pos}`);
    assert.equal(o.dropped.length, 1);
  }
  // Wrong cookies.
  const other = Buffer.from(m);
  other[0]! ^= 0xff;
  assert.match(deliver(client, other).dropped[0]!, /cookies/);
  // An unsolicited REPLY (sealed properly but for an exchange the client never started).
  const rogue = new TransactionChannel(crypto, r, { retransmit: RETRANSMIT });
  const rq = rogue.request(ModeCfgType.CFG_REQUEST, [], 0).out.send[0]!;
  // The genuine request still works after all that.
  const ok = deliver(client, m);
  assert.equal(ok.events.length, 1);
  assert.equal(ok.events[0]!.kind, 'request');
  // A forged answer for the server's pending exchange with a bad HASH: still pending.
  const reply = client.respond(messageId, ModeCfgType.CFG_REPLY, []);
  const forged = Buffer.from(reply);
  forged[forged.length - 2]! ^= 0x80;
  assert.equal(deliver(server, forged).events.length, 0);
  assert.equal(server.pending, 1);
  assert.equal(deliver(server, reply).events.length, 1);
  assert.equal(server.pending, 0);
  // The rogue request from the same SA keys is a normal new request to the client (it is authenticated).
  assert.equal(deliver(client, rq).events.length, 1);
});

test('transaction: a REPLY whose identifier does not match the request is ignored', async () => {
  const { i, r } = await xauthPhase1();
  const server = new TransactionChannel(crypto, r, { retransmit: RETRANSMIT });
  const { messageId, out } = server.request(ModeCfgType.CFG_REQUEST, [], 0, 7);
  const { header, body } = split(out.send[0]!);
  const rd = readTransaction(crypto, i, header, body, phase2Iv(crypto, i, messageId));
  assert.ok(rd.ok);
  const { transactionMessage } = await import('../../ts/ike/index.js');
  const wrong = transactionMessage(crypto, i, messageId, rd.nextIv, { type: 14, cfgType: ModeCfgType.CFG_REPLY, identifier: 8, attributes: [] }).message;
  const o = deliver(server, wrong);
  assert.equal(o.events.length, 0);
  assert.match(o.dropped[0]!, /does not answer/);
  const right = transactionMessage(crypto, i, messageId, rd.nextIv, { type: 14, cfgType: ModeCfgType.CFG_REPLY, identifier: 7, attributes: [] }).message;
  assert.equal(deliver(server, right).events.length, 1);
});

test('transaction: a REPLY with identifier 0 answers the request (strongSwan 5.9 XAUTH client)', async () => {
  const { i, r } = await xauthPhase1();
  const server = new TransactionChannel(crypto, r, { retransmit: RETRANSMIT });
  const { messageId, out } = server.request(ModeCfgType.CFG_REQUEST, [], 0, 7);
  const { header, body } = split(out.send[0]!);
  const rd = readTransaction(crypto, i, header, body, phase2Iv(crypto, i, messageId));
  assert.ok(rd.ok);
  const { transactionMessage } = await import('../../ts/ike/index.js');
  const zero = transactionMessage(crypto, i, messageId, rd.nextIv, { type: 14, cfgType: ModeCfgType.CFG_REPLY, identifier: 0, attributes: [] }).message;
  const o = deliver(server, zero);
  assert.equal(o.events.length, 1, o.dropped.join('; '));
  assert.equal(server.pending, 0);
});
