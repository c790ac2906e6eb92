// Phase 1 authentication by the negotiated method, for Main and Aggressive Mode alike:
//   pre-shared key: ID and HASH_I / HASH_R (phase1-core.ts: ourProof / verifyPeer);
//   signatures (RSA, ECDSA): ID, our certificate and the intermediates (CERT, X.509 signature encoding), and
//   SIG = the signature over HASH_I / HASH_R (RFC 2409 5.1); CERTREQ naming our trust anchors goes out with
//   the KE (Main Mode) or first (Aggressive Mode) messages, as strongSwan and racoon send it.
//   hybrid (HybridInitRSA): the gateway (responder) signs as above, its client sends ID and HASH_I and proves
//   itself with XAUTH afterwards (signatures.ts: weSign says which side does what).
// The peer's side: its certificate chain verified to our anchors (certificates.ts), the identity of its ID
// payload found in its certificate, the configured remote identity matched, then its signature checked.
import {
  CertEncoding,
  NotifyType,
  PayloadType,
  decodeIdPayload,
  encodeIdentity,
  encodePayloadBody,
  findPayload,
  findPayloads,
  idToString,
  type CrPayload,
  type IdPayload,
  type Identity,
  type Payload,
} from '../isakmp/index.js';
import { certificateMismatch, dnToString, endEntityFirst, parseCertificate, sameDn, verifyChain, type ParsedCert } from './certificates.js';
import { IkeError } from './errors.js';
import { authHash, ourIdPayload, ourProof, verifyPeer, type Keyed, type Phase1Policy } from './phase1-core.js';
import { isHybrid, keyFitsMethod, signHash, usesSignatures, verifyHash, weSign } from './signatures.js';

/** Does this connection (its first proposal: Aggressive Mode offers one method) authenticate with certificates? */
export function signsWith(policy: Phase1Policy, method = policy.proposals[0]?.authMethod ?? 0): boolean {
  return (usesSignatures(method) || isHybrid(method)) && policy.certs !== undefined;
}

/**
 * CERTREQ payloads naming each trust anchor (X.509 signature, the anchor's subject DN), sent by a side whose
 * peer signs; none without certificates (nor by a hybrid responder: its client has none).
 */
export function certRequests(policy: Phase1Policy, method: number, initiator: boolean): CrPayload[] {
  if (!signsWith(policy, method) || !weSign(method, !initiator)) return [];
  return policy.certs!.trust.anchors.map((a) => ({ type: PayloadType.CR, encoding: CertEncoding.X509_SIGNATURE, data: a.subjectDer }));
}

/** Our ID and its proof: [ID, HASH] with a pre-shared key, [ID, CERT..., SIG] with signatures. */
export function ourAuth(k: Keyed): Payload[] {
  if (!weSign(k.proposal.authMethod, k.initiator)) return ourProof(k); // a PSK, or a hybrid client's HASH_I
  const certs = k.policy.certs;
  if (certs?.cert === undefined || certs.key === undefined) throw new IkeError('POLICY', `connection '${k.policy.name}' has no certificate for signature authentication`);
  const id = ourIdPayload(k.policy);
  const hash = authHash(k, k.initiator, encodePayloadBody(id));
  const sent = [certs.cert, ...certs.chain].map((c): Payload => ({ type: PayloadType.CERT, encoding: CertEncoding.X509_SIGNATURE, data: c.der }));
  return [id, ...sent, { type: PayloadType.SIG, data: signHash(certs.key, hash) }];
}

/**
 * Verifies the peer's proof in `payloads` for the identity of `id` (Main Mode: in the same message; Aggressive
 * Mode responder: from message 1). Returns the authenticated identity; throws an IkeError with the notify to send.
 */
export function peerAuth(k: Keyed, payloads: readonly Payload[], id: IdPayload | undefined, where: string, now: number): Identity {
  // a PSK, or a hybrid gateway reading its client's HASH_I (the client proves itself with XAUTH next)
  if (!weSign(k.proposal.authMethod, !k.initiator)) return verifyPeer(k, id, findPayload(payloads, PayloadType.HASH)?.data, where);
  const trust = k.policy.certs?.trust;
  if (trust === undefined) throw new IkeError('POLICY', `connection '${k.policy.name}' has no trust anchors for signature authentication`);
  const sig = findPayload(payloads, PayloadType.SIG);
  if (id === undefined || sig === undefined) {
    throw new IkeError('AUTHENTICATION_FAILED', `${where} has no ${id === undefined ? 'ID' : 'SIG'} payload (signature authentication, connection '${k.policy.name}')`, NotifyType.PAYLOAD_MALFORMED);
  }
  const decoded = decodeIdPayload(id);
  if (!decoded.ok) throw new IkeError('AUTHENTICATION_FAILED', `peer identity: ${decoded.error.message}`, NotifyType.INVALID_ID_INFORMATION);
  const certs = peerCertificates(payloads, where);
  const ee = certs[0]!;
  verifyChain(ee, certs.slice(1), trust, now);
  checkIdentity(k, ee, decoded.value);
  const key = ee.x509.publicKey;
  if (!keyFitsMethod(key, k.proposal.authMethod)) {
    throw new IkeError('AUTHENTICATION_FAILED', `peer certificate '${ee.subject}' holds a ${describeKey(ee)} key, which cannot sign for the negotiated method ${k.proposal.authMethod}`, NotifyType.INVALID_CERTIFICATE);
  }
  const hash = authHash(k, !k.initiator, id.raw!.subarray(4));
  if (!verifyHash(key, hash, sig.data)) {
    throw new IkeError('AUTHENTICATION_FAILED', `signature of '${ee.subject}' from ${k.env.remote.address} does not verify over HASH_${k.initiator ? 'R' : 'I'} (connection '${k.policy.name}')`, NotifyType.INVALID_SIGNATURE);
  }
  return decoded.value;
}

/** The X.509 certificates of the CERT payloads, the end entity first (whatever order they came in). */
function peerCertificates(payloads: readonly Payload[], where: string): ParsedCert[] {
  const cert = findPayloads(payloads, PayloadType.CERT);
  if (cert.length === 0) {
    throw new IkeError('CERTIFICATE', `${where} carries no certificate (CERT payload) although we sent CERTREQ; we hold no certificate for the peer`, NotifyType.CERTIFICATE_UNAVAILABLE);
  }
  if (cert.length > 8) throw new IkeError('CERTIFICATE', `${where} carries ${cert.length} certificates (at most 8 are read)`, NotifyType.INVALID_CERTIFICATE);
  const x509 = cert.filter((c) => c.encoding === CertEncoding.X509_SIGNATURE);
  if (x509.length === 0) {
    throw new IkeError('CERTIFICATE', `${where}: certificate encoding ${cert[0]!.encoding} is not supported (X.509 signature, 4, is)`, NotifyType.CERT_TYPE_UNSUPPORTED);
  }
  return endEntityFirst(x509.map((c, i) => parseCertificate(c.data, `${where}: certificate ${i + 1}`)));
}

/** The ID the peer sent must be in its certificate, and be the identity the connection expects (if it names one). */
function checkIdentity(k: Keyed, ee: ParsedCert, id: Identity): void {
  const mismatch = certificateMismatch(ee, id);
  if (mismatch !== null) throw new IkeError('AUTHENTICATION_FAILED', `peer ${k.env.remote.address} sent ID '${showId(id)}' that its certificate does not hold: ${mismatch}`, NotifyType.INVALID_ID_INFORMATION);
  const want = k.policy.remoteId;
  if (want === undefined) return;
  const same = want.kind === 'der-dn' && id.kind === 'der-dn' ? sameDn(want.data, id.data) : sameEncoded(want, id);
  if (!same) {
    throw new IkeError(
      'AUTHENTICATION_FAILED',
      `peer ${k.env.remote.address} authenticated as '${showId(id)}' but connection '${k.policy.name}' expects '${showId(want)}'`,
      NotifyType.INVALID_ID_INFORMATION,
    );
  }
}

function sameEncoded(a: Identity, b: Identity): boolean {
  const x = encodeIdentity(a);
  const y = encodeIdentity(b);
  return x.idType === y.idType && x.data.equals(y.data);
}

/** An identity for messages and events: a DN as text ("C=CH, O=Example, CN=gw") rather than hex. */
export function showId(id: Identity): string {
  return id.kind === 'der-dn' ? (dnToString(id.data) ?? idToString(id)) : idToString(id);
}

function describeKey(c: ParsedCert): string {
  const k = c.x509.publicKey;
  return k.asymmetricKeyType === 'ec' ? `EC ${k.asymmetricKeyDetails?.namedCurve ?? ''}`.trim() : String(k.asymmetricKeyType);
}
