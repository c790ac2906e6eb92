// Error events rate limited (issue 20.6) and reported once per failure (19.9): the summary on its own, then
// through a real gateway on loopback (a refused message repeated by its peer; a flood of malformed message 1s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { ErrorSummary } from '../../ts/gateway/error-summary.js';
import { Gateway, type GatewayErrorEvent } from '../../ts/gateway/index.js';
import { ikeOffer, parseIkeProposal } from '../../ts/ike/index.js';
import { encodeMessage, ExchangeType, ISAKMP_VERSION } from '../../ts/isakmp/index.js';
import { peerConfig, until } from './peers.js';

const err = (kind: string, address: string, message = 'it failed', cookieI?: string): GatewayErrorEvent => ({ kind, message, cookieI, remote: { address, port: 500 } });

test('error summary: every failure of an exchange we started goes out (the load tester waits for each); its repeats are folded', () => {
  const out: GatewayErrorEvent[] = [];
  const s = new ErrorSummary((e) => out.push(e), { perSource: 2, perKind: 5, windowMs: 1000, repeatMs: 5000 });
  for (let k = 0; k < 8; k++) s.report(err('PEER_NOTIFY', '192.0.2.1', 'the peer refused', `c${k}`), 100 + k, true);
  s.report(err('PEER_NOTIFY', '192.0.2.1', 'the peer refused', 'c0'), 200, true);
  assert.equal(out.length, 8, 'eight exchanges of ours, eight events; the repeat of one folded');
  s.report(err('PEER_NOTIFY', '192.0.2.1', 'the peer refused', 'x'), 300);
  assert.equal(out.length, 8, "someone else's exchange is still held back by the limits");
  s.close();
});

test('error summary: a repeated failure is emitted once and counted; per source and per kind only the first go out', () => {
  const out: GatewayErrorEvent[] = [];
  const s = new ErrorSummary((e) => out.push(e), { perSource: 2, perKind: 5, windowMs: 1000, repeatMs: 5000 });
  for (let k = 0; k < 7; k++) s.report(err('NO_PROPOSAL_CHOSEN', '192.0.2.1', 'no proposal', 'aa'), 100 + k);
  assert.equal(out.length, 1, 'seven identical failures (a peer retransmitting): one event');
  assert.equal(s.stats().repeats, 6);
  for (let k = 0; k < 4; k++) s.report(err('PAYLOAD_MALFORMED', '192.0.2.2', `bad ${k}`), 200);
  assert.equal(out.length, 3, 'two per kind and source');
  for (let k = 0; k < 10; k++) s.report(err('PAYLOAD_MALFORMED', `198.51.100.${k}`, 'bad'), 300);
  assert.equal(out.length, 4, 'the first five of a kind in a window (held ones included), whatever the sources');
  const st = s.stats();
  assert.equal(st.total, 21);
  assert.equal(st.emitted, 4);
  assert.equal(st.suppressed, 11);
  assert.deepEqual(st.byKind['PAYLOAD_MALFORMED'], { count: 14, suppressed: 11 });
  assert.equal(st.top[0]!.kind, 'NO_PROPOSAL_CHOSEN');
  assert.equal(st.top[0]!.count, 7);
  // the next window: its first error closes the last with one summary
  s.report(err('PAYLOAD_MALFORMED', '192.0.2.2', 'bad again'), 1500);
  const summary = out.find((e) => e.kind === 'SUPPRESSED');
  assert.ok(summary, 'a summary of what was held back');
  assert.match(summary.message, /11 PAYLOAD_MALFORMED from 10 source/);
  assert.equal(out[out.length - 1]!.message, 'bad again', 'a new window emits again');
  s.report(err('NO_PROPOSAL_CHOSEN', '192.0.2.1', 'no proposal', 'aa'), 7000);
  assert.equal(out[out.length - 1]!.message, 'no proposal', 'long after its last repeat, a failure is new again');
  s.close();
});

test('error summary: close() reports what the window held back, and leaves no timer', () => {
  const out: GatewayErrorEvent[] = [];
  const s = new ErrorSummary((e) => out.push(e), { perSource: 1, perKind: 1, windowMs: 3_600_000 });
  s.report(err('TIMEOUT', '192.0.2.1', 'a'));
  s.report(err('TIMEOUT', '192.0.2.1', 'b'));
  assert.equal(out.length, 1);
  s.close();
  assert.equal(out.length, 2);
  assert.equal(out[1]!.kind, 'SUPPRESSED');
});

const base = 26000 + (process.pid % 1500) * 4;

function message1(exchangeType: number, body: Buffer | null, cookie = randomBytes(8)): Buffer {
  const p = parseIkeProposal('aes128-sha256-ecp256');
  assert.ok(p.ok);
  const m = encodeMessage({
    header: { initiatorCookie: cookie, responderCookie: Buffer.alloc(8), nextPayload: 0, version: ISAKMP_VERSION, exchangeType, flags: 0, messageId: 0, length: 0 },
    payloads: [{ type: 1, doi: 1, situation: Buffer.from([0, 0, 0, 1]), proposals: [ikeOffer(p.value)] }],
  });
  return body === null ? m : Buffer.concat([m.subarray(0, 28), body]);
}

test('gateway: a refused Aggressive Mode message 1 sent 7 times is one error event; 2,000 malformed message 1s give a handful', { timeout: 30_000 }, async () => {
  // a Main Mode responder: Aggressive Mode is refused (POLICY)
  const gw = new Gateway(peerConfig(base, base + 2, { initiate: false }));
  const errors: GatewayErrorEvent[] = [];
  gw.on('error', (e) => errors.push(e));
  await gw.start();
  const sock = dgram.createSocket('udp4');
  try {
    const am1 = message1(ExchangeType.AGGRESSIVE, null);
    for (let k = 0; k < 7; k++) {
      sock.send(am1, base, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => gw.status().errors.total >= 7, 5000, 'seven refusals counted');
    assert.equal(errors.length, 1, errors.map((e) => e.message).join('\n'));
    assert.equal(errors[0]!.kind, 'POLICY');
    assert.equal(gw.status().errors.repeats, 6);
    // malformed: a header with a truncated body, each with its own cookie
    for (let k = 0; k < 2000; k++) {
      const h = message1(ExchangeType.IDENTITY_PROTECTION, randomBytes(5 + (k % 40)));
      h.writeUInt32BE(h.length, 24);
      sock.send(h, base, '127.0.0.1');
      if (k % 200 === 199) await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => gw.status().errors.total >= 7 + 1000, 5000, 'the malformed message 1s counted');
    const malformed = errors.filter((e) => e.kind === 'PAYLOAD_MALFORMED').length;
    assert.ok(malformed >= 1 && malformed <= 3, `${malformed} PAYLOAD_MALFORMED events for 2,000 datagrams (limit 3 per source)`);
    const st = gw.status().errors;
    assert.ok(st.suppressed >= 900, `held back: ${st.suppressed}`);
    assert.equal(st.top[0]!.kind, 'PAYLOAD_MALFORMED');
  } finally {
    sock.close();
    await gw.stop();
  }
  assert.equal(errors[errors.length - 1]!.kind, 'SUPPRESSED', 'stopping reports what was held back');
});

test('gateway: a refused Quick Mode repeated by its peer (the same QM1 seven times) is one error event', { timeout: 30_000 }, async () => {
  const r = new Gateway(peerConfig(base, base + 2, { esp: ['aes256-sha256'] }));
  const i = new Gateway(peerConfig(base + 2, base, { esp: ['aes128gcm16'], initiate: true }));
  const errors: GatewayErrorEvent[] = [];
  r.on('error', (e) => errors.push(e));
  i.on('error', () => {});
  let qm1: Buffer | undefined;
  i.on('datagram', (d) => {
    if (d.direction === 'out' && d.bytes[18] === ExchangeType.QUICK_MODE) qm1 ??= Buffer.from(d.bytes);
  });
  await r.start();
  await i.start();
  try {
    await until(() => qm1 !== undefined && errors.length > 0, 10_000, 'the Quick Mode refused');
    // the peer retransmits its refused QM1 six more times (as strongSwan does): the same datagram again
    const receive = (r as unknown as { receive(m: Buffer, from: { address: string; port: number }, natt: boolean): void }).receive.bind(r);
    for (let k = 0; k < 6; k++) {
      receive(Buffer.from(qm1!), { address: '127.0.0.1', port: base + 2 }, false);
      await new Promise((res) => setTimeout(res, 20));
    }
    await until(() => r.status().errors.total >= 7, 5000, 'seven refusals counted');
    const refusals = errors.filter((e) => e.kind === errors[0]!.kind);
    assert.equal(refusals.length, 1, errors.map((e) => `${e.kind}: ${e.message}`).join('\n'));
    assert.equal(r.status().errors.repeats, 6);
  } finally {
    await i.stop();
    await r.stop();
  }
});
