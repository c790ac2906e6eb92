import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IdType,
  decodeIdentity,
  decodeIdPayload,
  encodeIdentity,
  formatIpv6,
  idPayload,
  idToString,
  parseIpv6,
  IsakmpEncodeError,
} from '../../ts/isakmp/index.js';
import type { Identity } from '../../ts/isakmp/index.js';

test('identities round-trip through ID payload data, with the RFC 2407 ID types', () => {
  const cases: [Identity, number, string][] = [
    [{ kind: 'ipv4', address: '10.0.0.1' }, IdType.IPV4_ADDR, '0a000001'],
    [{ kind: 'ipv4-subnet', subnet: '10.1.0.0/24' }, IdType.IPV4_ADDR_SUBNET, '0a010000ffffff00'],
    [{ kind: 'ipv4-subnet', subnet: '0.0.0.0/0' }, IdType.IPV4_ADDR_SUBNET, '0000000000000000'],
    [{ kind: 'ipv4-range', start: '10.0.0.1', end: '10.0.0.9' }, IdType.IPV4_ADDR_RANGE, '0a0000010a000009'],
    [{ kind: 'ipv6', address: '2001:db8::1' }, IdType.IPV6_ADDR, '20010db8000000000000000000000001'],
    [{ kind: 'ipv6-subnet', subnet: '2001:db8::/33' }, IdType.IPV6_ADDR_SUBNET, '20010db8000000000000000000000000' + 'ffffffff800000000000000000000000'],
    [{ kind: 'ipv6-range', start: '::1', end: '::2' }, IdType.IPV6_ADDR_RANGE, '0'.repeat(31) + '1' + '0'.repeat(31) + '2'],
    [{ kind: 'fqdn', value: 'vpn.example.com' }, IdType.FQDN, Buffer.from('vpn.example.com').toString('hex')],
    [{ kind: 'user-fqdn', value: 'alice@example.com' }, IdType.USER_FQDN, Buffer.from('alice@example.com').toString('hex')],
    [{ kind: 'key-id', data: Buffer.from('0102', 'hex') }, IdType.KEY_ID, '0102'],
    [{ kind: 'der-dn', data: Buffer.from('3000', 'hex') }, IdType.DER_ASN1_DN, '3000'],
    [{ kind: 'der-gn', data: Buffer.from('a000', 'hex') }, IdType.DER_ASN1_GN, 'a000'],
    [{ kind: 'other', idType: 12, data: Buffer.from('ff', 'hex') }, 12, 'ff'],
  ];
  for (const [id, idType, dataHex] of cases) {
    const enc = encodeIdentity(id);
    assert.equal(enc.idType, idType, id.kind);
    assert.equal(enc.data.toString('hex'), dataHex, id.kind);
    const dec = decodeIdentity(enc.idType, enc.data);
    assert.ok(dec.ok);
    assert.deepEqual(dec.value, id);
  }
  const p = idPayload({ kind: 'ipv4-subnet', subnet: '192.168.1.0/24' }, 17, 1701);
  assert.equal(idToString(p), '192.168.1.0/24[17/1701]');
  const d = decodeIdPayload(p);
  assert.ok(d.ok && d.value.kind === 'ipv4-subnet');
});

test('IPv6 text forms: parsing variants and RFC 5952 output', () => {
  const same = ['2001:db8:0:0:1:0:0:1', '2001:DB8::1:0:0:1', '2001:0db8:0000:0000:0001:0000:0000:0001'];
  for (const s of same) assert.equal(formatIpv6(parseIpv6(s)!), '2001:db8::1:0:0:1');
  assert.equal(formatIpv6(parseIpv6('::')!), '::');
  assert.equal(formatIpv6(parseIpv6('::ffff:192.0.2.1')!), '::ffff:c000:201');
  assert.equal(formatIpv6(parseIpv6('1:0:1:1:1:1:1:1')!), '1:0:1:1:1:1:1:1'); // a single zero group is not compressed
  for (const bad of ['', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', 'g::1', '1:2:3:4:5:6:7']) assert.equal(parseIpv6(bad), null, bad);
});

test('bad identity input: encode throws IsakmpEncodeError, decode returns INVALID_ID_INFORMATION', () => {
  for (const id of [
    { kind: 'ipv4', address: '10.0.0.256' },
    { kind: 'ipv4', address: '10.0.0' },
    { kind: 'ipv4-subnet', subnet: '10.0.0.0' },
    { kind: 'ipv4-subnet', subnet: '10.0.0.0/33' },
    { kind: 'ipv6', address: '1::2::3' },
  ] as Identity[]) {
    assert.throws(() => encodeIdentity(id), IsakmpEncodeError, JSON.stringify(id));
  }
  const short = decodeIdentity(IdType.IPV4_ADDR, Buffer.alloc(3));
  assert.ok(!short.ok && short.error.kind === 'INVALID_ID_INFORMATION');
  const holes = decodeIdentity(IdType.IPV4_ADDR_SUBNET, Buffer.from('0a000000ff00ff00', 'hex'));
  assert.ok(!holes.ok && /not contiguous/.test(holes.error.message));
  assert.equal(idToString({ type: 5, idType: 1, protocolId: 0, port: 0, data: Buffer.alloc(2) }), 'invalid-id(type 1, 2 bytes)');
  assert.equal(idToString({ kind: 'fqdn', value: 'a\nb' }), 'a\\nb');
});
