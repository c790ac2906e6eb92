import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ExchangeType,
  Flags,
  IkeAttr,
  attrNumber,
  attrValue,
  encodeHeader,
  encodeMessage,
  encodePayloadBody,
  encodePayloads,
  findAttr,
  findPayload,
  findPayloads,
  describePayloads,
  lifeValueAttr,
  parseHeader,
  parseMessage,
  parsePayloads,
  tlv,
  tv,
  IsakmpEncodeError,
} from '../../ts/isakmp/index.js';
import type { Attribute, ParsedMessage, Payload, Proposal, Transform } from '../../ts/isakmp/index.js';
import { everyPayload, header, mainMode1, quickMode1 } from './samples.js';

/** Drops the parse-only `raw` fields so parsed payloads compare equal to what was encoded. */
function strip(p: unknown): unknown {
  if (Buffer.isBuffer(p)) return p;
  if (Array.isArray(p)) return p.map(strip);
  if (p !== null && typeof p === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p)) if (k !== 'raw') out[k] = strip(v);
    return out;
  }
  return p;
}

function parseClear(bytes: Buffer): ParsedMessage {
  const r = parseMessage(bytes);
  if (!r.ok) assert.fail(`parse failed: ${r.error.kind}: ${r.error.message}`);
  assert.ok(!('encrypted' in r.value));
  return r.value as ParsedMessage;
}

test('every payload type and attribute form round-trips encode -> parse -> encode byte for byte', () => {
  const payloads = everyPayload();
  const bytes = encodeMessage({ header: header(ExchangeType.INFORMATIONAL), payloads });
  const parsed = parseClear(bytes);
  assert.equal(parsed.payloads.length, payloads.length);
  assert.deepEqual(strip(parsed.payloads), strip(payloads));
  assert.ok(encodeMessage({ header: parsed.header, payloads: parsed.payloads }).equals(bytes));
  // Each payload separately as the only payload of a message, too.
  for (const p of payloads) {
    const one = encodeMessage({ header: header(), payloads: [p] });
    const back = parseClear(one);
    assert.deepEqual(strip(back.payloads), strip([p]), `payload type ${p.type}`);
    assert.ok(encodeMessage({ header: back.header, payloads: back.payloads }).equals(one));
  }
});

test('encodeMessage fills nextPayload and length and keeps the flags; header round-trips', () => {
  const m = mainMode1(3);
  const h = { ...m.header, flags: Flags.COMMIT, nextPayload: 99, length: 1 };
  const bytes = encodeMessage({ header: h, payloads: m.payloads });
  const ph = parseHeader(bytes);
  assert.ok(ph.ok);
  assert.equal(ph.value.nextPayload, 1);
  assert.equal(ph.value.length, bytes.length);
  assert.equal(ph.value.flags, Flags.COMMIT);
  assert.ok(encodeHeader(ph.value).equals(bytes.subarray(0, 28)));
  // An empty payload list is a bare header.
  const bare = encodeMessage({ header: header(ExchangeType.INFORMATIONAL), payloads: [] });
  assert.equal(bare.length, 28);
  assert.deepEqual(parseClear(bare).payloads, []);
});

test('encrypted form: body kept as is, nextPayload from the header, parse returns the body unchanged', () => {
  const body = Buffer.alloc(48, 0xab);
  const h = { ...header(ExchangeType.QUICK_MODE, Flags.ENCRYPTION, 0xdeadbeef), nextPayload: 8 };
  const bytes = encodeMessage({ header: h, encrypted: body });
  assert.equal(bytes.length, 76);
  const r = parseMessage(bytes);
  assert.ok(r.ok && 'encrypted' in r.value);
  assert.ok(r.value.encrypted.equals(body));
  assert.equal(r.value.header.nextPayload, 8);
  assert.equal(r.value.header.messageId, 0xdeadbeef);
  // Decrypted body (with block padding) goes through parsePayloads.
  const plain = Buffer.concat([encodePayloads(quickMode1().payloads), Buffer.from([0, 0, 0, 0, 0, 0, 0, 7])]);
  const pr = parsePayloads(8, plain, 28);
  assert.ok(pr.ok);
  assert.deepEqual(strip(pr.value), strip(quickMode1().payloads));
});

test('raw is the exact payload bytes incl. generic header; raw.subarray(4) is the body the hashes use', () => {
  const m = quickMode1();
  const bytes = encodeMessage(m);
  const parsed = parseClear(bytes);
  let offset = 28;
  for (const p of parsed.payloads) {
    assert.ok(p.raw !== undefined);
    assert.equal(p.raw.byteOffset - bytes.byteOffset, offset, 'raw is a view into the input (no copy)');
    assert.ok(p.raw.subarray(4).equals(encodePayloadBody(p)));
    offset += p.raw.length;
  }
  // Quick Mode HASH(1) covers everything after the HASH payload:
  const hashPayload = parsed.payloads[0]!;
  const afterHash = bytes.subarray(28 + hashPayload.raw!.length);
  assert.ok(afterHash.equals(encodePayloads(m.payloads.slice(1))));
});

test('findPayload / findPayloads narrow to the typed payload', () => {
  const parsed = parseClear(encodeMessage(quickMode1()));
  const sa = findPayload(parsed.payloads, 1);
  assert.ok(sa !== undefined);
  assert.equal(sa.proposals.length, 2); // typed access without a cast
  assert.equal(findPayloads(parsed.payloads, 5).length, 2);
  assert.equal(findPayload(parsed.payloads, 12), undefined);
  // Plain discriminant narrowing works too (UnknownPayload's type excludes the known numbers); this is a
  // compile-time check as much as a runtime one.
  let proposals = 0;
  for (const p of parsed.payloads) if (p.type === 1) proposals += p.proposals.length;
  assert.equal(proposals, 2);
  assert.equal(describePayloads(parsed.payloads), 'HASH SA NONCE KE ID ID');
  const all = parseClear(encodeMessage({ header: header(5), payloads: everyPayload() }));
  assert.equal(describePayloads(all.payloads), 'SA KE ID CERT CR HASH SIG NONCE N(R_U_THERE) N(RESPONDER_LIFETIME) D D VID ATTR NAT-D NAT-D NAT-OA NAT-OA FRAG UNKNOWN(200)');
});

test('attribute helpers: tv / tlv / lifeValueAttr thresholds and attrValue widths', () => {
  assert.deepEqual(lifeValueAttr(12, 65535), { type: 12, value: 65535 });
  const a4 = lifeValueAttr(12, 65536);
  assert.ok(Buffer.isBuffer(a4.value) && a4.value.length === 4);
  assert.equal(attrValue(a4), 65536);
  const a8 = lifeValueAttr(12, 2n ** 32n);
  assert.ok(Buffer.isBuffer(a8.value) && a8.value.length === 8);
  assert.equal(attrValue(a8), 2 ** 32);
  const big = lifeValueAttr(12, 2n ** 64n - 1n);
  assert.equal(attrValue(big), 2n ** 64n - 1n);
  assert.equal(attrNumber(big), null);
  for (let n = 1; n <= 8; n++) {
    const b = Buffer.alloc(n, 0);
    b[n - 1] = 5;
    assert.equal(attrValue(tlv(1, b)), 5, `${n}-byte TLV`);
  }
  assert.equal(attrValue(tlv(1, Buffer.alloc(0))), null);
  assert.equal(attrValue(tlv(1, Buffer.alloc(9))), null);
  assert.throws(() => tv(1, 65536), IsakmpEncodeError);
  assert.throws(() => lifeValueAttr(1, -1), IsakmpEncodeError);
  const t: Transform = { number: 1, transformId: 1, attributes: [tv(IkeAttr.LIFE_TYPE, 1), lifeValueAttr(IkeAttr.LIFE_DURATION, 86400)] };
  assert.equal(attrNumber(findAttr(t, IkeAttr.LIFE_DURATION)), 86400);
  assert.equal(findAttr(t.attributes, IkeAttr.KEY_LENGTH), undefined);
});

test('encoder rejects values that do not fit their fields with IsakmpEncodeError', () => {
  const h = header();
  assert.throws(() => encodeMessage({ header: h, payloads: [{ type: 4, data: Buffer.alloc(65532) }] }), IsakmpEncodeError);
  assert.doesNotThrow(() => encodeMessage({ header: h, payloads: [{ type: 4, data: Buffer.alloc(65531) }] }));
  assert.throws(() => encodeMessage({ header: { ...h, initiatorCookie: Buffer.alloc(7) }, payloads: [] }), IsakmpEncodeError);
  assert.throws(() => encodePayloads([{ type: 14, cfgType: 1, identifier: 0, attributes: [{ type: 1, value: 70000 }] }]), IsakmpEncodeError);
  assert.throws(() => encodePayloads([{ type: 14, cfgType: 1, identifier: 0, attributes: [{ type: 0x8001, value: 1 }] }]), IsakmpEncodeError);
  assert.throws(() => encodePayloads([{ type: 12, doi: 1, protocolId: 3, spiSize: 4, spis: [Buffer.alloc(3)] }]), IsakmpEncodeError);
  assert.throws(() => encodePayloads([{ type: 5, idType: 256, protocolId: 0, port: 0, data: Buffer.alloc(4) }]), IsakmpEncodeError);
});

// ---- property tests on generated messages ----

const bytesArb = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));
const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const attrArb: fc.Arbitrary<Attribute> = fc.oneof(
  fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: u16 }),
  fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytesArb(0, 40) }),
);
const transformArb: fc.Arbitrary<Transform> = fc.record({ number: u8, transformId: u8, attributes: fc.array(attrArb, { maxLength: 8 }) });
const proposalArb: fc.Arbitrary<Proposal> = fc.record({
  number: u8,
  protocolId: u8,
  spi: fc.constantFrom(0, 2, 4, 8, 16).chain((n) => bytesArb(n, n)),
  transforms: fc.array(transformArb, { minLength: 1, maxLength: 5 }),
});
const payloadArb = fc.oneof(
  fc.record({ type: fc.constant(1 as const), doi: fc.constantFrom(0, 1), situation: fc.constant(Buffer.from([0, 0, 0, 1])), proposals: fc.array(proposalArb, { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constantFrom(4 as const), data: bytesArb(0, 300) }),
  fc.record({ type: fc.constant(5 as const), idType: u8, protocolId: u8, port: u16, data: bytesArb(0, 40) }),
  fc.record({ type: fc.constantFrom(6 as const, 7 as const), encoding: u8, data: bytesArb(0, 100) }),
  fc.record({ type: fc.constantFrom(8 as const, 9 as const, 10 as const, 13 as const), data: bytesArb(0, 64) }),
  fc.record({ type: fc.constant(11 as const), doi: u32, protocolId: u8, notifyType: u16, spi: bytesArb(0, 16), data: bytesArb(0, 32) }),
  fc.integer({ min: 0, max: 16 }).chain((spiSize) =>
    fc.record({ type: fc.constant(12 as const), doi: u32, protocolId: u8, spiSize: fc.constant(spiSize), spis: fc.array(bytesArb(spiSize, spiSize), { maxLength: spiSize === 0 ? 3 : 10 }) }),
  ),
  fc.record({ type: fc.constant(14 as const), cfgType: u8, identifier: u16, attributes: fc.array(attrArb, { maxLength: 10 }) }),
  fc.record({ type: fc.constantFrom(20 as const, 130 as const), data: bytesArb(0, 64) }),
  fc.record({ type: fc.constantFrom(21 as const, 131 as const), idType: u8, data: bytesArb(0, 16) }),
  fc.record({ type: fc.constant(132 as const), fragmentId: u16, fragmentNumber: u8, flags: u8, data: bytesArb(0, 64) }),
  fc.record({ type: fc.constantFrom(15, 22, 50, 128, 200, 255), critical: fc.constant(false), data: bytesArb(0, 32) }),
) as fc.Arbitrary<Payload>;

test('property: generated messages round-trip (structure and bytes)', () => {
  fc.assert(
    fc.property(fc.array(payloadArb, { maxLength: 12 }), fc.constantFrom(1, 2, 4, 5, 6, 32), u32, (payloads, exch, mid) => {
      const bytes = encodeMessage({ header: header(exch, 0, mid), payloads });
      const r = parseMessage(bytes, { trailing: 'none' });
      if (!r.ok) throw new Error(`${r.error.kind}: ${r.error.message}`);
      const parsed = r.value as ParsedMessage;
      assert.deepEqual(strip(parsed.payloads), strip(payloads));
      assert.ok(encodeMessage({ header: parsed.header, payloads: parsed.payloads }).equals(bytes));
      // The same chain as a decrypted body with random padding parses to the same payloads.
      const body = Buffer.concat([encodePayloads(payloads), Buffer.alloc(7, 0x42)]);
      const pr = parsePayloads(payloads[0]?.type ?? 0, body, 28);
      if (!pr.ok) throw new Error(`${pr.error.kind}: ${pr.error.message}`);
      assert.deepEqual(strip(pr.value), strip(payloads));
    }),
    { numRuns: 500 },
  );
});
