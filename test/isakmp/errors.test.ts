// Malformed input: every error comes back as a value with the right kind, naming the payload and offset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DOI,
  ExchangeType,
  MAX_DELETE_SPIS,
  MAX_MODECFG_ATTRIBUTES,
  MAX_PAYLOADS,
  MAX_PROPOSALS,
  MAX_TRANSFORM_ATTRIBUTES,
  MAX_TRANSFORMS,
  NotifyType,
  Situation,
  encodeMessage,
  encodePayloads,
  parseHeader,
  parseMessage,
  parsePayloads,
  tv,
} from '../../ts/isakmp/index.js';
import type { CodecResult, ParsedMessage, Payload, Transform, UnknownPayloadType } from '../../ts/isakmp/index.js';
import { captureSeeds, header, ikeProposal, mainMode1, quickMode1, saPayload } from './samples.js';
import { buildSeeds } from './fuzz-engine.js';

function kindOf(r: CodecResult<unknown>): string {
  return r.ok ? 'ok' : r.error.kind;
}
function expectError(r: CodecResult<unknown>, kind: string, messagePattern?: RegExp): void {
  if (r.ok) assert.fail(`expected ${kind}, got ok`);
  assert.equal(r.error.kind, kind, r.error.message);
  assert.equal(r.error.notifyType, (NotifyType as Record<string, number>)[kind]);
  if (messagePattern) assert.match(r.error.message, messagePattern);
}
function mm1(): Buffer {
  return encodeMessage(mainMode1(1));
}
/** Offsets of the SA payload pieces in mm1(): SA at 28, proposal at 40, transform at 48, attributes from 56. */
const SA = 28, PROP = 40, TRANS = 48;

test('header: short message, wrong versions, exchange type, flags, zero cookie, length field', () => {
  const m = mm1();
  for (let k = 0; k < 28; k++) expectError(parseMessage(m.subarray(0, k)), 'PAYLOAD_MALFORMED', /shorter than the 28-byte header/);
  const edit = (o: number, v: number) => { const c = Buffer.from(m); c[o] = v; return c; };
  expectError(parseMessage(edit(17, 0x20)), 'INVALID_MAJOR_VERSION', /major version 2/);
  expectError(parseMessage(edit(17, 0x00)), 'INVALID_MAJOR_VERSION');
  expectError(parseMessage(edit(17, 0x12)), 'INVALID_MINOR_VERSION');
  assert.ok(parseMessage(edit(17, 0x11)).ok, 'minor version 1 (pre-RFC drafts) is accepted');
  expectError(parseMessage(edit(18, 7)), 'INVALID_EXCHANGE_TYPE');
  expectError(parseMessage(edit(18, 0)), 'INVALID_EXCHANGE_TYPE');
  expectError(parseMessage(edit(18, 34)), 'INVALID_EXCHANGE_TYPE'); // IKE_SA_INIT number
  expectError(parseMessage(edit(19, 0x08)), 'INVALID_FLAGS');
  const zeroCookie = Buffer.from(m);
  zeroCookie.fill(0, 0, 8);
  expectError(parseMessage(zeroCookie), 'INVALID_COOKIE');
  const len = (v: number) => { const c = Buffer.from(m); c.writeUInt32BE(v, 24); return c; };
  expectError(parseMessage(len(27)), 'PAYLOAD_MALFORMED', /less than the 28-byte header/);
  expectError(parseMessage(len(m.length + 1)), 'UNEQUAL_PAYLOAD_LENGTHS', /exceeds the \d+ bytes received/);
  expectError(parseMessage(len(m.length - 1)), 'PAYLOAD_MALFORMED'); // cuts the last payload
  expectError(parseHeader(len(0xffffffff)), 'UNEQUAL_PAYLOAD_LENGTHS');
  // A datagram longer than the length field: extra bytes ignored (old Cisco clients append 16 zero bytes).
  const longer = Buffer.concat([m, Buffer.alloc(16, 0xee)]);
  const r = parseMessage(longer);
  assert.ok(r.ok && !('encrypted' in r.value) && r.value.payloads.length === 3);
});

test('truncation at every byte of every capture message and body gives an error, never ok', () => {
  for (const seed of captureSeeds()) {
    for (let k = 0; k < seed.length; k++) {
      const cut = seed.subarray(0, k);
      assert.equal(kindOf(parseMessage(cut)), k < 28 ? 'PAYLOAD_MALFORMED' : 'UNEQUAL_PAYLOAD_LENGTHS');
      if (k >= 28) {
        // Same cut with the length field fixed up: the payload chain itself is now truncated.
        const fixed = Buffer.from(cut);
        fixed.writeUInt32BE(k, 24);
        const r = parseMessage(fixed);
        if (seed[19]! & 1) continue; // encrypted seeds: any non-empty prefix is a valid opaque body
        if (k < seed.length) assert.equal(kindOf(r), 'PAYLOAD_MALFORMED', `cut at ${k} of ${seed.length}`);
      }
    }
  }
});

test('every length field corrupted in a Main Mode message 1 gives the right kind', () => {
  const m = mm1();
  const u16 = (o: number, v: number) => { const c = Buffer.from(m); c.writeUInt16BE(v, o); return parseMessage(c); };
  const saLen = m.readUInt16BE(SA + 2);
  expectError(u16(SA + 2, 3), 'PAYLOAD_MALFORMED', /SA payload at offset 28: payload length 3 is less than its 4-byte header/);
  expectError(u16(SA + 2, 0xffff), 'PAYLOAD_MALFORMED', /SA payload at offset 28: payload length 65535 exceeds/);
  expectError(u16(SA + 2, saLen - 4), 'PAYLOAD_MALFORMED', /SA payload at offset 28: proposal length/);
  expectError(u16(SA + 2, saLen + 4), 'PAYLOAD_MALFORMED', /SA payload at offset 28: 4 bytes follow the last proposal/);
  expectError(u16(SA + 2, 8), 'PAYLOAD_MALFORMED', /shorter than DOI \+ situation/);
  const propLen = m.readUInt16BE(PROP + 2);
  expectError(u16(PROP + 2, propLen + 1), 'PAYLOAD_MALFORMED', /proposal length \d+ exceeds the \d+ bytes left/);
  expectError(u16(PROP + 2, propLen - 1), 'PAYLOAD_MALFORMED', /transform length \d+ exceeds/);
  expectError(u16(PROP + 2, 7), 'PAYLOAD_MALFORMED', /proposal length 7 is less than 8/);
  const transLen = m.readUInt16BE(TRANS + 2);
  expectError(u16(TRANS + 2, transLen + 1), 'PAYLOAD_MALFORMED', /transform length/);
  expectError(u16(TRANS + 2, transLen - 1), 'PAYLOAD_MALFORMED', /attribute/);
  expectError(u16(TRANS + 2, 4), 'PAYLOAD_MALFORMED', /less than 8/);
  // The life-duration TLV is the last attribute: its length field sits 4 bytes before the end of the SA.
  const tlvLen = SA + saLen - 8 + 2;
  assert.equal(m.readUInt16BE(tlvLen), 4);
  expectError(u16(tlvLen, 5), 'PAYLOAD_MALFORMED', /attribute type 12 .* has length 5 but 4 bytes are left/);
  expectError(u16(tlvLen, 3), 'PAYLOAD_MALFORMED', /needs 4 bytes but 1 are left/);
  // Vendor ID payloads after the SA.
  const vid = SA + saLen;
  expectError(u16(vid + 2, m.length - vid + 1), 'PAYLOAD_MALFORMED', /Vendor ID payload at offset \d+: payload length/);
  // Counts and chain markers inside the SA.
  const edit = (o: number, v: number) => { const c = Buffer.from(m); c[o] = v; return parseMessage(c); };
  expectError(edit(PROP + 7, 2), 'BAD_PROPOSAL_SYNTAX', /transform 1 of 2 .* has next payload 0, expected 3/);
  expectError(edit(PROP + 7, 0), 'BAD_PROPOSAL_SYNTAX', /has no transform/);
  expectError(edit(PROP + 6, 200), 'PAYLOAD_MALFORMED', /SPI size 200 exceeds/);
  expectError(edit(PROP, 2), 'BAD_PROPOSAL_SYNTAX', /announces another proposal/);
  expectError(edit(PROP, 5), 'BAD_PROPOSAL_SYNTAX', /next payload 5 \(must be 0 or 2\)/);
  expectError(edit(TRANS, 3), 'BAD_PROPOSAL_SYNTAX', /expected 0/);
});

test('every length field (payload, proposal, transform, TLV attribute) of every clear seed, +1: an error', () => {
  const structural = new Set(['PAYLOAD_MALFORMED', 'BAD_PROPOSAL_SYNTAX', 'UNEQUAL_PAYLOAD_LENGTHS', 'INVALID_PAYLOAD_TYPE']);
  let fields = 0;
  for (const seed of buildSeeds()) {
    for (const o of seed.lengthFields) {
      const c = Buffer.from(seed.bytes);
      c.writeUInt16BE(c.readUInt16BE(o) + 1, o);
      const r = parseMessage(c);
      assert.ok(!r.ok && structural.has(r.error.kind), `length field at ${o}: ${r.ok ? 'ok' : r.error.kind}`);
      fields++;
    }
  }
  assert.ok(fields > 100, `only ${fields} length fields found`);
});

test('SA payload: DOI, situation, empty SA', () => {
  const sa = saPayload([ikeProposal(1)]);
  expectError(parseMessage(encodeMessage({ header: header(), payloads: [{ ...sa, doi: 2 }] })), 'DOI_NOT_SUPPORTED');
  const sit = Buffer.alloc(4);
  sit.writeUInt32BE(Situation.SIT_IDENTITY_ONLY | Situation.SIT_SECRECY);
  expectError(parseMessage(encodeMessage({ header: header(), payloads: [{ ...sa, situation: sit }] })), 'SITUATION_NOT_SUPPORTED');
  expectError(parseMessage(encodeMessage({ header: header(), payloads: [{ ...sa, proposals: [] }] })), 'BAD_PROPOSAL_SYNTAX', /carries no proposal/);
  assert.ok(parseMessage(encodeMessage({ header: header(), payloads: [{ ...sa, doi: DOI.ISAKMP }] })).ok);
});

test('other payload bodies: minimum sizes, Notification SPI size, Delete SPI count', () => {
  const one = (p: Payload, body: Buffer) => {
    const chain = encodePayloads([p]);
    const c = Buffer.concat([chain.subarray(0, 4), body]);
    c.writeUInt16BE(c.length, 2);
    return parsePayloads(p.type, c, 28);
  };
  expectError(one({ type: 5, idType: 1, protocolId: 0, port: 0, data: Buffer.alloc(0) }, Buffer.alloc(3)), 'PAYLOAD_MALFORMED', /ID payload at offset 28: body of 3 bytes/);
  expectError(one({ type: 6, encoding: 4, data: Buffer.alloc(0) }, Buffer.alloc(0)), 'PAYLOAD_MALFORMED', /CERT payload/);
  expectError(one({ type: 11, doi: 1, protocolId: 1, notifyType: 1, spi: Buffer.alloc(0), data: Buffer.alloc(0) }, Buffer.alloc(7)), 'PAYLOAD_MALFORMED', /Notification/);
  expectError(one({ type: 11, doi: 1, protocolId: 1, notifyType: 1, spi: Buffer.alloc(0), data: Buffer.alloc(0) }, Buffer.from('00000001010500180000', 'hex')), 'PAYLOAD_MALFORMED', /SPI size 5 exceeds the 2 bytes left/);
  expectError(one({ type: 12, doi: 1, protocolId: 3, spiSize: 4, spis: [] }, Buffer.from('000000010304000201020304', 'hex')), 'PAYLOAD_MALFORMED', /2 SPIs of 4 bytes need 8 bytes but 4 are present/);
  expectError(one({ type: 14, cfgType: 1, identifier: 0, attributes: [] }, Buffer.alloc(3)), 'PAYLOAD_MALFORMED', /Attribute payload/);
  expectError(one({ type: 21, idType: 1, data: Buffer.alloc(0) }, Buffer.alloc(3)), 'PAYLOAD_MALFORMED', /NAT-OA/);
  expectError(one({ type: 132, fragmentId: 1, fragmentNumber: 1, flags: 0, data: Buffer.alloc(0) }, Buffer.alloc(2)), 'PAYLOAD_MALFORMED', /Fragment/);
});

test('caps: one over each cap is rejected, the cap itself is accepted', () => {
  const ok = (payloads: Payload[]) => assert.ok(parseMessage(encodeMessage({ header: header(), payloads })).ok);
  const over = (payloads: Payload[], re: RegExp) => expectError(parseMessage(encodeMessage({ header: header(), payloads })), 'PAYLOAD_MALFORMED', re);
  const props = (n: number) => Array.from({ length: n }, (_, i) => ikeProposal((i % 255) + 1));
  ok([saPayload(props(MAX_PROPOSALS))]);
  over([saPayload(props(MAX_PROPOSALS + 1))], /more than 64 proposals/);
  const transforms = (n: number): Transform[] => Array.from({ length: n }, (_, i) => ({ number: i + 1, transformId: 1, attributes: [] }));
  ok([saPayload([{ number: 1, protocolId: 1, spi: Buffer.alloc(0), transforms: transforms(MAX_TRANSFORMS) }])]);
  over([saPayload([{ number: 1, protocolId: 1, spi: Buffer.alloc(0), transforms: transforms(MAX_TRANSFORMS + 1) }])], /65 transforms, more than the cap of 64/);
  const attrs = (n: number) => Array.from({ length: n }, () => tv(1, 1));
  ok([saPayload([{ number: 1, protocolId: 1, spi: Buffer.alloc(0), transforms: [{ number: 1, transformId: 1, attributes: attrs(MAX_TRANSFORM_ATTRIBUTES) }] }])]);
  over([saPayload([{ number: 1, protocolId: 1, spi: Buffer.alloc(0), transforms: [{ number: 1, transformId: 1, attributes: attrs(MAX_TRANSFORM_ATTRIBUTES + 1) }] }])], /more than 64 attributes/);
  const vids = (n: number): Payload[] => Array.from({ length: n }, () => ({ type: 13, data: Buffer.alloc(0) }));
  ok(vids(MAX_PAYLOADS));
  over(vids(MAX_PAYLOADS + 1), /more than 256 payloads/);
  const del = (n: number): Payload => ({ type: 12, doi: 1, protocolId: 3, spiSize: 4, spis: Array.from({ length: n }, () => Buffer.alloc(4)) });
  ok([del(MAX_DELETE_SPIS)]);
  over([del(MAX_DELETE_SPIS + 1)], /1025 SPIs exceed the cap of 1024/);
  const cfg = (n: number): Payload => ({ type: 14, cfgType: 1, identifier: 1, attributes: attrs(n) });
  ok([cfg(MAX_MODECFG_ATTRIBUTES)]);
  over([cfg(MAX_MODECFG_ATTRIBUTES + 1)], /more than 512 attributes/);
});

test('unknown payload types: non-critical kept, critical or Proposal/Transform rejected, strict option', () => {
  const h = header(ExchangeType.INFORMATIONAL);
  const withUnknown = (type: number, critical: boolean) => encodeMessage({ header: h, payloads: [{ type: 13, data: Buffer.alloc(4) }, { type: type as UnknownPayloadType, critical, data: Buffer.from('abcd', 'hex') }, { type: 13, data: Buffer.alloc(2) }] });
  for (const type of [15, 19, 22, 23, 99, 127, 128, 133, 255]) {
    const r = parseMessage(withUnknown(type, false));
    assert.ok(r.ok && !('encrypted' in r.value), `type ${type}`);
    const u = (r.value as ParsedMessage).payloads[1]!;
    assert.deepEqual({ type: u.type, critical: (u as { critical: boolean }).critical }, { type, critical: false });
    assert.equal((r.value as ParsedMessage).payloads.length, 3, 'the chain continues after the unknown payload');
    expectError(parseMessage(withUnknown(type, true)), 'INVALID_PAYLOAD_TYPE', /not supported and is marked critical/);
    expectError(parseMessage(withUnknown(type, false), { unknownPayloads: 'reject' }), 'INVALID_PAYLOAD_TYPE');
  }
  for (const type of [2, 3]) expectError(parseMessage(withUnknown(type, false)), 'INVALID_PAYLOAD_TYPE', /only valid inside an SA payload/);
});

test('trailing bytes: zeros allowed in clear messages, anything after a decrypted chain, options', () => {
  const m = quickMode1();
  const chain = encodePayloads(m.payloads);
  const withTail = (tail: Buffer) => {
    const clear = encodeMessage(m);
    const c = Buffer.concat([clear, tail]);
    c.writeUInt32BE(c.length, 24);
    return c;
  };
  assert.ok(parseMessage(withTail(Buffer.alloc(4))).ok);
  expectError(parseMessage(withTail(Buffer.from([0, 0, 1]))), 'UNEQUAL_PAYLOAD_LENGTHS', /3 bytes follow the last payload/);
  expectError(parseMessage(withTail(Buffer.alloc(4)), { trailing: 'none' }), 'UNEQUAL_PAYLOAD_LENGTHS');
  assert.ok(parseMessage(withTail(Buffer.from([9, 9])), { trailing: 'any' }).ok);
  const body = Buffer.concat([chain, Buffer.from([1, 2, 3, 4, 5, 6, 7, 7])]);
  assert.ok(parsePayloads(8, body, 28).ok);
  expectError(parsePayloads(8, body, 28, { trailing: 'zeros' }), 'UNEQUAL_PAYLOAD_LENGTHS');
  // CBC padding (decrypted bodies): under a block anything, a block or more only zeros (last byte free)
  const pad = (tail: Buffer) => parsePayloads(8, Buffer.concat([chain, tail]), 28, { trailing: 'padding', blockSize: 16 });
  assert.ok(pad(Buffer.alloc(0)).ok);
  assert.ok(pad(Buffer.alloc(15, 0xa5)).ok, 'less than a block: whatever the sender put there');
  assert.ok(pad(Buffer.alloc(16)).ok, "strongSwan's full block of zeros when the payloads end on a block");
  assert.ok(pad(Buffer.concat([Buffer.alloc(15), Buffer.from([15])])).ok, 'RFC 2409 style pad count in the last byte');
  assert.ok(pad(Buffer.alloc(24)).ok);
  expectError(pad(Buffer.concat([Buffer.alloc(8), Buffer.alloc(16, 0x5a)])), 'UNEQUAL_PAYLOAD_LENGTHS', /24 bytes of padding .* forged appended block/);
  expectError(pad(Buffer.concat([Buffer.from([1]), Buffer.alloc(15)])), 'UNEQUAL_PAYLOAD_LENGTHS');
  expectError(parsePayloads(8, chain, 28, { trailing: 'padding' }), 'UNEQUAL_PAYLOAD_LENGTHS', /padding/);
  // Error offsets include baseOffset.
  const r = parsePayloads(8, chain.subarray(0, 10), 28);
  assert.ok(!r.ok);
  assert.equal(r.error.offset, 30);
  assert.match(r.error.message, /HASH payload at offset 28: payload length 36 exceeds the 10 bytes left/);
});

test('E flag: body returned encrypted; empty encrypted body is malformed; first payload NONE is an empty chain', () => {
  const h = { ...header(ExchangeType.INFORMATIONAL, 1), nextPayload: 8 };
  expectError(parseMessage(encodeMessage({ header: h, encrypted: Buffer.alloc(0) })), 'PAYLOAD_MALFORMED', /encrypted body is empty/);
  const r = parsePayloads(0, Buffer.alloc(0));
  assert.ok(r.ok && r.value.length === 0);
  // racoon sets E on IKE fragments, whose Fragment payload is in clear: parsed as a clear chain.
  const frag = encodeMessage({ header: { ...header(ExchangeType.IDENTITY_PROTECTION, 1) }, payloads: [{ type: 132, fragmentId: 1, fragmentNumber: 1, flags: 1, data: Buffer.alloc(40, 3) }] });
  const fr = parseMessage(frag);
  assert.ok(fr.ok && !('encrypted' in fr.value) && fr.value.payloads[0]!.type === 132);
  assert.equal(fr.value.header.flags, 1);
});
