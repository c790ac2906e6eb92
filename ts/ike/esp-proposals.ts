// Phase 2 (ESP) proposals: strongSwan's ESP keywords ("aes128gcm16", "aes256-sha256-modp2048", "esn") ->
// the IKEv1 numbers Quick Mode puts in its SA payload (RFC 2407 4.4.4 transform IDs, 4.5 auth algorithms).
import { dhGroupInfo, SUPPORTED_DH_GROUPS, type DhGroupId } from '../crypto/index.js';
import { isEspAlgorithm } from '../esp/index.js';
import { AuthAlgorithm, EspTransformId } from '../isakmp/index.js';

export interface EspProposal {
  /** Canonical strongSwan name of the ciphers, without group or ESN: 'aes128gcm16', 'aes128-sha1', 'chacha20poly1305'. */
  algorithm: string;
  /** ESP transform ID (EspTransformId) and the Key Length attribute, present only for variable-length ciphers (AES). */
  encryption: { transformId: number; keyBits?: number };
  /** Authentication Algorithm attribute (AuthAlgorithm); null for AEAD ciphers, which carry their own ICV. */
  integrity: { authAlgorithm: number } | null;
  /** DH group of the Quick Mode KE payload (PFS), when the proposal names one. */
  pfsGroup?: DhGroupId;
  /** Extended Sequence Numbers (RFC 4304). */
  esn: boolean;
}

export interface EspProposalOptions {
  /** DES, HMAC-MD5 and MODP 768/1024 PFS groups are refused unless this is set. */
  allowWeak?: boolean;
  /** ESP_NULL (no encryption, RFC 2410) is refused unless this is set: it is for tests and debugging only. */
  allowNull?: boolean;
}

interface Cipher {
  name: string;
  transformId: number;
  keyBits?: number;
  aead: boolean;
  weak?: boolean;
  isNull?: boolean;
}
const aesCbc = (bits: number): Cipher => ({ name: `aes${bits}`, transformId: EspTransformId.ESP_AES_CBC, keyBits: bits, aead: false });
// strongSwan writes the GCM ICV size in bytes (gcm16) or bits (gcm128); both mean the 16-byte ICV (RFC 4106).
const aesGcm16 = (bits: number): Cipher => ({ name: `aes${bits}gcm16`, transformId: EspTransformId.ESP_AES_GCM_16, keyBits: bits, aead: true });
const CIPHERS: Record<string, Cipher> = {
  aes: aesCbc(128),
  aes128: aesCbc(128),
  aes192: aesCbc(192),
  aes256: aesCbc(256),
  aes128gcm16: aesGcm16(128),
  aes192gcm16: aesGcm16(192),
  aes256gcm16: aesGcm16(256),
  aes128gcm128: aesGcm16(128),
  aes192gcm128: aesGcm16(192),
  aes256gcm128: aesGcm16(256),
  '3des': { name: '3des', transformId: EspTransformId.ESP_3DES, aead: false },
  des: { name: 'des', transformId: EspTransformId.ESP_DES, aead: false, weak: true },
  // RFC 7634: fixed 256-bit key, so no Key Length attribute.
  chacha20poly1305: { name: 'chacha20poly1305', transformId: EspTransformId.ESP_CHACHA20_POLY1305, aead: true },
  null: { name: 'null', transformId: EspTransformId.ESP_NULL, aead: false, isNull: true },
};

interface Integrity {
  name: string;
  authAlgorithm: number;
  weak?: boolean;
}
const INTEGRITY: Record<string, Integrity> = {
  md5: { name: 'md5', authAlgorithm: AuthAlgorithm.HMAC_MD5, weak: true },
  sha: { name: 'sha1', authAlgorithm: AuthAlgorithm.HMAC_SHA },
  sha1: { name: 'sha1', authAlgorithm: AuthAlgorithm.HMAC_SHA },
  sha256: { name: 'sha256', authAlgorithm: AuthAlgorithm.HMAC_SHA2_256 },
  sha2_256: { name: 'sha256', authAlgorithm: AuthAlgorithm.HMAC_SHA2_256 },
  sha384: { name: 'sha384', authAlgorithm: AuthAlgorithm.HMAC_SHA2_384 },
  sha2_384: { name: 'sha384', authAlgorithm: AuthAlgorithm.HMAC_SHA2_384 },
  sha512: { name: 'sha512', authAlgorithm: AuthAlgorithm.HMAC_SHA2_512 },
  sha2_512: { name: 'sha512', authAlgorithm: AuthAlgorithm.HMAC_SHA2_512 },
};

const GROUPS: Record<string, DhGroupId> = Object.fromEntries(SUPPORTED_DH_GROUPS.map((id) => [dhGroupInfo(id)!.keyword, id]));

/**
 * Parses one strongSwan ESP proposal string. Keywords may come in any order; several of one kind give every
 * combination in the order written (as strongSwan does), so "aes128gcm16-aes128-sha256-modp2048" yields
 * aes128gcm16-modp2048 and aes128-sha256-modp2048. AEAD ciphers (GCM, ChaCha20-Poly1305) take no integrity
 * algorithm; the others need one.
 */
export function parseEspProposal(text: string, options: EspProposalOptions = {}): { ok: true; value: EspProposal[] } | { ok: false; error: string } {
  const ciphers: Cipher[] = [];
  const integs: Integrity[] = [];
  const groups: DhGroupId[] = [];
  const esns: boolean[] = [];
  for (const t of text.trim().toLowerCase().split('-')) {
    // Object.hasOwn, not `in`: 'constructor' or '__proto__' must not find Object.prototype's members.
    if (Object.hasOwn(CIPHERS, t)) ciphers.push(CIPHERS[t]!);
    else if (Object.hasOwn(INTEGRITY, t)) integs.push(INTEGRITY[t]!);
    else if (Object.hasOwn(GROUPS, t)) groups.push(GROUPS[t]!);
    else if (t === 'esn' || t === 'noesn') esns.push(t === 'esn');
    else return { ok: false, error: `unknown keyword '${t}' in ESP proposal '${text}'` };
  }
  if (ciphers.length === 0) return { ok: false, error: `ESP proposal '${text}' names no encryption algorithm (e.g. aes128gcm16 or aes128)` };
  const aead = ciphers.filter((c) => c.aead);
  const plain = ciphers.filter((c) => !c.aead);
  if (plain.length > 0 && integs.length === 0) {
    return { ok: false, error: `ESP proposal '${text}': ${plain[0]!.name} needs an integrity algorithm (e.g. ${plain[0]!.name}-sha256)` };
  }
  if (plain.length === 0 && integs.length > 0) {
    return { ok: false, error: `ESP proposal '${text}': ${aead[0]!.name} is an AEAD cipher with its own integrity check; remove '${integs[0]!.name}'` };
  }
  if (!options.allowNull && ciphers.some((c) => c.isNull)) {
    return { ok: false, error: `ESP proposal '${text}' uses null encryption (traffic in clear); set allowNull for tests only` };
  }
  if (!options.allowWeak) {
    const weak = [
      ...ciphers.filter((c) => c.weak).map((c) => c.name),
      ...integs.filter((i) => i.weak).map((i) => i.name),
      ...groups.filter((g) => dhGroupInfo(g)!.weak).map((g) => dhGroupInfo(g)!.keyword),
    ];
    if (weak.length > 0) return { ok: false, error: `ESP proposal '${text}' uses weak algorithm(s) ${[...new Set(weak)].join(', ')}; set allowWeak to use them` };
  }
  const suites: Array<{ c: Cipher; i: Integrity | null }> = [];
  for (const c of ciphers) {
    if (c.aead) suites.push({ c, i: null });
    else for (const i of integs) suites.push({ c, i });
  }
  // A proposal that loads must negotiate: what the ESP data path cannot run (single DES, NULL with MD5) is refused
  // here, not by Quick Mode at the first connection.
  const missing = suites.map(({ c, i }) => (i ? `${c.name}-${i.name}` : c.name)).filter((a) => !isEspAlgorithm(a));
  if (missing.length > 0) {
    return { ok: false, error: `ESP proposal '${text}': ${[...new Set(missing)].join(', ')} is not supported by the ESP data path (use aes, aes*gcm16, chacha20poly1305 or 3des)` };
  }
  const out: EspProposal[] = [];
  for (const { c, i } of suites)
    for (const g of groups.length ? groups : [undefined])
      for (const esn of esns.length ? esns : [false]) {
        const p: EspProposal = {
          algorithm: i ? `${c.name}-${i.name}` : c.name,
          encryption: c.keyBits === undefined ? { transformId: c.transformId } : { transformId: c.transformId, keyBits: c.keyBits },
          integrity: i ? { authAlgorithm: i.authAlgorithm } : null,
          esn,
        };
        if (g !== undefined) p.pfsGroup = g;
        out.push(p);
      }
  return { ok: true, value: out };
}

/**
 * The proposal with HMAC-SHA-256 cut to 96 bits in its child SAs (strongSwan's `sha256_96`, Libreswan's
 * `sha2-truncbug`), for peers that truncate it so: Android 6, Linux kernels before 2.6.33. The wire is the same
 * (IKEv1 says only "HMAC-SHA2-256", never the ICV length), so both sides must be set alike. Proposals with
 * another integrity algorithm are returned as they are.
 */
export function withSha256Truncated96(p: EspProposal): EspProposal {
  if (p.integrity?.authAlgorithm !== AuthAlgorithm.HMAC_SHA2_256 || p.algorithm.endsWith('_96')) return p;
  return { ...p, algorithm: `${p.algorithm}_96` };
}

/** strongSwan-style name for logs: 'aes128gcm16-modp2048-esn'. */
export function espProposalName(p: EspProposal): string {
  let name = p.algorithm;
  if (p.pfsGroup !== undefined) name += `-${dhGroupInfo(p.pfsGroup)!.keyword}`;
  return p.esn ? `${name}-esn` : name;
}
