// A throw-away PKI for `ike demo --auth cert`: a root CA and two gateway certificates (ECDSA P-256), made with the
// openssl command (node:crypto verifies certificates but cannot issue them), in a private temporary directory
// that is removed when the demo ends.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface DemoPki {
  dir: string;
  ca: string;
  cert(name: string): { cert: string; key: string; subject: string };
  remove(): void;
}

export function demoPki(): DemoPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-demo-pki-'));
  const run = (args: string[]) => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
      throw new Error(err.code === 'ENOENT' ? '`ike demo --auth cert` makes its certificates with the openssl command, which is not installed' : `openssl ${args[0]} failed: ${err.stderr?.toString() ?? err.message}`);
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/O=ike demo/CN=Demo Root CA', '-days', '1', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    cert(name) {
      writeFileSync(path.join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nsubjectAltName=DNS:${name}.demo\n`);
      run(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=ike demo/CN=${name}.demo`]);
      run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
      return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`), subject: `O=ike demo, CN=${name}.demo` };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
