// Mode-Config servers that behave differently from ours and strongSwan, played from hand-made messages (issue 19):
// a server that pads its attribute payload to a 4-octet boundary, one whose authenticated reply does not parse,
// and one that pushes Mode-Config under the message ID of the XAUTH exchange just before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeType, Flags, ModeCfgAttr, ModeCfgType, XauthStatus, encodeMessage, parseMessage, type IsakmpHeader } from '../../ts/isakmp/index.js';
import { cipherInfo } from '../../ts/crypto/index.js';
import { RemoteAccessClient, RemoteAccessServer, hash1, phase2Iv, readTransaction, type IsakmpSa, type RemoteAccessOutput } from '../../ts/ike/index.js';
import { crypto, xauthPhase1 } from './remote-access-pair.js';

const RETRANSMIT = { tries: 3, timeoutMs: 1000, factor: 2 };

function split(m: Buffer): { header: IsakmpHeader; body: Buffer } {
  const p = parseMessage(m);
  assert.ok(p.ok && 'encrypted' in p.value);
  return { header: p.value.header, body: p.value.encrypted };
}

function attr(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(value.length, 2);
  return Buffer.concat([h, value]);
}
function tvAttr(type: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(0x8000 | type, 0);
  b.writeUInt16BE(value, 2);
  return b;
}

/** An Attribute payload as bytes, `tail` appended inside it (counted in its length): padding or garbage. */
function attrPayload(cfgType: number, identifier: number, attrs: Buffer[], tail: Uint8Array = new Uint8Array(0)): Buffer {
  const body = Buffer.concat([Buffer.from([cfgType, 0, identifier >> 8, identifier & 0xff]), ...attrs, tail]);
  const h = Buffer.alloc(4);
  h.writeUInt16BE(4 + body.length, 2);
  return Buffer.concat([h, body]);
}

/** The server's side, by hand: HDR*, HASH(1), ATTR with the bytes given, under the IV given. */
function seal(sa: IsakmpSa, messageId: number, iv: Buffer, attrBytes: Buffer, forge = false): { message: Buffer; nextIv: Buffer } {
  const hash = hash1(crypto, sa, messageId, attrBytes);
  if (forge) hash[0]! ^= 0x80; // what a sender without SKEYID_a gets
  const block = cipherInfo(sa.proposal.encryption).blockSize;
  const hashPayload = Buffer.concat([Buffer.from([14, 0, 0, 4 + hash.length]), hash]);
  let plain = Buffer.concat([hashPayload, attrBytes]);
  plain = Buffer.concat([plain, Buffer.alloc((block - (plain.length % block)) % block)]);
  const body = crypto.cbcEncrypt(sa.proposal.encryption, sa.encryptionKey, iv, plain);
  const header: IsakmpHeader = {
    initiatorCookie: sa.cookieI, responderCookie: sa.cookieR, nextPayload: 8, version: 0x10,
    exchangeType: ExchangeType.TRANSACTION, flags: Flags.ENCRYPTION, messageId, length: 0,
  };
  return { message: encodeMessage({ header, encrypted: body }), nextIv: Buffer.from(body.subarray(body.length - block)) };
}

/** Reads the client's message on the server's SA half under `iv`. */
function read(sa: IsakmpSa, m: Buffer, iv: Buffer) {
  const { header, body } = split(m);
  const r = readTransaction(crypto, sa, header, body, iv);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return { ...r, messageId: header.messageId, lastBlock: Buffer.from(body.subarray(body.length - 16)) };
}

const BANNER = Buffer.from('Welcome to the VPN!!!'); // 21 octets
const ADDRESS = attr(ModeCfgAttr.INTERNAL_IP4_ADDRESS, Buffer.from([10, 10, 0, 5]));

async function pullingClient(): Promise<{ sas: { i: IsakmpSa; r: IsakmpSa }; client: RemoteAccessClient; request: ReturnType<typeof read> }> {
  const sas = await xauthPhase1();
  const client = new RemoteAccessClient(crypto, sas.i, { retransmit: RETRANSMIT });
  const start = client.start(0);
  assert.equal(start.send.length, 1);
  const { header } = split(start.send[0]!);
  return { sas, client, request: read(sas.r, start.send[0]!, phase2Iv(crypto, sas.r, header.messageId)) };
}

for (const pad of [1, 2, 3]) {
  test(`modecfg: a REPLY whose attribute payload ends in ${pad} zero octet(s) of padding is accepted`, async () => {
    const { sas, client, request } = await pullingClient();
    const reply = seal(sas.r, request.messageId, request.nextIv,
      attrPayload(ModeCfgType.CFG_REPLY, request.attr.identifier, [ADDRESS, attr(ModeCfgAttr.UNITY_BANNER, BANNER)], Buffer.alloc(pad)));
    const out = await client.handle(reply.message, 10);
    assert.deepEqual(out.dropped, []);
    assert.equal(out.events.length, 1);
    const ev = out.events[0]!;
    assert.ok(ev.type === 'modeCfg', JSON.stringify(ev));
    assert.equal(ev.config.address, '10.10.0.5');
    assert.equal(ev.config.banner, BANNER.toString());
    assert.equal(out.timer, null, 'answered: nothing left to retransmit');
  });
}

test('modecfg: an authenticated REPLY that does not parse is reported at once, not as a missing reply 165 s later', async () => {
  const malformed: Array<[string, Uint8Array]> = [
    ['non-zero octets after the last attribute', Buffer.from([0, 1])],
    ['four octets after the last attribute (a truncated attribute, not padding)', Buffer.from([0, 1, 0, 9])],
  ];
  for (const [what, tail] of malformed) {
    const { sas, client, request } = await pullingClient();
    const reply = seal(sas.r, request.messageId, request.nextIv, attrPayload(ModeCfgType.CFG_REPLY, request.attr.identifier, [ADDRESS], tail));
    const out: RemoteAccessOutput = await client.handle(reply.message, 10);
    assert.equal(out.events.length, 1, what);
    const ev = out.events[0]!;
    assert.ok(ev.type === 'modeCfgFailed', `${what}: ${JSON.stringify(ev)}`);
    assert.match(ev.reason, /^malformed Mode-Config reply from the peer \(authenticated, so not a forgery\): .*Attribute payload/);
    assert.equal(ev.malformed, true, 'the gateway reports it as PAYLOAD_MALFORMED');
    assert.equal(out.timer, null, `${what}: the request is no longer retransmitted`);
    assert.equal(client.config, null);
  }
});

test('modecfg: the same bytes with a HASH(1) that does not verify (a forgery) are dropped silently and the request keeps retransmitting', async () => {
  const { sas, client, request } = await pullingClient();
  const reply = seal(sas.r, request.messageId, request.nextIv, attrPayload(ModeCfgType.CFG_REPLY, request.attr.identifier, [ADDRESS], Buffer.from([0, 1])), true);
  const out = await client.handle(reply.message, 10);
  assert.deepEqual(out.events, []);
  assert.equal(out.dropped.length, 1);
  assert.equal(out.timer, 1000);
});

test('modecfg: a genuine REPLY with a cipher block appended (CBC padding is not authenticated) is dropped, not reported as the peer\'s', async () => {
  const { sas, client, request } = await pullingClient();
  const reply = seal(sas.r, request.messageId, request.nextIv, attrPayload(ModeCfgType.CFG_REPLY, request.attr.identifier, [ADDRESS]));
  const forged = Buffer.concat([reply.message, Buffer.alloc(16, 0xa5)]);
  forged.writeUInt32BE(forged.length, 24);
  const out = await client.handle(forged, 10);
  assert.deepEqual(out.events, [], 'the HASH verifies, but the fault is in the unauthenticated padding');
  assert.equal(out.dropped.length, 1);
  assert.equal(out.timer, 1000, 'still waiting for the real reply');
  const real = await client.handle(reply.message, 11);
  assert.deepEqual(real.events.map((e) => e.type), ['modeCfg']);
});

for (const ivKind of ['fresh', 'chained'] as const) {
  test(`modecfg: a SET pushed under the message ID of the XAUTH status exchange just before is answered (${ivKind} IV)`, async () => {
    const sas = await xauthPhase1();
    const client = new RemoteAccessClient(crypto, sas.i, { xauth: { user: 'alice', password: 'pw' }, modeConfig: 'push', retransmit: RETRANSMIT });
    assert.deepEqual(client.start(0).send, []);
    // XAUTH REQUEST / REPLY under message ID A
    const A = 0x0a0a0a0a;
    const req = seal(sas.r, A, phase2Iv(crypto, sas.r, A), attrPayload(ModeCfgType.CFG_REQUEST, 7, [tvAttr(ModeCfgAttr.XAUTH_TYPE, 0), attr(ModeCfgAttr.XAUTH_USER_NAME, Buffer.alloc(0)), attr(ModeCfgAttr.XAUTH_USER_PASSWORD, Buffer.alloc(0))]));
    const o1 = await client.handle(req.message, 1);
    assert.equal(o1.send.length, 1, JSON.stringify(o1.dropped));
    assert.equal(read(sas.r, o1.send[0]!, req.nextIv).attr.cfgType, ModeCfgType.CFG_REPLY);
    // XAUTH SET(status OK) / ACK under message ID B
    const B = 0x0b0b0b0b;
    const set = seal(sas.r, B, phase2Iv(crypto, sas.r, B), attrPayload(ModeCfgType.CFG_SET, 8, [tvAttr(ModeCfgAttr.XAUTH_STATUS, XauthStatus.OK)]));
    const o2 = await client.handle(set.message, 2);
    assert.equal(o2.send.length, 1);
    assert.deepEqual(o2.events.map((e) => e.type), ['xauthOk']);
    const ack = read(sas.r, o2.send[0]!, set.nextIv);
    // Mode-Config SET under B again: a new Transaction once the XAUTH one is complete
    const iv = ivKind === 'fresh' ? phase2Iv(crypto, sas.r, B) : ack.lastBlock;
    const push = seal(sas.r, B, iv, attrPayload(ModeCfgType.CFG_SET, 9, [ADDRESS, attr(ModeCfgAttr.UNITY_BANNER, BANNER)], Buffer.alloc(3)));
    const o3 = await client.handle(push.message, 3);
    assert.deepEqual(o3.dropped, []);
    assert.equal(o3.send.length, 1, 'the SET is acknowledged');
    const pushAck = read(sas.r, o3.send[0]!, push.nextIv);
    assert.equal(pushAck.attr.cfgType, ModeCfgType.CFG_ACK);
    assert.equal(pushAck.attr.identifier, 9);
    assert.deepEqual(o3.events.map((e) => e.type), ['modeCfg']);
    assert.equal(client.config?.address, '10.10.0.5');
    // Its retransmission is answered from the cache; the old XAUTH SET's retransmission gets nothing new.
    assert.deepEqual((await client.handle(push.message, 4)).send, o3.send);
    const stale = await client.handle(set.message, 5);
    assert.deepEqual(stale.events, []);
    assert.deepEqual(stale.send, []);
  });
}

test('xauth: an authenticated REPLY that does not parse fails XAUTH at once on the server (FAIL sent, no 165 s wait)', async () => {
  const sas = await xauthPhase1();
  const server = new RemoteAccessServer(crypto, sas.r, { xauth: { verify: async () => true }, peer: '10.99.0.1', retransmit: RETRANSMIT });
  const start = server.start(0);
  assert.equal(start.send.length, 1);
  const { header } = split(start.send[0]!);
  const req = read(sas.i, start.send[0]!, phase2Iv(crypto, sas.i, header.messageId));
  const reply = seal(sas.i, header.messageId, req.nextIv,
    attrPayload(ModeCfgType.CFG_REPLY, req.attr.identifier, [attr(ModeCfgAttr.XAUTH_USER_NAME, Buffer.from('alice'))], Buffer.from([0, 0, 0, 7, 1])));
  const out = await server.handle(reply.message, 1);
  assert.equal(out.events.length, 1);
  const ev = out.events[0]!;
  assert.ok(ev.type === 'xauthFailed' && ev.malformed === true, JSON.stringify(ev));
  assert.match(ev.reason, /^malformed XAUTH message from the peer/);
  assert.equal(out.send.length, 1, 'the XAUTH_STATUS FAIL SET');
  const fail = read(sas.i, out.send[0]!, phase2Iv(crypto, sas.i, split(out.send[0]!).header.messageId));
  assert.equal(fail.attr.cfgType, ModeCfgType.CFG_SET);
  assert.equal(server.failed, true);
  assert.equal(server.authenticated, false);
});
