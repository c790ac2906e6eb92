// X.509 for phase 1 signature authentication: certificates and CRLs as the exchanges use them, the chain
// from the peer's certificate to one of our trust anchors (signature, validity, basic constraints, key usage,
// revocation by CRL), and the peer's identity matched against its certificate.
//
// node:crypto's X509Certificate does the cryptography (signature checks, issuer match, public keys); the ASN.1
// structures it does not expose (the DER of a Name, basicConstraints' path length, keyUsage bits,
// subjectAltName entries, CRLs) come from @peculiar/asn1-x509 (see README: dependencies). Nothing here reads a
// file or the clock: the configuration loads the PEM files, the exchange passes `now`.
import { X509Certificate, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  CertificateList,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectAltName,
} from '@peculiar/asn1-x509';
import { NotifyType, idToString, parseIpv4, parseIpv6, type Identity } from '../isakmp/index.js';
import { IkeError } from './errors.js';

/** A certificate with the fields the checks read, parsed once. */
export interface ParsedCert {
  readonly x509: X509Certificate;
  readonly der: Buffer;
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  /** Subject and issuer as "C=CH, O=Example, CN=gw" (RDNs in DER order, as strongSwan prints them). */
  readonly subject: string;
  readonly issuer: string;
  /** basicConstraints: undefined when the extension is absent. */
  readonly ca: boolean | undefined;
  readonly pathLen: number | undefined;
  /** keyUsage bits (KeyUsageFlags), undefined when the extension is absent (every use allowed). */
  readonly keyUsage: number | undefined;
  readonly altNames: readonly { kind: 'dns' | 'email' | 'ip'; value: string }[];
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** A CRL, parsed; its signature is checked against the issuer found while a chain is verified. */
export interface ParsedCrl {
  readonly source: string;
  readonly issuerDer: Buffer;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
  /** Serial numbers (upper-case hex, no leading zeros) of the revoked certificates. */
  readonly revoked: ReadonlySet<string>;
}

/** What a connection trusts: anchors (CA certificates) and CRLs. */
export interface TrustStore {
  readonly anchors: readonly ParsedCert[];
  readonly crls: readonly ParsedCrl[];
}

const certError = (message: string, notify: number = NotifyType.INVALID_CERTIFICATE) => new IkeError('CERTIFICATE', message, notify);

const SHORT_NAMES: Record<string, string> = {
  '2.5.4.6': 'C',
  '2.5.4.8': 'ST',
  '2.5.4.7': 'L',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'E',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};
const OIDS = new Map(Object.entries(SHORT_NAMES).map(([oid, name]) => [name.toUpperCase(), oid]));
OIDS.set('EMAIL', '1.2.840.113549.1.9.1');

function valueText(v: AttributeValue): string {
  return v.utf8String ?? v.printableString ?? v.ia5String ?? v.teletexString ?? v.bmpString ?? v.universalString ?? v.toString();
}

function nameText(n: Name): string {
  return n.map((rdn) => rdn.map((a) => `${SHORT_NAMES[a.type] ?? a.type}=${valueText(a.value)}`).join(' + ')).join(', ');
}

/** The text form of a DER Name ("C=CH, O=Example, CN=gw"), or null when it does not parse. */
export function dnToString(der: Uint8Array): string | null {
  try {
    return nameText(AsnConvert.parse(der, Name));
  } catch {
    return null;
  }
}

/**
 * "C=CH, O=Example, CN=gw" -> the DER of that Name, RDNs in the order written (strongSwan's order). A ','
 * inside a value is written '\,'. Country codes are PrintableString, the rest UTF8String.
 */
export function parseDn(text: string): { ok: true; value: Buffer } | { ok: false; error: string } {
  const parts = text.split(/(?<!\\),/).map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) return { ok: false, error: `'${text}' is not a distinguished name (e.g. "C=CH, O=Example, CN=gw")` };
  const rdns: RelativeDistinguishedName[] = [];
  for (const part of parts) {
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq).trim().toUpperCase() : '';
    const oid = OIDS.get(key) ?? (/^\d+(\.\d+)+$/.test(key) ? key : undefined);
    if (oid === undefined) return { ok: false, error: `'${part}' in distinguished name '${text}' is not KEY=value with a known key (C, ST, L, O, OU, CN, E, DC, ...)` };
    const value = part.slice(eq + 1).trim().replace(/\\,/g, ',');
    const v = oid === '2.5.4.6' ? new AttributeValue({ printableString: value }) : new AttributeValue({ utf8String: value });
    rdns.push(new RelativeDistinguishedName([new AttributeTypeAndValue({ type: oid, value: v })]));
  }
  return { ok: true, value: Buffer.from(AsnConvert.serialize(new Name(rdns))) };
}

/** Two DER names are the same name: equal bytes, or the same attributes with values equal ignoring case. */
export function sameDn(a: Uint8Array, b: Uint8Array): boolean {
  if (Buffer.compare(a, b) === 0) return true;
  const x = dnToString(a);
  const y = dnToString(b);
  return x !== null && y !== null && x.toLowerCase() === y.toLowerCase();
}

/**
 * The DER of a part of a parsed certificate or CRL, encoded again. The schema parser takes a value of the wrong
 * type (a time where a name's string belongs) that the encoder then refuses: that is a bad encoding from the peer
 * or the file, a CERTIFICATE error like a parse failure, not an exception of the library's.
 */
function encodedAgain(part: object, what: string): Buffer {
  try {
    return Buffer.from(AsnConvert.serialize(part));
  } catch (e) {
    throw certError(`${what} does not encode as DER (${(e as Error).message})`, NotifyType.INVALID_CERT_ENCODING);
  }
}

/** Parses a DER certificate; a CERTIFICATE error (INVALID_CERT_ENCODING) says why it is not one. */
export function parseCertificate(der: Uint8Array, what: string): ParsedCert {
  let x509: X509Certificate;
  let asn: Certificate;
  try {
    x509 = new X509Certificate(der);
    asn = AsnConvert.parse(der, Certificate);
  } catch (e) {
    throw certError(`${what} is not an X.509 certificate (${(e as Error).message})`, NotifyType.INVALID_CERT_ENCODING);
  }
  const tbs = asn.tbsCertificate;
  let ca: boolean | undefined;
  let pathLen: number | undefined;
  let keyUsage: number | undefined;
  const altNames: { kind: 'dns' | 'email' | 'ip'; value: string }[] = [];
  try {
    for (const ext of tbs.extensions ?? []) {
      if (ext.extnID === id_ce_basicConstraints) {
        const bc = AsnConvert.parse(ext.extnValue, BasicConstraints);
        ca = bc.cA;
        pathLen = bc.pathLenConstraint;
      } else if (ext.extnID === id_ce_keyUsage) {
        keyUsage = AsnConvert.parse(ext.extnValue, KeyUsage).toNumber();
      } else if (ext.extnID === id_ce_subjectAltName) {
        for (const g of AsnConvert.parse(ext.extnValue, SubjectAlternativeName)) {
          if (g.dNSName !== undefined) altNames.push({ kind: 'dns', value: g.dNSName });
          else if (g.rfc822Name !== undefined) altNames.push({ kind: 'email', value: g.rfc822Name });
          else if (g.iPAddress !== undefined) altNames.push({ kind: 'ip', value: g.iPAddress });
        }
      }
    }
  } catch (e) {
    throw certError(`${what}: an extension does not parse (${(e as Error).message})`, NotifyType.INVALID_CERT_ENCODING);
  }
  return {
    x509,
    der: Buffer.from(der),
    subjectDer: encodedAgain(tbs.subject, `${what}'s subject`),
    issuerDer: encodedAgain(tbs.issuer, `${what}'s issuer`),
    subject: nameText(tbs.subject),
    issuer: nameText(tbs.issuer),
    ca,
    pathLen,
    keyUsage,
    altNames,
    serial: normalSerial(x509.serialNumber),
    notBefore: Date.parse(x509.validFrom),
    notAfter: Date.parse(x509.validTo),
  };
}

function normalSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

/** Parses a DER CRL (its signature is checked when it is used, against the issuer in the chain). */
export function parseCrl(der: Uint8Array, source: string): ParsedCrl {
  let crl: CertificateList;
  try {
    crl = AsnConvert.parse(der, CertificateList);
  } catch (e) {
    throw certError(`${source} is not a CRL (${(e as Error).message})`, NotifyType.INVALID_CERT_ENCODING);
  }
  const revoked = new Set<string>();
  for (const r of crl.tbsCertList.revokedCertificates ?? []) revoked.add(normalSerial(Buffer.from(r.userCertificate).toString('hex')));
  return {
    source,
    issuerDer: encodedAgain(crl.tbsCertList.issuer, `${source}'s issuer`),
    tbs: encodedAgain(crl.tbsCertList, source),
    signatureAlgorithm: crl.signatureAlgorithm.algorithm,
    signature: Buffer.from(crl.signature),
    revoked,
  };
}

const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/** Has this CRL been signed by `issuer`? (cached: a CRL is checked once per issuer certificate) */
const crlChecked = new WeakMap<ParsedCrl, WeakMap<X509Certificate, boolean>>();
function crlSignedBy(crl: ParsedCrl, issuer: ParsedCert): boolean {
  let byIssuer = crlChecked.get(crl);
  if (byIssuer === undefined) crlChecked.set(crl, (byIssuer = new WeakMap()));
  let ok = byIssuer.get(issuer.x509);
  if (ok === undefined) {
    const hash = SIGNATURE_HASH[crl.signatureAlgorithm];
    try {
      ok = hash !== undefined && cryptoVerify(hash, crl.tbs, issuer.x509.publicKey, crl.signature);
    } catch {
      ok = false;
    }
    byIssuer.set(issuer.x509, ok);
  }
  return ok;
}

const MAX_CHAIN = 8;

function checkValidity(c: ParsedCert, now: number, role: string): void {
  if (now < c.notBefore) throw certError(`${role} '${c.subject}' is not valid before ${new Date(c.notBefore).toISOString()}`);
  if (now > c.notAfter) throw certError(`${role} '${c.subject}' expired on ${new Date(c.notAfter).toISOString()}`);
}

function checkRevocation(c: ParsedCert, issuer: ParsedCert, trust: TrustStore, role: string): void {
  for (const crl of trust.crls) {
    if (!sameDn(crl.issuerDer, c.issuerDer) || !crl.revoked.has(c.serial)) continue;
    if (crlSignedBy(crl, issuer)) throw certError(`${role} '${c.subject}' (serial ${c.serial}) is revoked by ${crl.source}`);
  }
}

/**
 * The peer's certificates with its own first. strongSwan, Libreswan and racoon send it first, but RFC 2408 fixes
 * no order (vpnc reads the last as the sender's): the one certificate that issued none of the others goes first;
 * with none or several such (unrelated extras) the order stays as sent. verifyChain then checks it all.
 */
export function endEntityFirst(certs: readonly ParsedCert[]): ParsedCert[] {
  if (certs.length < 2) return [...certs];
  const leaves = certs.filter((c) => !certs.some((o) => o !== c && sameDn(c.subjectDer, o.issuerDer)));
  const leaf = leaves.length === 1 ? leaves[0]! : certs[0]!;
  return [leaf, ...certs.filter((c) => c !== leaf)];
}

/** Is `issuer` the certificate that signed `c`? Name, key identifiers (checkIssued) and the signature itself. */
function issued(issuer: ParsedCert, c: ParsedCert): boolean {
  if (!sameDn(issuer.subjectDer, c.issuerDer) || !c.x509.checkIssued(issuer.x509)) return false;
  try {
    return c.x509.verify(issuer.x509.publicKey);
  } catch {
    return false;
  }
}

/**
 * Verifies the chain from the peer's certificate `ee` through the certificates it sent (`received`) to one of
 * our anchors. Throws a CERTIFICATE error naming the certificate and the check that failed; returns the path
 * (end entity first, anchor last).
 */
export function verifyChain(ee: ParsedCert, received: readonly ParsedCert[], trust: TrustStore, now: number): ParsedCert[] {
  checkValidity(ee, now, 'peer certificate');
  if (ee.keyUsage !== undefined && (ee.keyUsage & (KeyUsageFlags.digitalSignature | KeyUsageFlags.nonRepudiation)) === 0) {
    throw certError(`peer certificate '${ee.subject}' has keyUsage without digitalSignature or nonRepudiation (RFC 4945 5.1.3.2)`);
  }
  const path = [ee];
  let current = ee;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const anchor = trust.anchors.find((a) => issued(a, current));
    const issuer = anchor ?? received.find((r) => r !== current && !path.includes(r) && issued(r, current));
    if (issuer === undefined) {
      throw certError(`peer certificate chain ends at '${current.subject}': its issuer '${current.issuer}' is not a trusted CA nor a certificate the peer sent`, NotifyType.INVALID_CERT_AUTHORITY);
    }
    const role = anchor ? 'CA certificate' : 'intermediate CA certificate';
    checkValidity(issuer, now, role);
    if (issuer.ca !== true) throw certError(`${role} '${issuer.subject}' is not a CA (basicConstraints cA is not set)`);
    if (issuer.keyUsage !== undefined && (issuer.keyUsage & KeyUsageFlags.keyCertSign) === 0) throw certError(`${role} '${issuer.subject}' may not sign certificates (keyUsage lacks keyCertSign)`);
    const below = path.length - 1; // CA certificates between the end entity and this issuer
    if (issuer.pathLen !== undefined && below > issuer.pathLen) throw certError(`${role} '${issuer.subject}' allows ${issuer.pathLen} CA certificate(s) below it, the chain has ${below}`);
    checkRevocation(current, issuer, trust, current === ee ? 'peer certificate' : 'intermediate CA certificate');
    path.push(issuer);
    if (anchor) return path;
    current = issuer;
  }
  throw certError(`peer certificate chain is longer than ${MAX_CHAIN} certificates`);
}

/**
 * Does the certificate prove this identity? ID_DER_ASN1_DN: its subject; FQDN, USER_FQDN, IPV4/IPV6: a
 * subjectAltName entry (dNSName, rfc822Name, iPAddress). Returns null when it does, else what did not match.
 */
export function certificateMismatch(c: ParsedCert, id: Identity): string | null {
  const alt = (kind: 'dns' | 'email' | 'ip', eq: (v: string) => boolean, what: string) =>
    c.altNames.some((a) => a.kind === kind && eq(a.value)) ? null : `certificate '${c.subject}' has no subjectAltName ${what} '${idToString(id)}' (it has ${c.altNames.map((a) => `${a.kind}:${a.value}`).join(', ') || 'none'})`;
  switch (id.kind) {
    case 'der-dn':
      return sameDn(id.data, c.subjectDer) ? null : `certificate subject '${c.subject}' is not the ID '${dnToString(id.data) ?? idToString(id)}'`;
    case 'fqdn':
      return alt('dns', (v) => v.toLowerCase() === id.value.toLowerCase(), 'dNSName');
    case 'user-fqdn':
      return alt('email', (v) => v.toLowerCase() === id.value.toLowerCase(), 'rfc822Name');
    case 'ipv4':
    case 'ipv6': {
      const want = id.kind === 'ipv4' ? parseIpv4(id.address) : parseIpv6(id.address);
      const bytes = (v: string) => (v.includes(':') ? parseIpv6(v) : parseIpv4(v));
      return alt('ip', (v) => want !== null && bytes(v)?.equals(want) === true, 'iPAddress');
    }
    default:
      return `an ID of kind ${id.kind} ('${idToString(id)}') cannot be matched against a certificate`;
  }
}

/** Our own certificate must match our private key: a misconfiguration caught at load, not at the peer. */
export function keyMatchesCertificate(c: ParsedCert, key: KeyObject): boolean {
  return c.x509.checkPrivateKey(key);
}

/** PEM text -> the DER of each block of the given label (CERTIFICATE, X509 CRL). */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}
