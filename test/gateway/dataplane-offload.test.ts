// TUN offload pieces of the data plane (native/dataplane_gso.h) without a TUN device: TSO super-packets cut
// into segments, segments joined back for one TUN write. Checked against an independent checksum written
// here from RFC 1071 / RFC 793 / RFC 8200 8.1 (pseudo-headers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nativeTestAddon } from '../../ts/native.js';

// The hooks are in the test build of the addon (ikev1_native_test) only.
const hooks = nativeTestAddon()?.dataplaneOffloadTest;
const skip = hooks ? false : 'test build of the native addon not built';

const ACK = 0x10, PSH = 0x08, FIN = 0x01, CWR = 0x80;
const GSO_TCPV4 = 1, GSO_TCPV6 = 4;

function sum16(b: Buffer, acc = 0): number {
  for (let i = 0; i < b.length; i += 2) acc += (b[i]! << 8) | (b[i + 1] ?? 0);
  return acc;
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}
function pseudo(p: Buffer, v6: boolean, l4Len: number): Buffer {
  if (v6) {
    const ph = Buffer.alloc(40);
    p.copy(ph, 0, 8, 40);
    ph.writeUInt32BE(l4Len, 32);
    ph[39] = 6;
    return ph;
  }
  const ph = Buffer.alloc(12);
  p.copy(ph, 0, 12, 20);
  ph[9] = 6;
  ph.writeUInt16BE(l4Len, 10);
  return ph;
}
/** True when the TCP checksum of a whole packet verifies (the sum over pseudo-header and segment is 0xffff). */
function tcpOk(p: Buffer, v6: boolean): boolean {
  const l4 = v6 ? 40 : 20;
  return fold(sum16(p.subarray(l4), sum16(pseudo(p, v6, p.length - l4)))) === 0xffff;
}
function ipv4HeaderOk(p: Buffer): boolean {
  return fold(sum16(p.subarray(0, 20))) === 0xffff;
}

/** A TCP super-packet: 12 octets of options (NOP NOP timestamp), so the TCP header is 32 octets. */
function superPacket(v6: boolean, payload: Buffer, flags: number, seq: number, sport = 40000): Buffer {
  const ipLen = v6 ? 40 : 20;
  const p = Buffer.alloc(ipLen + 32 + payload.length);
  if (v6) {
    p[0] = 0x60;
    p.writeUInt16BE(32 + payload.length, 4);
    p[6] = 6;
    p[7] = 64;
    Buffer.from('fd000099000100000000000000000001', 'hex').copy(p, 8);
    Buffer.from('fd000099000200000000000000000001', 'hex').copy(p, 24);
  } else {
    p[0] = 0x45;
    p.writeUInt16BE(Math.min(p.length, 0xffff), 2); // a TSO packet's length field is not relied upon
    p.writeUInt16BE(0x1000, 4);
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    Buffer.from([10, 99, 1, 1, 10, 99, 2, 1]).copy(p, 12);
  }
  const t = p.subarray(ipLen);
  t.writeUInt16BE(sport, 0);
  t.writeUInt16BE(5201, 2);
  t.writeUInt32BE(seq >>> 0, 4);
  t.writeUInt32BE(0x01020304, 8);
  t[12] = 8 << 4;
  t[13] = flags;
  t.writeUInt16BE(512, 14);
  Buffer.from([1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]).copy(t, 20);
  payload.copy(t, 32);
  return p;
}

for (const v6 of [false, true]) {
  const fam = v6 ? 'IPv6' : 'IPv4';
  const l4 = v6 ? 40 : 20;

  test(`offload: an ${fam} TSO super-packet is cut into MSS segments with their own headers and checksums`, { skip }, () => {
    const payload = randomBytes(5001); // odd: the last segment is 1 octet
    const seq0 = 0xfffff000; // the sequence number wraps inside the packet
    const segs = hooks!.cut(superPacket(v6, payload, ACK | PSH | FIN | CWR, seq0), v6 ? GSO_TCPV6 : GSO_TCPV4, 1000, l4);
    assert.deepEqual(segs.map((s) => s.length - l4 - 32), [1000, 1000, 1000, 1000, 1000, 1]);
    segs.forEach((s, i) => {
      if (v6) assert.equal(s.readUInt16BE(4), s.length - 40);
      else {
        assert.equal(s.readUInt16BE(2), s.length);
        assert.equal(s.readUInt16BE(4), 0x1000 + i, 'IP identification + 1 per segment');
        assert.ok(ipv4HeaderOk(s), `IPv4 header checksum of segment ${i}`);
      }
      assert.equal(s.readUInt32BE(l4 + 4), (seq0 + i * 1000) >>> 0);
      const last = i === segs.length - 1;
      assert.equal(s[l4 + 13], ACK | (last ? PSH | FIN : 0) | (i === 0 ? CWR : 0), `flags of segment ${i}`);
      assert.ok(tcpOk(s, v6), `TCP checksum of segment ${i}`);
    });
    assert.deepEqual(Buffer.concat(segs.map((s) => s.subarray(l4 + 32))), payload);
  });

  test(`offload: ${fam} segments of one stream are joined into one GSO packet; anything else is not`, { skip }, () => {
    const payload = randomBytes(4500);
    const segs = hooks!.cut(superPacket(v6, payload, ACK | PSH, 1000), v6 ? GSO_TCPV6 : GSO_TCPV4, 1000, l4);
    assert.equal(segs.length, 5);
    const j = hooks!.join(segs);
    assert.equal(j.count, 5);
    assert.deepEqual(j.header, { flags: 1, gsoType: v6 ? GSO_TCPV6 : GSO_TCPV4, hdrLen: l4 + 32, gsoSize: 1000, csumStart: l4, csumOffset: 16 });
    const p = j.packet;
    assert.equal(p.length, l4 + 32 + 4500);
    if (v6) assert.equal(p.readUInt16BE(4), p.length - 40);
    else {
      assert.equal(p.readUInt16BE(2), p.length);
      assert.ok(ipv4HeaderOk(p));
    }
    assert.equal(p[l4 + 13], ACK | PSH, 'PSH of the last segment');
    assert.equal(p.readUInt32BE(l4 + 4), 1000);
    assert.deepEqual(p.subarray(l4 + 32), payload);
    // NEEDS_CSUM: the field holds the pseudo-header sum; finishing it as the kernel would gives a valid checksum.
    const done = Buffer.from(p);
    done.writeUInt16BE(~fold(sum16(done.subarray(l4))) & 0xffff, l4 + 16);
    assert.ok(tcpOk(done, v6), 'the completed checksum verifies');

    // The run stops before a segment with a bad checksum, a gap, or another stream; a first segment that is
    // not ACK-only goes alone.
    const bad = segs.map((s) => Buffer.from(s));
    bad[3]![l4 + 40]! ^= 1;
    assert.equal(hooks!.join(bad).count, 3);
    assert.equal(hooks!.join([segs[0]!, segs[2]!, segs[3]!].map((s) => Buffer.from(s))).count, 1);
    const other = hooks!.cut(superPacket(v6, payload, ACK, 2000, 40001), v6 ? GSO_TCPV6 : GSO_TCPV4, 1000, l4);
    assert.equal(hooks!.join([Buffer.from(segs[0]!), ...other]).count, 1);
    const syn = hooks!.cut(superPacket(v6, payload.subarray(0, 2000), ACK | CWR, 1000), v6 ? GSO_TCPV6 : GSO_TCPV4, 1000, l4);
    assert.equal(hooks!.join(syn).count, 1);
  });
}

test('offload: a super-packet the plan cannot describe is refused, not cut', { skip }, () => {
  const p = superPacket(false, randomBytes(3000), ACK, 1);
  assert.deepEqual(hooks!.cut(p, 3, 1000, 20), [], 'UDP GSO is not enabled');
  assert.deepEqual(hooks!.cut(p, GSO_TCPV4, 1000, 24), [], 'csum_start not after the IPv4 header');
  assert.deepEqual(hooks!.cut(p, GSO_TCPV4, 0, 20), [], 'gso_size 0');
  assert.deepEqual(hooks!.cut(p, GSO_TCPV6, 1000, 40), [], 'IPv6 type for an IPv4 packet');
  assert.deepEqual(hooks!.cut(p.subarray(0, 30), GSO_TCPV4, 1000, 20), [], 'truncated TCP header');
});
