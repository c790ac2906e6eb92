// `ike keylog [--control PATH] --out DIR`: the session keys of every current SA of a running gateway, in
// the two files Wireshark reads. Anyone holding these files can decrypt the traffic: debugging only.
import path from 'node:path';
import { controlRequest, findControlSocket } from '../gateway/control.js';
import { KeylogFileError, writeKeylogFiles } from '../gateway/keylog-files.js';
import { command, runCommand } from './args.js';
import { CONTROL_OPTION, withControl } from './status.js';

export const KEYLOG_COMMAND = command({
  name: 'ike keylog',
  summary: `Writes the session keys of EVERY current SA of the gateway listening on the control socket,
whatever the connections' "keylog" setting, to DIR/ikev1_decryption_table and DIR/esp_sa
(Wireshark's file names), each written as a new mode-0600 file renamed over the old one (never
through a symlink). DIR is created (0700) if missing and must be ours and writable by nobody else.
The control socket is owner-only (0600): only root or the gateway's user can ask.
Anyone who reads these files can decrypt the traffic: debugging only.`,
  options: {
    out: { kind: 'string', value: 'DIR', required: true, help: 'the directory of the two files' },
    control: CONTROL_OPTION,
  },
});

export function keylog(argv: string[]): Promise<number> {
  return runCommand(KEYLOG_COMMAND, argv, async ({ values }) => {
    const r = await withControl(() => controlRequest(values.control ?? findControlSocket(), { cmd: 'keylog' }));
    if (typeof r === 'number') return r;
    let files: ReturnType<typeof writeKeylogFiles>;
    try {
      files = writeKeylogFiles(values.out, r.lines);
    } catch (e) {
      if (!(e instanceof KeylogFileError)) throw e;
      process.stderr.write(`ike: ${e.message}\n`);
      return 1;
    }
    process.stdout.write(
      `wrote ${files.ikev1_decryption_table.count} ISAKMP SA key(s) to ${files.ikev1_decryption_table.path}\n` +
        `wrote ${files.esp_sa.count} ESP SA row(s) to ${files.esp_sa.path}\n` +
        `decrypt a capture with them (Wireshark reads these files from its configuration directory):\n` +
        `  WIRESHARK_CONFIG_DIR=${path.dirname(files.esp_sa.path)} tshark -r capture.pcap -o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE\n` +
        `or copy both files into a Wireshark profile folder (Help > About > Folders) and open the capture there.\n`,
    );
    return 0;
  });
}
