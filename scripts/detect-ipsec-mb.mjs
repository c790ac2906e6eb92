// Called by binding.gyp: prints 1 when intel-ipsec-mb (header and shared library) is installed, else 0.
// Without it the addon is built with the OpenSSL EVP engine only, and this says once how to get the faster one.
// IKE_NO_IPSEC_MB=1 builds without it even when installed (to test the EVP-only build).
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

function found() {
  if (process.env.IKE_NO_IPSEC_MB === '1') return false;
  const includes = ['/usr/include', '/usr/local/include'];
  if (!includes.some((d) => existsSync(path.join(d, 'intel-ipsec-mb.h')))) return false;
  const libDirs = ['/usr/lib', '/usr/lib64', '/usr/local/lib', '/usr/local/lib64'];
  for (const d of ['/usr/lib', '/lib']) {
    try {
      for (const e of readdirSync(d)) if (e.endsWith('-linux-gnu')) libDirs.push(path.join(d, e));
    } catch {
      // no such directory
    }
  }
  return libDirs.some((d) => existsSync(path.join(d, 'libIPSec_MB.so')));
}

const ok = found();
if (!ok && process.env.IKE_NO_IPSEC_MB !== '1') {
  process.stderr.write(
    'ikev1-engine: intel-ipsec-mb not found, building the ESP data path with OpenSSL EVP only.\n' +
      '  For the multi-buffer engine (several times faster ESP): apt-get install libipsec-mb-dev, then npm rebuild.\n',
  );
}
process.stdout.write(ok ? '1' : '0');
