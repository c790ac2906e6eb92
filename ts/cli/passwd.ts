// `ike passwd USER`: reads a password from stdin (its first line) and prints the user-file line
// `USER:scrypt$N$r$p$salthex$hashhex` for the XAUTH user file. The password is never taken from the
// command line (it would show in `ps` and shell history) and never echoed.
import { DEFAULT_SCRYPT, userFileLine } from '../ike/xauth-users.js';

export const PASSWD_USAGE = `usage: ike passwd USER < password
  prints "USER:scrypt$N$r$p$salt$hash" for the XAUTH user file ("xauth": {"users": FILE});
  the password is the first line of stdin
`;

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Exit code 0, or 2 for a usage error (message on stderr). */
export async function passwd(argv: string[]): Promise<number> {
  if (argv.length !== 1 || argv[0]!.startsWith('-')) {
    process.stderr.write(argv[0] === '--help' ? PASSWD_USAGE : `ike: passwd needs exactly one USER\n${PASSWD_USAGE}`);
    return argv[0] === '--help' ? 0 : 2;
  }
  const user = argv[0]!;
  if (/[:\r\n]/.test(user)) {
    process.stderr.write('ike: a user name may not contain ":" or a line break\n');
    return 2;
  }
  const text = (await readStdin()).toString('utf8');
  const password = text.split(/\r?\n/, 1)[0] ?? '';
  if (password === '') {
    process.stderr.write('ike: empty password on stdin\n');
    return 2;
  }
  process.stdout.write(`${await userFileLine(user, password, DEFAULT_SCRYPT)}\n`);
  return 0;
}
