// Writing the keylog files (`ike keylog --out DIR`, `ike gateway --keylog DIR`) without handing the keys to
// anyone else. The files hold every session key, so:
// - the directory must be ours and writable by nobody else (else another user could swap a file for a symlink
//   between our check and our write, or read what we wrote through a name they prepared);
// - a file is never opened through a symlink (O_NOFOLLOW) and never reused: it is written under a fresh temporary
//   name created with O_EXCL at 0600, then renamed over the old name, which replaces a symlink or a 0644 file of
//   that name instead of writing through it or keeping its mode.
import { closeSync, constants, fchmodSync, fsyncSync, mkdirSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { KeylogLine, KeylogTable } from './keylog.js';

export class KeylogFileError extends Error {
  override readonly name = 'KeylogFileError';
}

const TABLES: readonly KeylogTable[] = ['ikev1_decryption_table', 'esp_sa'];

/**
 * The key log directory, created (0700) when missing, as a real path. Refused when it is not a directory, is not
 * owned by our user, or is writable by group or others.
 */
export function keylogDirectory(dir: string): string {
  const wanted = path.resolve(dir);
  try {
    mkdirSync(wanted, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new KeylogFileError(`keylog directory ${wanted}: cannot create it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  // The real path, so that a symlink in the path is resolved once, here, and checked as what it points to.
  const real = realpathSync(wanted);
  const st = statSync(real);
  if (!st.isDirectory()) throw new KeylogFileError(`keylog directory ${wanted} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new KeylogFileError(`keylog directory ${real} belongs to uid ${st.uid}, not to us (uid ${uid}): use a directory of our own`);
  }
  if ((st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new KeylogFileError(`keylog directory ${real} is writable by group or others (mode ${mode}): chmod go-w it, or use another directory`);
  }
  return real;
}

/** A new file under a temporary name in `dir`: O_EXCL | O_NOFOLLOW, mode 0600 whatever the umask. */
function createTemp(dir: string, table: KeylogTable): { fd: number; temp: string } {
  const temp = path.join(dir, `.${table}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  fchmodSync(fd, 0o600);
  return { fd, temp };
}

/** Writes `content` to a fresh 0600 file and renames it over dir/table; returns the open descriptor when keepOpen. */
function replace(dir: string, table: KeylogTable, content: string, keepOpen: boolean): number | undefined {
  const final = path.join(dir, table);
  let created: { fd: number; temp: string } | undefined;
  try {
    created = createTemp(dir, table);
    if (content.length > 0) writeSync(created.fd, content);
    fsyncSync(created.fd);
    renameSync(created.temp, final);
  } catch (e) {
    if (created) {
      closeSync(created.fd);
      try {
        unlinkSync(created.temp);
      } catch {
        // already renamed or gone
      }
    }
    throw new KeylogFileError(`cannot write ${final} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (keepOpen) return created.fd;
  closeSync(created.fd);
  return undefined;
}

/** `ike keylog --out DIR`: replaces DIR/ikev1_decryption_table and DIR/esp_sa with exactly these lines. */
export function writeKeylogFiles(dir: string, lines: readonly KeylogLine[]): Record<KeylogTable, { path: string; count: number }> {
  const real = keylogDirectory(dir);
  const out = {} as Record<KeylogTable, { path: string; count: number }>;
  for (const table of TABLES) {
    const rows = lines.filter((l) => l.table === table).map((l) => l.line + '\n');
    replace(real, table, rows.join(''), false);
    out[table] = { path: path.join(real, table), count: rows.length };
  }
  return out;
}

/**
 * `ike gateway --keylog DIR`: both files start empty (replaced as above) when the gateway starts and get one line
 * per new SA, appended through the descriptor created then, so a file swapped in later is never written.
 */
export class KeylogAppender {
  readonly dir: string;
  private readonly fds = new Map<KeylogTable, number>();

  constructor(dir: string) {
    this.dir = keylogDirectory(dir);
    try {
      for (const table of TABLES) this.fds.set(table, replace(this.dir, table, '', true)!);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  append(l: KeylogLine): void {
    const fd = this.fds.get(l.table);
    if (fd !== undefined) writeSync(fd, l.line + '\n');
  }

  /** Idempotent; appends after it write nothing. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
