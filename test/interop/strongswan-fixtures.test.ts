// Checks the strongSwan capture fixtures (test/fixtures/strongswan/*.json) against the RFC 2409
// formulas with node:crypto only, so the values in them can be trusted by the codec and key
// derivation tests: SKEYID* and Ka from the PSK, nonces and g^xy; HASH_I / HASH_R of phase 1;
// HASH(1) of Quick Mode; KEYMAT for the ESP keys; every decrypted body from its IV; the phase 1
// IV from g^xi | g^xr and the phase 2 IVs from the last phase 1 block and the message ID.
// Needs no root and no strongSwan: it reads files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const dir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../test/fixtures/strongswan');
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];

interface Msg {
  index: number;
  frame: number;
  from: 'initiator' | 'responder';
  srcPort: number;
  dstPort: number;
  nonEspMarker: boolean;
  exchangeType: number;
  messageId: number;
  flags: number;
  encrypted: boolean;
  retransmission: boolean;
  firstPayload: number;
  payloads: string[];
  hex: string;
  ivHex?: string;
  decryptedBodyHex?: string;
}

const H = (s: string | undefined) => Buffer.from(s ?? '', 'hex');
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

function hashName(prf: string): string {
  return /SHA2_256/.test(prf) ? 'sha256' : /SHA2_384/.test(prf) ? 'sha384' : /SHA2_512/.test(prf) ? 'sha512' : /MD5/.test(prf) ? 'md5' : 'sha1';
}

/** Payloads of a chain as [type, body without generic header]. */
function payloads(first: number, data: Buffer): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  let t = first;
  let off = 0;
  while (t !== 0) {
    assert.ok(off + 4 <= data.length, 'payload header inside the message');
    const len = data.readUInt16BE(off + 2);
    assert.ok(len >= 4 && off + len <= data.length, 'payload length inside the message');
    out.push([t, data.subarray(off + 4, off + len)]);
    t = data[off]!;
    off += len;
  }
  return out;
}

/** RFC 2409 appendix B key expansion: K1 = prf(K, seed), Kn = prf(K, Kn-1 | seed) ... */
function expand(prf: (k: Buffer, d: Buffer) => Buffer, key: Buffer, seed: Buffer, len: number, chainSeed: boolean): Buffer {
  let out: Buffer = Buffer.alloc(0);
  let prev: Buffer = Buffer.alloc(0);
  while (out.length < len) {
    prev = prf(key, chainSeed ? Buffer.concat([prev, seed]) : prev.length ? prev : seed);
    out = Buffer.concat([out, prev]);
  }
  return out.subarray(0, len);
}

test('strongSwan fixtures exist', () => {
  assert.ok(files.length >= 4, `fixtures in ${dir}`);
});

for (const file of files) {
  test(`fixture ${file}: keys, hashes, IVs and decrypted bodies agree with RFC 2409`, () => {
    const fx = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
    const k = fx.keys;
    const hash = hashName(fx.negotiated.prfAlg);
    const prf = (key: Buffer, data: Buffer) => createHmac(hash, key).update(data).digest();
    const keyBytes = fx.negotiated.encrKeysize / 8;
    const block = fx.negotiated.encrAlg === 'AES_CBC' ? 16 : 8;
    const cipher = fx.negotiated.encrAlg === 'AES_CBC' ? `aes-${fx.negotiated.encrKeysize}-cbc` : 'des-ede3-cbc';
    const msgs: Msg[] = fx.messages;

    // phase 1 keys (PSK): SKEYID = prf(pre-shared-key, Ni_b | Nr_b), then d, a, e; Ka from SKEYID_e
    const skeyid = prf(Buffer.from(fx.psk, 'utf8'), Buffer.concat([H(k.ni), H(k.nr)]));
    assert.equal(skeyid.toString('hex'), k.skeyid, 'SKEYID');
    const tail = Buffer.concat([H(k.gxy), H(k.cookieI), H(k.cookieR)]);
    const d = prf(skeyid, Buffer.concat([tail, Buffer.from([0])]));
    const a = prf(skeyid, Buffer.concat([d, tail, Buffer.from([1])]));
    const e = prf(skeyid, Buffer.concat([a, tail, Buffer.from([2])]));
    assert.equal(d.toString('hex'), k.skeyidD, 'SKEYID_d');
    assert.equal(a.toString('hex'), k.skeyidA, 'SKEYID_a');
    assert.equal(e.toString('hex'), k.skeyidE, 'SKEYID_e');
    const ka = e.length >= keyBytes ? e.subarray(0, keyBytes) : expand(prf, e, Buffer.from([0]), keyBytes, false);
    assert.equal(ka.toString('hex'), k.ka, 'Ka');

    // cookies in every header
    for (const m of msgs) {
      assert.equal(m.hex.slice(0, 16), k.cookieI);
      if (m.index > 0) assert.equal(m.hex.slice(16, 32), k.cookieR);
      assert.equal(m.nonEspMarker, m.srcPort === 4500, 'non-ESP marker exactly on port 4500');
    }

    // IV chain (RFC 2409 appendix B) and decryption
    let p1 = createHash(hash).update(Buffer.concat([H(k.gxi), H(k.gxr)])).digest().subarray(0, block);
    assert.equal(p1.toString('hex'), k.initialIv);
    const perMid = new Map<number, Buffer>();
    for (const m of msgs.filter((x) => x.encrypted && !x.retransmission)) {
      const raw = H(m.hex);
      const body = raw.subarray(28);
      const iv = m.messageId === 0 ? p1 : (perMid.get(m.messageId) ?? createHash(hash).update(Buffer.concat([p1, u32(m.messageId)])).digest().subarray(0, block));
      assert.equal(iv.toString('hex'), m.ivHex, `IV of message ${m.index}`);
      const dec = createDecipheriv(cipher, ka, iv).setAutoPadding(false);
      const plain = Buffer.concat([dec.update(body), dec.final()]);
      assert.equal(plain.toString('hex'), m.decryptedBodyHex, `plaintext of message ${m.index}`);
      const last = body.subarray(body.length - block);
      if (m.messageId === 0) p1 = last;
      else perMid.set(m.messageId, last);
    }
    const bodyOf = (m: Msg) => (m.encrypted ? H(m.decryptedBodyHex) : H(m.hex).subarray(28));
    const pl = (m: Msg) => payloads(m.firstPayload, bodyOf(m));
    const find = (m: Msg, t: number) => pl(m).find(([x]) => x === t)?.[1];

    // phase 1 authentication: HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b),
    // HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
    const p1msgs = msgs.filter((m) => m.messageId === 0 && !m.retransmission);
    const saI = find(p1msgs[0]!, 1)!;
    const idOf = (who: string) => p1msgs.filter((m) => m.from === who).map((m) => find(m, 5)).find(Boolean)!;
    const hashOf = (who: string) => p1msgs.filter((m) => m.from === who).map((m) => find(m, 8)).find(Boolean)!;
    const ckI = H(k.cookieI), ckR = H(k.cookieR);
    const hashI = prf(skeyid, Buffer.concat([H(k.gxi), H(k.gxr), ckI, ckR, saI, idOf('initiator')]));
    const hashR = prf(skeyid, Buffer.concat([H(k.gxr), H(k.gxi), ckR, ckI, saI, idOf('responder')]));
    assert.equal(hashOf('initiator').toString('hex'), hashI.toString('hex'), 'HASH_I');
    assert.equal(hashOf('responder').toString('hex'), hashR.toString('hex'), 'HASH_R');

    // Quick Mode: HASH(1) = prf(SKEYID_a, M-ID | everything after the HASH payload)
    const qm1 = msgs.find((m) => m.exchangeType === 32 && m.from === 'initiator' && !m.retransmission);
    assert.ok(qm1, 'a Quick Mode message 1');
    const b1 = bodyOf(qm1);
    const hashLen = b1.readUInt16BE(2);
    const rest = payloads(qm1.firstPayload, b1);
    const after = b1.subarray(hashLen, hashLen + rest.slice(1).reduce((s, [, body]) => s + body.length + 4, 0));
    assert.equal(prf(a, Buffer.concat([u32(qm1.messageId), after])).toString('hex'), rest[0]![1].toString('hex'), 'HASH(1)');

    // ESP keys: KEYMAT = prf(SKEYID_d, [g(qm)^xy] | protocol | SPI | Ni_b | Nr_b), expanded, enc key first
    for (const c of k.children) {
      const [encAlg, integAlg] = String(c.proposal).split('/');
      const encLen = Number(/_(\d+)$/.exec(encAlg!)![1]) / 8;
      const integLen = /SHA2_256/.test(integAlg!) ? 32 : /SHA2_384/.test(integAlg!) ? 48 : /SHA2_512/.test(integAlg!) ? 64 : /MD5/.test(integAlg!) ? 16 : 20;
      for (const [spi, enc, integ] of [[c.spiI, c.encI, c.integI], [c.spiR, c.encR, c.integR]]) {
        const seed = Buffer.concat([H(c.dhSecret), Buffer.from([3]), H(spi), H(c.ni), H(c.nr)]);
        const km = expand(prf, d, seed, encLen + integLen, true);
        assert.equal(km.subarray(0, encLen).toString('hex'), enc, `ESP encryption key for SPI ${spi}`);
        assert.equal(km.subarray(encLen).toString('hex'), integ, `ESP integrity key for SPI ${spi}`);
      }
    }
    // ESP packets (RFC 4303 in UDP): ICV = HMAC(integrity key, SPI | seq | IV | ciphertext) truncated; AES-CBC
    for (const p of fx.espPackets) {
      const c = k.children.find((x: { spiI: string; spiR: string }) => x.spiI === p.spi || x.spiR === p.spi);
      assert.ok(c, `ESP SPI ${p.spi} belongs to a CHILD_SA`);
      const [encKey, integKey] = c.spiI === p.spi ? [c.encI, c.integI] : [c.encR, c.integR];
      const integ = String(c.proposal).split('/')[1];
      const [mac, icvLen] = integ === 'HMAC_SHA1_96' ? ['sha1', 12] : ['sha256', 16];
      const pkt = H(p.hex);
      const icv = createHmac(mac as string, H(integKey)).update(pkt.subarray(0, pkt.length - (icvLen as number))).digest();
      assert.equal(icv.subarray(0, icvLen as number).toString('hex'), pkt.subarray(pkt.length - (icvLen as number)).toString('hex'), `ICV of ESP packet ${p.index}`);
      const dec = createDecipheriv(`aes-${encKey.length * 4}-cbc`, H(encKey), pkt.subarray(8, 24)).setAutoPadding(false);
      const plain = Buffer.concat([dec.update(pkt.subarray(24, pkt.length - (icvLen as number))), dec.final()]);
      assert.equal(plain.toString('hex'), p.decryptedHex);
      assert.equal(plain[plain.length - 1], 4, 'tunnel mode: next header IPv4');
      assert.equal(plain[0]! >> 4, 4, 'inner packet is IPv4');
    }
    // tshark decodes everything but retransmitted encrypted messages (it chains IVs per message)
    for (const f of fx.checks.tsharkMalformedFrames) {
      assert.ok(msgs.some((m) => m.frame === f && m.retransmission), `tshark: frame ${f} malformed`);
    }
    assert.equal(fx.checks.tsharkMalformed.length > 0, fx.checks.tsharkMalformedFrames.length > 0);
    assert.deepEqual(fx.checks.decryptionProblems, []);
  });
}
