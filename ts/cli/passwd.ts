// `ike passwd USER`: prints the user-file line `USER:scrypt$N$r$p$salthex$hashhex` for the XAUTH user file. The
// password is never taken from the command line (it would show in `ps` and shell history). On a terminal it is
// asked for twice with echo off (raw mode: the terminal shows nothing); from a pipe it is stdin's first line.
import { DEFAULT_SCRYPT, userFileLine } from '../ike/xauth-users.js';
import { command, runCommand, UsageError } from './args.js';

export const PASSWD_COMMAND = command({
  name: 'ike passwd',
  synopsis: 'USER',
  summary: `Prints "USER:scrypt$N$r$p$salt$hash" for the XAUTH user file ("xauth": {"users": FILE}).
On a terminal the password is asked for twice without echo; otherwise it is the first line of stdin
(ike passwd alice < password-file).`,
  options: {},
  positionals: { min: 1, max: 1, name: 'USER' },
});

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** One line typed on the terminal without echo; null on Ctrl-C or Ctrl-D at an empty line. */
function readHidden(prompt: string): Promise<string | null> {
  const stdin = process.stdin;
  // echo off before the prompt shows: what is typed ahead must not appear either
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve) => {
    let text = '';
    const finish = (v: string | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      resolve(v);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(text);
        if (ch === '\u0003' || (ch === '\u0004' && text === '')) return finish(null);
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else if (ch >= ' ') text += ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}

async function password(): Promise<string> {
  if (!process.stdin.isTTY) return (await readStdin()).toString('utf8').split(/\r?\n/, 1)[0] ?? '';
  const first = await readHidden('password: ');
  if (first === null) throw new UsageError('cancelled');
  if (first === '') return '';
  const again = await readHidden('again: ');
  if (again !== first) throw new UsageError('the two passwords differ');
  return first;
}

/** Exit code 0, or 2 for a usage error (message on stderr). */
export function passwd(argv: string[]): Promise<number> {
  return runCommand(PASSWD_COMMAND, argv, async ({ positionals }) => {
    const user = positionals[0]!;
    if (/[:\r\n]/.test(user)) throw new UsageError('a user name may not contain ":" or a line break');
    const pw = await password();
    if (pw === '') throw new UsageError(process.stdin.isTTY ? 'empty password' : 'empty password on stdin');
    process.stdout.write(`${await userFileLine(user, pw, DEFAULT_SCRYPT)}\n`);
    return 0;
  });
}
