// Real bytes: the Wireshark IKEv1 capture (Main Mode + Quick Mode with RSA signatures, decrypted bodies of
// messages 5, 6 and Quick Mode 1) and two keyless captures (Main Mode with NAT-D, Aggressive Mode), from
// test/fixtures/captures/ikev1_capture_wireshark_certs.json (sources named inside that file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthMethod,
  DOI,
  ExchangeType,
  GroupDescription,
  IkeAttr,
  IkeEncr,
  IkeHash,
  IkeTransformId,
  LifeType,
  ProtocolId,
  attrNumber,
  decodeIdPayload,
  encodeMessage,
  findAttr,
  findPayload,
  findPayloads,
  parseMessage,
  parsePayloads,
} from '../../ts/isakmp/index.js';
import type { CaptureMessage } from './samples.js';
import type { EncryptedMessage, ParsedMessage, Payload } from '../../ts/isakmp/index.js';
import { hex, loadWiresharkCapture } from './samples.js';

const capture = loadWiresharkCapture();

/** The fixture's own notation, e.g. 'SA(52)', 'VID(20)', 'NAT-D(24)'. */
function notation(p: Payload): string {
  const names: Record<number, string> = { 1: 'SA', 4: 'KE', 5: 'ID', 6: 'CERT', 7: 'CR', 8: 'HASH', 9: 'SIG', 10: 'NONCE', 11: 'N', 12: 'D', 13: 'VID', 20: 'NAT-D', 21: 'NAT-OA' };
  return `${names[p.type] ?? p.type}(${p.raw!.length})`;
}

function checkCaptureMessages(label: string, messages: CaptureMessage[]): void {
  for (const m of messages) {
    const bytes = hex(m.isakmp);
    const r = parseMessage(bytes);
    if (!r.ok) assert.fail(`${label} frame ${m.frame}: ${r.error.kind}: ${r.error.message}`);
    const h = r.value.header;
    assert.equal(h.exchangeType, m.exchangeType, `${label} frame ${m.frame} exchange type`);
    assert.equal(h.flags, m.flags);
    assert.equal(h.length, m.length);
    if (m.encrypted) {
      const enc = r.value as EncryptedMessage;
      assert.ok('encrypted' in enc, `${label} frame ${m.frame} is encrypted`);
      assert.equal(enc.encrypted.length, m.length - 28);
      assert.equal(enc.encrypted.length % 8, 0, 'CBC body is whole blocks');
      assert.ok(encodeMessage({ header: h, encrypted: enc.encrypted }).equals(bytes));
    } else {
      const parsed = r.value as ParsedMessage;
      assert.deepEqual(parsed.payloads.map(notation), m.payloads, `${label} frame ${m.frame} payloads`);
      assert.ok(encodeMessage({ header: h, payloads: parsed.payloads }).equals(bytes), `${label} frame ${m.frame} re-encodes identically`);
    }
  }
}

test('Wireshark ikev1-certs capture: all 10 messages parse; clear ones re-encode byte for byte', () => {
  assert.equal(capture.messages.length, 10);
  checkCaptureMessages('certs', capture.messages);
});

test('keyless Main Mode (9 messages, NAT-D) and Aggressive Mode (6 messages) captures parse and re-encode', () => {
  assert.equal(capture.otherCapturesNoKeys.mainMode.messages.length, 9);
  assert.equal(capture.otherCapturesNoKeys.aggressiveMode.messages.length, 6);
  checkCaptureMessages('main', capture.otherCapturesNoKeys.mainMode.messages);
  checkCaptureMessages('aggressive', capture.otherCapturesNoKeys.aggressiveMode.messages);
});

test('message 1 SA decodes to 3DES / MD5 / RSA signatures / MODP 1024 / 28800 s, and raw gives SAi_b', () => {
  const r = parseMessage(hex(capture.messages[0]!.isakmp));
  assert.ok(r.ok && !('encrypted' in r.value));
  const sa = findPayload(r.value.payloads, 1);
  assert.ok(sa);
  assert.equal(sa.doi, DOI.IPSEC);
  assert.equal(sa.situation.readUInt32BE(0), 1);
  assert.equal(sa.proposals.length, 1);
  const p = sa.proposals[0]!;
  assert.equal(p.protocolId, ProtocolId.ISAKMP);
  assert.equal(p.spi.length, 0);
  const t = p.transforms[0]!;
  assert.equal(t.transformId, IkeTransformId.KEY_IKE);
  assert.equal(attrNumber(findAttr(t, IkeAttr.ENCRYPTION_ALGORITHM)), IkeEncr['3DES_CBC']);
  assert.equal(attrNumber(findAttr(t, IkeAttr.HASH_ALGORITHM)), IkeHash.MD5);
  assert.equal(attrNumber(findAttr(t, IkeAttr.AUTHENTICATION_METHOD)), AuthMethod.RSA_SIG);
  assert.equal(attrNumber(findAttr(t, IkeAttr.GROUP_DESCRIPTION)), GroupDescription.MODP_1024);
  assert.equal(attrNumber(findAttr(t, IkeAttr.LIFE_TYPE)), LifeType.SECONDS);
  assert.equal(attrNumber(findAttr(t, IkeAttr.LIFE_DURATION)), 28800);
  // SAi_b for HASH_I (RFC 2409 5) = the SA payload body without its generic header.
  const fixtureSa = (capture as unknown as { negotiatedPhase1: { saPayloadBodyHex: string } }).negotiatedPhase1.saPayloadBodyHex;
  assert.equal(sa.raw!.subarray(4).toString('hex'), fixtureSa);
});

test('decrypted message 5, 6 and Quick Mode 1 bodies parse (with their CBC padding) to the listed payloads', () => {
  const cases: [string, number, string][] = [
    ['message5', 5, '192.168.12.118'],
    ['message6', 5, '172.16.1.103'],
    ['quickMode1', 8, '192.168.12.118'],
  ];
  for (const [key, first, firstId] of cases) {
    const d = capture.derivedHereAndVerified[key]!;
    const body = hex(d.plaintextWithPadding!);
    const r = parsePayloads(first, body, 28);
    if (!r.ok) assert.fail(`${key}: ${r.error.kind}: ${r.error.message}`);
    assert.deepEqual(r.value.map(notation), d.payloads, key);
    const used = r.value.reduce((n, p) => n + p.raw!.length, 0);
    assert.equal(used, d.payloadBytes);
    assert.equal(body.length - used, d.paddingBytes, `${key} padding left over`);
    const ids = findPayloads(r.value, 5).map((p) => decodeIdPayload(p));
    const id0 = ids[0]!;
    assert.ok(id0.ok && id0.value.kind === 'ipv4');
    assert.equal(id0.value.address, firstId);
  }
  // Quick Mode 1: HASH first; SA carries one ESP proposal with a 4-byte SPI; KE for PFS.
  const qm = parsePayloads(8, hex(capture.derivedHereAndVerified['quickMode1']!.plaintextWithPadding!), 28);
  assert.ok(qm.ok);
  const sa = findPayload(qm.value, 1)!;
  assert.equal(sa.proposals[0]!.protocolId, ProtocolId.IPSEC_ESP);
  assert.equal(sa.proposals[0]!.spi.length, 4);
  assert.equal(findPayload(qm.value, 4)!.data.length, 128);
  assert.equal(qm.value[0]!.type, 8);
  assert.equal(ExchangeType.QUICK_MODE, capture.messages[6]!.exchangeType);
});
