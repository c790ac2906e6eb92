// The SIG payload of phase 1 (RFC 2409 5.1): a signature over HASH_I / HASH_R itself, with no further hashing.
//   RSA (method 3, and the XAUTH / hybrid RSA methods): PKCS#1 v1.5 type 1 padding of the bare hash, no
//     DigestInfo (strongSwan's SIGN_RSA_EMSA_PKCS1_NULL, racoon and Cisco alike): node:crypto's privateEncrypt.
//   ECDSA (RFC 4754, methods 9/10/11 for P-256/P-384/P-521): r | s over the hash as the digest, through the
//     addon (native/sig.cc), since node:crypto hashes whatever it signs with an EC key.
// Which methods sign and which use a pre-shared key lives here too, so every part asks one place.
import { constants, privateEncrypt, publicDecrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { HashName } from '../crypto/index.js';
import { AuthMethod } from '../isakmp/index.js';
import { nativeAddon } from '../native.js';
import { IkeError } from './errors.js';

/** Methods whose SKEYID is prf(psk, Ni_b | Nr_b). */
export function usesPsk(method: number): boolean {
  return method === AuthMethod.PRE_SHARED_KEY || method === AuthMethod.XAUTH_INIT_PSK || method === AuthMethod.XAUTH_RESP_PSK;
}

/** Methods where both sides sign (SKEYID = prf(Ni_b | Nr_b, g^xy), SIG payloads). */
export function usesSignatures(method: number): boolean {
  return (
    method === AuthMethod.RSA_SIG ||
    method === AuthMethod.ECDSA_256 ||
    method === AuthMethod.ECDSA_384 ||
    method === AuthMethod.ECDSA_521 ||
    method === AuthMethod.XAUTH_INIT_RSA ||
    method === AuthMethod.XAUTH_RESP_RSA
  );
}

/**
 * The prf of HASH_I / HASH_R: the negotiated hash, except that RFC 4754 section 8 binds the ECDSA methods to
 * HMAC-SHA-256 / -384 / -512 (what strongSwan's keymat_v1 does too), keyed with SKEYID as ever.
 */
export function authHashAlgorithm(method: number, negotiated: HashName): HashName {
  if (method === AuthMethod.ECDSA_256) return 'sha256';
  if (method === AuthMethod.ECDSA_384) return 'sha384';
  if (method === AuthMethod.ECDSA_521) return 'sha512';
  return negotiated;
}

/**
 * Hybrid authentication (draft-ietf-ipsec-isakmp-hybrid-auth-05): the responder (the gateway) signs, the
 * initiator sends a plain HASH_I and proves itself with XAUTH afterwards. SKEYID is the signature one.
 */
export function isHybrid(method: number): boolean {
  return method === AuthMethod.HYBRID_INIT_RSA || method === AuthMethod.HYBRID_RESP_RSA;
}

/** Does this side of the exchange sign (true), or send HASH (false)? */
export function weSign(method: number, initiator: boolean): boolean {
  return usesSignatures(method) || (isHybrid(method) && !initiator);
}

const CURVE_METHOD: Record<string, number> = { prime256v1: AuthMethod.ECDSA_256, secp384r1: AuthMethod.ECDSA_384, secp521r1: AuthMethod.ECDSA_521 };

/** The phase 1 method a key signs with: RSA_SIG, or the ECDSA method of its curve. */
export function signatureMethodFor(key: KeyObject): number {
  if (key.asymmetricKeyType === 'rsa') return AuthMethod.RSA_SIG;
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const m = curve === undefined ? undefined : CURVE_METHOD[curve];
  if (m === undefined) throw new IkeError('POLICY', `a ${key.asymmetricKeyType} key${curve ? ` on ${curve}` : ''} cannot sign in IKEv1 (RSA, or ECDSA on P-256, P-384 or P-521)`);
  return m;
}

/** Does this key suit the negotiated method? (ECDSA methods name the curve; RSA methods need RSA.) */
export function keyFitsMethod(key: KeyObject, method: number): boolean {
  if (key.asymmetricKeyType === 'rsa') return method === AuthMethod.RSA_SIG || method === AuthMethod.XAUTH_INIT_RSA || method === AuthMethod.XAUTH_RESP_RSA || method === AuthMethod.HYBRID_INIT_RSA || method === AuthMethod.HYBRID_RESP_RSA;
  try {
    return signatureMethodFor(key) === method;
  } catch {
    return false;
  }
}

const pkcs8 = new WeakMap<KeyObject, Buffer>();
const spki = new WeakMap<KeyObject, Buffer>();
function der(map: WeakMap<KeyObject, Buffer>, key: KeyObject, type: 'pkcs8' | 'spki'): Buffer {
  let d = map.get(key);
  if (d === undefined) map.set(key, (d = key.export({ type, format: 'der' }) as Buffer));
  return d;
}

function ecdsa() {
  const addon = nativeAddon();
  if (addon === null) throw new IkeError('INTERNAL', 'ECDSA signatures over a phase 1 hash need the native addon (node:crypto cannot sign a digest with an EC key)');
  return addon;
}

/** Our SIG payload's data: `hash` (HASH_I or HASH_R) signed with our private key. */
export function signHash(key: KeyObject, hash: Buffer): Buffer {
  if (key.asymmetricKeyType === 'rsa') return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, hash);
  return ecdsa().ecdsaSignDigest(der(pkcs8, key, 'pkcs8'), hash);
}

/** Does `signature` sign `hash` under the peer's public key? (The recovered RSA hash is compared in constant time.) */
export function verifyHash(key: KeyObject, hash: Buffer, signature: Buffer): boolean {
  if (key.asymmetricKeyType === 'rsa') {
    let recovered: Buffer;
    try {
      recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
    } catch {
      return false;
    }
    return recovered.length === hash.length && timingSafeEqual(recovered, hash);
  }
  if (key.asymmetricKeyType !== 'ec') return false;
  return ecdsa().ecdsaVerifyDigest(der(spki, key, 'spki'), hash, signature);
}
