// A throw-away two-level PKI made with the openssl CLI for the certificate tests: root CA -> intermediate CA ->
// end-entity certificates, each file PEM, private keys mode 0600 (PKCS#8 for us, the traditional form too
// for strongSwan's pem plugin), and CRLs made with `openssl ca -gencrl`.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export type KeyAlg = 'rsa2048' | 'rsa4096' | 'ec256' | 'ec384' | 'ec521';

export interface Issued {
  /** The end-entity certificate followed by the intermediate (what a peer sends). */
  chainFile: string;
  /** The end-entity certificate alone. */
  certFile: string;
  /** PKCS#8 PEM, mode 0600. */
  keyFile: string;
  /** PKCS#1 / SEC1 PEM (strongSwan's rsa / ecdsa secrets), mode 0600. */
  legacyKeyFile: string;
  subject: string;
  serial: string;
}

export interface Pki {
  dir: string;
  rootFile: string;
  intermediateFile: string;
  /** An end-entity certificate from the intermediate CA. days -1 makes one that has already expired. */
  issue(name: string, opts?: { san?: string[]; days?: number; keyAlg?: KeyAlg; keyUsage?: string }): Issued;
  /** A CRL of the intermediate CA revoking these certificates. */
  crl(revoked: Issued[]): string;
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function keyArgs(alg: KeyAlg): string[] {
  if (alg.startsWith('rsa')) return ['-newkey', `rsa:${alg.slice(3)}`];
  const curve = { ec256: 'P-256', ec384: 'P-384', ec521: 'P-521' }[alg as 'ec256' | 'ec384' | 'ec521'];
  return ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`];
}

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';

/** Makes a root and an intermediate CA in `dir` (created), keys of `alg`. */
export function makePki(dir: string, alg: KeyAlg = 'rsa2048', rootName = 'Test Root CA'): Pki {
  mkdirSync(dir, { recursive: true });
  const subj = (cn: string) => `/C=CH/O=ikev1-engine tests/CN=${cn}`;
  openssl(['req', '-x509', ...keyArgs(alg), '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-subj', subj(rootName), '-days', '30',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  writeFileSync(path.join(dir, 'ca.ext'), CA_EXT);
  openssl(['req', '-new', ...keyArgs(alg), '-nodes', '-keyout', 'im.key', '-out', 'im.csr', '-subj', subj(`${rootName} Intermediate`)], dir);
  openssl(['x509', '-req', '-in', 'im.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-days', '30', '-extfile', 'ca.ext', '-out', 'im.pem'], dir);
  let n = 0;
  const issued: Issued[] = [];
  const pki: Pki = {
    dir,
    rootFile: path.join(dir, 'root.pem'),
    intermediateFile: path.join(dir, 'im.pem'),
    issue(name, opts = {}) {
      const base = `ee${++n}`;
      const ku = opts.keyUsage ?? 'digitalSignature';
      const ext = [`basicConstraints=CA:FALSE`, `keyUsage=${ku}`, ...(opts.san?.length ? [`subjectAltName=${opts.san.join(',')}`] : [])].join('\n') + '\n';
      writeFileSync(path.join(dir, `${base}.ext`), ext);
      openssl(['req', '-new', ...keyArgs(opts.keyAlg ?? alg), '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', subj(name)], dir);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', 'im.pem', '-CAkey', 'im.key', '-CAcreateserial', '-days', String(opts.days ?? 30), '-extfile', `${base}.ext`, '-out', `${base}.pem`], dir);
      const legacy = openssl(['pkey', '-in', `${base}.key`, '-traditional'], dir);
      writeFileSync(path.join(dir, `${base}.legacy.key`), legacy, { mode: 0o600 });
      chmodSync(path.join(dir, `${base}.key`), 0o600);
      const pem = readFileSync(path.join(dir, `${base}.pem`), 'utf8');
      writeFileSync(path.join(dir, `${base}.chain.pem`), pem + readFileSync(path.join(dir, 'im.pem'), 'utf8'));
      const serial = openssl(['x509', '-in', `${base}.pem`, '-noout', '-serial'], dir).trim().replace(/^serial=/, '');
      const it: Issued = {
        chainFile: path.join(dir, `${base}.chain.pem`),
        certFile: path.join(dir, `${base}.pem`),
        keyFile: path.join(dir, `${base}.key`),
        legacyKeyFile: path.join(dir, `${base}.legacy.key`),
        subject: `C=CH, O=ikev1-engine tests, CN=${name}`,
        serial,
      };
      issued.push(it);
      return it;
    },
    crl(revoked) {
      // openssl ca's database: one line per revoked certificate (status R, expiry, revocation time, serial)
      const t = new Date().toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
      const lines = revoked.map((r) => `R\t491231235959Z\t${t}\t${r.serial}\tunknown\t/CN=x\n`).join('');
      writeFileSync(path.join(dir, 'index.txt'), lines);
      writeFileSync(path.join(dir, 'crlnumber'), '01\n');
      writeFileSync(
        path.join(dir, 'ca.cnf'),
        `[ca]\ndefault_ca=im\n[im]\ndatabase=${path.join(dir, 'index.txt')}\ncrlnumber=${path.join(dir, 'crlnumber')}\ndefault_md=sha256\ndefault_crl_days=7\n`,
      );
      openssl(['ca', '-config', 'ca.cnf', '-gencrl', '-keyfile', 'im.key', '-cert', 'im.pem', '-out', 'im.crl.pem'], dir);
      return path.join(dir, 'im.crl.pem');
    },
  };
  return pki;
}
