// Session keys in the files Wireshark reads (Preferences > Protocols > ISAKMP / ESP, or the files of the
// same names in a profile folder): `ikev1_decryption_table` (initiator cookie, encryption key) and `esp_sa`
// (one row per direction). For debugging only: anyone with these files reads the traffic.
import type { ChildSa, Endpoint, IsakmpSa } from '../ike/index.js';
import { ikev1KeylogLine } from '../ike/index.js';

export type KeylogTable = 'ikev1_decryption_table' | 'esp_sa';

export interface KeylogLine {
  table: KeylogTable;
  line: string;
}

export function isakmpKeylog(sa: IsakmpSa): KeylogLine {
  return { table: 'ikev1_decryption_table', line: ikev1KeylogLine(sa) };
}

const INTEGRITY: Record<string, string> = {
  md5: 'HMAC-MD5-96 [RFC2403]',
  sha1: 'HMAC-SHA-1-96 [RFC2404]',
  sha256: 'HMAC-SHA-256-128 [RFC4868]',
  sha256_96: 'HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]',
  sha384: 'HMAC-SHA-384-192 [RFC4868]',
  sha512: 'HMAC-SHA-512-256 [RFC4868]',
};

/** Wireshark's names for an ESP keyword: [encryption, authentication]. */
export function wiresharkEspAlgorithms(algorithm: string): [string, string] {
  if (/^aes\d+gcm16$/.test(algorithm)) return ['AES-GCM with 16 octet ICV [RFC4106]', 'NULL'];
  if (algorithm === 'chacha20poly1305') return ['ChaCha20 with Poly1305 [RFC7634]', 'NULL'];
  const [enc, integ] = algorithm.split('-') as [string, string];
  const e = enc === 'null' ? 'NULL' : enc.startsWith('aes') ? 'AES-CBC [RFC3602]' : enc === '3des' ? 'TripleDES-CBC [RFC2451]' : 'NULL';
  return [e, INTEGRITY[integ] ?? 'NULL'];
}

/** The two esp_sa rows of a child SA (outbound: us -> peer with spiOut; inbound: peer -> us with spiIn). */
export function childKeylog(child: ChildSa, local: Endpoint, remote: Endpoint): KeylogLine[] {
  const [enc, auth] = wiresharkEspAlgorithms(child.algorithm);
  const family = local.address.includes(':') ? 'IPv6' : 'IPv4';
  const row = (src: string, dst: string, spi: Buffer, k: ChildSa['inbound']) => {
    // AEAD keys are given to Wireshark with their salt appended (RFC 4106 / 7634 KEYMAT layout).
    const key = Buffer.concat([k.encryptionKey, k.salt]);
    const fields = [family, src, dst, `0x${spi.toString('hex')}`, enc, key.length ? `0x${key.toString('hex')}` : '', auth, k.integrityKey.length ? `0x${k.integrityKey.toString('hex')}` : ''];
    return { table: 'esp_sa' as const, line: fields.map((f) => `"${f}"`).join(',') };
  };
  return [row(local.address, remote.address, child.spiOut, child.outbound), row(remote.address, local.address, child.spiIn, child.inbound)];
}
