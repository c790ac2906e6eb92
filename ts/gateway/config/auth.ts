// `auth` with certificates: { "cert": FILE, "key": FILE, "ca": [FILES] | DIR, "crl": [FILES] }, next to the
// pre-shared key forms of config.ts. Files are PEM (a certificate file may hold the intermediates after our
// own certificate, which are then sent with it); paths are relative to the config file. The private key file
// must not be readable by group or others, and must belong to the certificate.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { parseCertificate, parseCrl, pemBlocks, keyMatchesCertificate, type ParsedCert, type ParsedCrl, type TrustStore } from '../../ike/certificates.js';
import { IkeError } from '../../ike/errors.js';
import { signatureMethodFor } from '../../ike/signatures.js';
import { AuthMethod, type Identity } from '../../isakmp/index.js';
import { boolean, checkKeys, got, join, stringList, type Json, type Problems } from './check.js';

export const CERT_AUTH_KEYS = ['cert', 'key', 'ca', 'crl', 'sendChain'];

export interface CertAuthConfig {
  kind: 'cert';
  /** Our certificate, then the intermediates from the same file (sent after it). Absent: a hybrid client. */
  cert?: ParsedCert;
  chain: ParsedCert[];
  /** The private key; prints as "<redacted>". */
  key?: KeyObject;
  trust: TrustStore;
  /** The phase 1 method our key signs with: RSA_SIG or ECDSA_256/384/521; HYBRID_INIT_RSA with no key. */
  method: number;
  /** Where it came from, for messages: 'cert /etc/ike/gw.pem'. */
  source: string;
  /** Never set: lets `auth.psk` be read on either form of `auth`. */
  psk?: undefined;
  allowAggressivePsk?: undefined;
}

/** Is this `auth` object the certificate form? */
export function isCertAuth(o: Json): boolean {
  return o.cert !== undefined || o.key !== undefined || o.ca !== undefined;
}

/** Reads and checks the certificate form of `auth`; undefined (with the problems recorded) when it is wrong. */
export function parseCertAuth(p: Problems, at: string, o: Json, baseDir: string): CertAuthConfig | undefined {
  checkKeys(p, at, o, CERT_AUTH_KEYS);
  if (o.cert === undefined && o.key === undefined) return hybridClient(p, at, o, baseDir);
  const errorsBefore = p.errors.length;
  const file = (key: string): string | undefined => {
    const v = o[key];
    if (v === undefined) return p.error(join(at, key), `missing (a PEM file path)`);
    if (typeof v !== 'string' || v === '') return p.error(join(at, key), `must be a file path, ${got(v)}`);
    return path.resolve(baseDir, v);
  };
  const certFile = file('cert');
  const keyFile = file('key');
  const certs = certFile === undefined ? [] : readPem(p, join(at, 'cert'), certFile, 'CERTIFICATE', (der, w) => parseCertificate(der, w));
  const key = keyFile === undefined ? undefined : readKey(p, join(at, 'key'), keyFile);
  const anchors = readAnchors(p, join(at, 'ca'), o.ca, baseDir);
  const crls: ParsedCrl[] = [];
  for (const [where, f] of o.crl === undefined ? [] : stringList(p, join(at, 'crl'), o.crl) ?? []) {
    crls.push(...readPem(p, where, path.resolve(baseDir, f), 'X509 CRL', (der, w) => parseCrl(der, w)));
  }
  if (p.errors.length > errorsBefore || key === undefined || certs.length === 0) return undefined;
  const cert = certs[0]!;
  if (!keyMatchesCertificate(cert, key)) return p.error(join(at, 'key'), `${keyFile} is not the private key of ${certFile} ('${cert.subject}')`);
  let method: number;
  try {
    method = signatureMethodFor(key);
  } catch (e) {
    return p.error(join(at, 'key'), (e as IkeError).message);
  }
  // iOS / macOS want the end-entity certificate alone (CLIENTS.md): sendChain false keeps the intermediates home
  const sendChain = boolean(p, join(at, 'sendChain'), o.sendChain, true);
  return redacted({ kind: 'cert', cert, chain: sendChain ? certs.slice(1) : [], key, trust: { anchors, crls }, method, source: `cert ${certFile}` });
}

/**
 * The phase 1 method of the connection's proposals: the key's; with XAUTH its XAUTH form (XAUTHInitRSA); with
 * `remoteAuth: "xauth"` (the client has no certificate) or no key of ours, hybrid (HybridInitRSA).
 */
export function certAuthMethod(p: Problems, at: string, auth: CertAuthConfig, xauth: boolean, remoteAuth: unknown): number {
  if (remoteAuth !== undefined && remoteAuth !== 'xauth' && remoteAuth !== 'cert') p.error(at, `must be "xauth" (hybrid: the peer proves itself with XAUTH only) or "cert", ${got(remoteAuth)}`);
  const hybrid = auth.key === undefined || remoteAuth === 'xauth';
  if (hybrid && !xauth) p.error(at, 'hybrid authentication (one side without a certificate) needs XAUTH: set "xauth"');
  if (hybrid && auth.key !== undefined && auth.method !== AuthMethod.RSA_SIG) p.error(at, 'hybrid authentication is defined for RSA keys only (HybridInitRSA)');
  if (hybrid) return AuthMethod.HYBRID_INIT_RSA;
  if (!xauth) return auth.method;
  return auth.method === AuthMethod.RSA_SIG ? AuthMethod.XAUTH_INIT_RSA : auth.method;
}

/** Our default identity with a certificate: its subject (ID_DER_ASN1_DN), as strongSwan does. */
export function certIdentity(auth: CertAuthConfig): Identity | undefined {
  return auth.cert ? { kind: 'der-dn', data: auth.cert.subjectDer } : undefined;
}

/** `auth: { "ca": ... }` alone: a hybrid client, which checks the gateway's certificate and has none itself. */
function hybridClient(p: Problems, at: string, o: Json, baseDir: string): CertAuthConfig | undefined {
  const errorsBefore = p.errors.length;
  const anchors = readAnchors(p, join(at, 'ca'), o.ca, baseDir);
  const crls: ParsedCrl[] = [];
  for (const [where, f] of o.crl === undefined ? [] : stringList(p, join(at, 'crl'), o.crl) ?? []) {
    crls.push(...readPem(p, where, path.resolve(baseDir, f), 'X509 CRL', (der, w) => parseCrl(der, w)));
  }
  if (p.errors.length > errorsBefore) return undefined;
  return redacted({ kind: 'cert', chain: [], trust: { anchors, crls }, method: AuthMethod.HYBRID_INIT_RSA, source: 'ca (hybrid client)' });
}

function readPem<T>(p: Problems, at: string, file: string, label: string, parse: (der: Buffer, where: string) => T): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return p.error(at, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`) ?? [];
  }
  const blocks = pemBlocks(text, label);
  if (blocks.length === 0) return p.error(at, `${file} holds no PEM '${label}' block`) ?? [];
  const out: T[] = [];
  blocks.forEach((der, i) => {
    try {
      out.push(parse(der, blocks.length > 1 ? `${file} (block ${i + 1})` : file));
    } catch (e) {
      p.error(at, (e as Error).message);
    }
  });
  return out;
}

function readKey(p: Problems, at: string, file: string): KeyObject | undefined {
  let text: Buffer;
  try {
    // Like a PSK file: a private key that others can read is not private.
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) return p.error(at, `${file} is readable by group or others (mode ${mode.toString(8)}); chmod 600 it`);
    text = readFileSync(file);
  } catch (e) {
    return p.error(at, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return createPrivateKey(text);
  } catch (e) {
    return p.error(at, `${file} is not a PEM private key (an encrypted key is not supported): ${(e as Error).message.split('\n')[0]}`);
  }
}

/** `ca`: a list of PEM files, or one directory whose *.pem / *.crt files are read. */
function readAnchors(p: Problems, at: string, v: unknown, baseDir: string): ParsedCert[] {
  if (v === undefined) return p.error(at, 'missing (the CA certificates to trust: a list of PEM files or a directory)') ?? [];
  let files: Array<[string, string]>;
  if (typeof v === 'string') {
    const dir = path.resolve(baseDir, v);
    try {
      files = readdirSync(dir).filter((f) => /\.(pem|crt|cer)$/i.test(f)).sort().map((f): [string, string] => [at, path.join(dir, f)]);
    } catch (e) {
      return p.error(at, `cannot read the directory ${dir} (${(e as NodeJS.ErrnoException).code ?? 'error'})`) ?? [];
    }
    if (files.length === 0) return p.error(at, `${dir} holds no .pem, .crt or .cer file`) ?? [];
  } else {
    files = (stringList(p, at, v) ?? []).map(([w, f]): [string, string] => [w, path.resolve(baseDir, f)]);
  }
  const anchors = files.flatMap(([where, f]) => readPem(p, where, f, 'CERTIFICATE', (der, w) => parseCertificate(der, w)));
  for (const a of anchors) if (a.ca !== true) p.error(at, `'${a.subject}' is not a CA certificate (basicConstraints cA is not set)`);
  return anchors;
}

/** Keeps the private key out of console.log / util.inspect / JSON.stringify of a config. */
function redacted(auth: CertAuthConfig): CertAuthConfig {
  const shown = () => ({ kind: 'cert', cert: auth.cert?.subject, chain: auth.chain.map((c) => c.subject), key: '<redacted>', anchors: auth.trust.anchors.map((a) => a.subject), crls: auth.trust.crls.length, source: auth.source });
  Object.defineProperty(auth, 'toJSON', { value: shown, enumerable: false });
  Object.defineProperty(auth, inspect.custom, { value: () => shown(), enumerable: false });
  return auth;
}
