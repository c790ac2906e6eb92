// `ike keylog [--control PATH] --out DIR`: the session keys of every current SA of a running gateway, in
// the two files Wireshark reads. Anyone holding these files can decrypt the traffic: debugging only.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { controlRequest, findControlSocket } from '../gateway/control.js';
import { controlArgs, withControl } from './status.js';

export const KEYLOG_USAGE = `usage: ike keylog [--control PATH] --out DIR
  writes the session keys of EVERY current SA of the gateway listening on PATH
  (default: the one gateway control socket of this user), whatever the connections' "keylog" setting,
  to DIR/ikev1_decryption_table and DIR/esp_sa (Wireshark's file names, mode 0600).
  The control socket is owner-only (0600): only root or the gateway's user can ask.
  Anyone who reads these files can decrypt the traffic: debugging only.
`;

export async function keylog(argv: string[]): Promise<number> {
  const flags = controlArgs(argv, ['control', 'out', 'help']);
  if (typeof flags === 'string' || (!flags.has('help') && !flags.has('out'))) {
    process.stderr.write(`ike: ${typeof flags === 'string' ? flags : 'ike keylog needs --out DIR'} (try 'ike keylog --help')\n`);
    return 2;
  }
  if (flags.has('help')) {
    process.stdout.write(KEYLOG_USAGE);
    return 0;
  }
    const dir = path.resolve(flags.get('out') as string);
  const r = await withControl(() => controlRequest((flags.get('control') as string | undefined) ?? findControlSocket(), { cmd: 'keylog' }));
  if (typeof r === 'number') return r;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const counts: Record<string, number> = {};
  for (const table of ['ikev1_decryption_table', 'esp_sa'] as const) {
    const lines = r.lines.filter((l) => l.table === table).map((l) => l.line);
    counts[table] = lines.length;
    // replaced, not appended: the files hold exactly the SAs that exist now
    writeFileSync(path.join(dir, table), lines.map((l) => l + '\n').join(''), { mode: 0o600 });
  }
  process.stdout.write(
    `wrote ${counts.ikev1_decryption_table} ISAKMP SA key(s) to ${path.join(dir, 'ikev1_decryption_table')}\n` +
      `wrote ${counts.esp_sa} ESP SA row(s) to ${path.join(dir, 'esp_sa')}\n` +
      `decrypt a capture with them (Wireshark reads these files from its configuration directory):\n` +
      `  WIRESHARK_CONFIG_DIR=${dir} tshark -r capture.pcap -o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE\n` +
      `or copy both files into a Wireshark profile folder (Help > About > Folders) and open the capture there.\n`,
  );
  return 0;
}
