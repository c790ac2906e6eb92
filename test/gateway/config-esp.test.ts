// strongSwan ESP proposal keywords -> IKEv1 Quick Mode numbers (RFC 2407 4.4.4 / 4.5, RFC 4106, RFC 4868, RFC 7634).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEspAlgorithm } from '../../ts/esp/index.js';
import { espProposalName, parseEspProposal, type EspProposal } from '../../ts/ike/esp-proposals.js';
import { AuthAlgorithm as A, EspTransformId as E } from '../../ts/isakmp/index.js';

function one(text: string, opts = {}): EspProposal {
  const r = parseEspProposal(text, opts);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : r.error}`);
  assert.equal(r.value.length, 1);
  return r.value[0]!;
}
function error(text: string, opts = {}): string {
  const r = parseEspProposal(text, opts);
  assert.ok(!r.ok, `${text} should be refused`);
  return r.error;
}

test('every keyword maps to its IKEv1 transform ID, key length and auth algorithm', () => {
  const table: Array<[string, string, number, number | undefined, number | null]> = [
    ['aes128gcm16', 'aes128gcm16', E.ESP_AES_GCM_16, 128, null],
    ['aes256gcm16', 'aes256gcm16', E.ESP_AES_GCM_16, 256, null],
    ['aes128gcm128', 'aes128gcm16', E.ESP_AES_GCM_16, 128, null], // ICV size in bits: the same algorithm
    ['aes256gcm128', 'aes256gcm16', E.ESP_AES_GCM_16, 256, null],
    ['aes128-sha1', 'aes128-sha1', E.ESP_AES_CBC, 128, A.HMAC_SHA],
    ['aes256-sha1', 'aes256-sha1', E.ESP_AES_CBC, 256, A.HMAC_SHA],
    ['aes128-sha256', 'aes128-sha256', E.ESP_AES_CBC, 128, A.HMAC_SHA2_256],
    ['aes256-sha256', 'aes256-sha256', E.ESP_AES_CBC, 256, A.HMAC_SHA2_256],
    ['aes128-sha384', 'aes128-sha384', E.ESP_AES_CBC, 128, A.HMAC_SHA2_384],
    ['aes256-sha384', 'aes256-sha384', E.ESP_AES_CBC, 256, A.HMAC_SHA2_384],
    ['aes128-sha512', 'aes128-sha512', E.ESP_AES_CBC, 128, A.HMAC_SHA2_512],
    ['aes256-sha512', 'aes256-sha512', E.ESP_AES_CBC, 256, A.HMAC_SHA2_512],
    ['aes-sha', 'aes128-sha1', E.ESP_AES_CBC, 128, A.HMAC_SHA],
    ['aes256-sha2_256', 'aes256-sha256', E.ESP_AES_CBC, 256, A.HMAC_SHA2_256],
    ['3des-sha1', '3des-sha1', E.ESP_3DES, undefined, A.HMAC_SHA],
    ['chacha20poly1305', 'chacha20poly1305', E.ESP_CHACHA20_POLY1305, undefined, null],
    ['AES128GCM16', 'aes128gcm16', E.ESP_AES_GCM_16, 128, null],
  ];
  for (const [text, algorithm, transformId, keyBits, auth] of table) {
    const p = one(text);
    assert.equal(p.algorithm, algorithm, text);
    assert.deepEqual(p.encryption, keyBits === undefined ? { transformId } : { transformId, keyBits }, text);
    assert.deepEqual(p.integrity, auth === null ? null : { authAlgorithm: auth }, text);
    assert.equal(p.esn, false, text);
    assert.equal(p.pfsGroup, undefined, text);
  }
});

test('a DH group keyword is the PFS group; esn / noesn set extended sequence numbers', () => {
  assert.equal(one('aes128gcm16-modp2048').pfsGroup, 14);
  assert.equal(one('aes256-sha256-ecp384').pfsGroup, 20);
  assert.equal(one('aes128gcm16-esn').esn, true);
  assert.equal(one('aes128gcm16-noesn').esn, false);
  assert.equal(espProposalName(one('aes128gcm16-modp2048-esn')), 'aes128gcm16-modp2048-esn');
  assert.equal(espProposalName(one('aes-sha1')), 'aes128-sha1');
});

test('several keywords of a kind give every combination in the order written; AEAD takes no integrity', () => {
  const r = parseEspProposal('aes128gcm16-aes256-sha256-sha1-modp2048-ecp256');
  assert.ok(r.ok);
  assert.deepEqual(
    r.value.map(espProposalName),
    ['aes128gcm16-modp2048', 'aes128gcm16-ecp256', 'aes256-sha256-modp2048', 'aes256-sha256-ecp256', 'aes256-sha1-modp2048', 'aes256-sha1-ecp256'],
  );
  const e = parseEspProposal('aes128gcm16-esn-noesn');
  assert.ok(e.ok);
  assert.deepEqual(e.value.map((p) => p.esn), [true, false]);
});

test('null encryption only with allowNull, weak algorithms only with allowWeak', () => {
  assert.match(error('null-sha1'), /null encryption.*allowNull/);
  assert.equal(one('null-sha1', { allowNull: true }).encryption.transformId, E.ESP_NULL);
  assert.match(error('aes128-md5'), /weak algorithm\(s\) md5; set allowWeak/);
  assert.match(error('aes128gcm16-modp1024'), /weak algorithm\(s\) modp1024/);
  assert.match(error('des-sha1'), /weak algorithm\(s\) des/);
  assert.equal(one('aes128-md5', { allowWeak: true }).integrity?.authAlgorithm, A.HMAC_MD5);
  // Single DES loads nowhere: the ESP data path has no DES, so the config says so instead of Quick Mode failing later.
  assert.equal(error('des-sha1', { allowWeak: true }), "ESP proposal 'des-sha1': des-sha1 is not supported by the ESP data path (use aes, aes*gcm16, chacha20poly1305 or 3des)");
  assert.match(error('null-md5', { allowWeak: true, allowNull: true }), /null-md5 is not supported by the ESP data path/);
  assert.equal(one('3des-md5', { allowWeak: true }).integrity?.authAlgorithm, A.HMAC_MD5);
  assert.match(error('3des-md5'), /weak algorithm\(s\) md5; set allowWeak/);
});

test('a proposal that parses is one the ESP data path runs (the config never loads what Quick Mode then refuses)', () => {
  const ciphers = ['aes', 'aes128', 'aes192', 'aes256', 'aes128gcm16', 'aes256gcm128', '3des', 'des', 'chacha20poly1305', 'null'];
  const integs = ['', 'md5', 'sha1', 'sha256', 'sha384', 'sha512'];
  let loaded = 0;
  for (const c of ciphers)
    for (const i of integs) {
      const r = parseEspProposal(i ? `${c}-${i}` : c, { allowWeak: true, allowNull: true });
      if (!r.ok) continue;
      loaded++;
      for (const p of r.value) assert.ok(isEspAlgorithm(p.algorithm), `${c}-${i} loads as ${p.algorithm}, which the data path lacks`);
    }
  assert.equal(loaded, 4 * 5 + 5 + 2 + 1 + 4); // aes* and 3des with each integrity, two GCMs, ChaCha20, null with SHA-1/2
});

test('bad proposals are refused with one clear line', () => {
  assert.equal(error('aes129-sha1'), "unknown keyword 'aes129' in ESP proposal 'aes129-sha1'");
  assert.equal(error('aes128gcm16-sha256'), "ESP proposal 'aes128gcm16-sha256': aes128gcm16 is an AEAD cipher with its own integrity check; remove 'sha256'");
  assert.equal(error('aes128'), "ESP proposal 'aes128': aes128 needs an integrity algorithm (e.g. aes128-sha256)");
  assert.match(error('sha256-modp2048'), /names no encryption algorithm/);
  assert.match(error(''), /unknown keyword ''/);
  // Names of Object.prototype members are not keywords.
  assert.equal(error('constructor-sha1'), "unknown keyword 'constructor' in ESP proposal 'constructor-sha1'");
  assert.equal(error('aes128-__proto__'), "unknown keyword '__proto__' in ESP proposal 'aes128-__proto__'");
  for (const t of ['aes128gcm16-sha1', 'x', 'null-sha1', 'aes-md5']) assert.ok(!error(t).includes('\n'));
});
