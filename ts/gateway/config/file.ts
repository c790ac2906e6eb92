// Reading the files a config names (the config itself, a PSK file) as bytes, safely: a regular file only (a FIFO
// would block the read forever, /dev/zero would never end), at most a size cap, then checked to be UTF-8 text.
// Every problem is one line that names the file and never quotes its content: it may hold a key.
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { Parsed } from './values.js';

/** A config file larger than this is refused (the largest example is about 2 KiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** A PSK or password file larger than this is refused. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;
/** An XAUTH user file larger than this is refused (about 100,000 users). */
export const MAX_USERS_FILE_BYTES = 16 * 1024 * 1024;

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

export interface FileBytes {
  bytes: Buffer;
  /** Permission bits (st_mode & 0o777), for the "readable by others" warning. */
  mode: number;
}

/**
 * The bytes of a regular file of at most `maxBytes`. Opened with O_NONBLOCK so that opening a FIFO returns at
 * once (and is then refused by fstat) instead of waiting for a writer. Synchronous: the config is read once,
 * before anything runs, and parseConfig reads PSK files synchronously. `label` names the file in messages.
 */
export function readRegularFile(file: string, maxBytes: number, label = file): Parsed<FileBytes> {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return fail(`cannot read ${label} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return fail(`${label} is ${kindOf(st)}, not a regular file`);
    if (st.size > maxBytes) return fail(`${label} is ${st.size} bytes, over the limit of ${maxBytes}`);
    // Read one byte past the cap: the size in stat can change (or lie, for /proc files) between stat and read.
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) return fail(`${label} is over the limit of ${maxBytes} bytes`);
    }
    return { ok: true, value: { bytes: buf.subarray(0, length), mode: st.mode & 0o777 } };
  } catch (e) {
    return fail(`cannot read ${label} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  } finally {
    closeSync(fd);
  }
}

/** 1-based line and column (in characters) of byte offset `at` in UTF-8 `bytes`. */
function lineColumn(bytes: Buffer, at: number): string {
  const before = bytes.subarray(0, at);
  const lineStart = before.lastIndexOf(0x0a) + 1;
  let line = 1;
  for (const b of before) if (b === 0x0a) line++;
  // the column counts characters, not bytes: UTF-8 continuation bytes (10xxxxxx) do not start one
  let column = 1;
  for (const b of before.subarray(lineStart)) if ((b & 0xc0) !== 0x80) column++;
  return `line ${line}, column ${column}`;
}

/** Offset of the first byte that makes `bytes` invalid UTF-8, or -1. */
function firstInvalidUtf8(bytes: Buffer): number {
  if (isUtf8(bytes)) return -1;
  // In streaming mode a prefix cut inside a sequence is not an error, so "this prefix is valid" only turns from
  // true to false once as the prefix grows: binary search for the longest valid one.
  const valid = (n: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  let lo = 0; // valid(lo)
  let hi = bytes.length; // !valid(hi) or an unfinished sequence at the end
  if (valid(hi)) {
    // only an unfinished sequence at the very end: it starts at the last lead byte
    let i = bytes.length - 1;
    while (i > 0 && (bytes[i]! & 0xc0) === 0x80) i--;
    return i;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (valid(mid)) lo = mid;
    else hi = mid;
  }
  return lo; // bytes[0..lo) is valid, bytes[lo] breaks it
}

/**
 * UTF-8 text without a byte order mark and without NUL or other control characters than tab, CR and LF. `what`
 * names the file in the message ("the config file").
 */
export function utf8Text(bytes: Buffer, what: string): Parsed<string> {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return fail(`${what} starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM`);
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) return fail(`${what} is UTF-16 text; save it as UTF-8`);
  const control = bytes.findIndex((b) => b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  const invalid = firstInvalidUtf8(bytes);
  if (control >= 0 && (invalid < 0 || control < invalid)) return fail(`${what} has binary content (control byte 0x${bytes[control]!.toString(16).padStart(2, '0')} at ${lineColumn(bytes, control)}), not a text file`);
  if (invalid >= 0) return fail(`${what} has bytes that are not UTF-8 at ${lineColumn(bytes, invalid)}; save it as UTF-8`);
  return { ok: true, value: bytes.toString('utf8') };
}

/**
 * A file holding a secret (auth.pskFile, xauth.passwordFile): its text without one trailing newline (what editors
 * and `echo` add), and a warning when group or others may read or change it. Bytes that are not UTF-8 are refused:
 * decoded they would become U+FFFD and the key would differ from the peer's.
 */
export function readSecretFile(file: string, notUtf8Hint: string): Parsed<{ text: string; warning?: string }> {
  const read = readRegularFile(file, MAX_SECRET_FILE_BYTES);
  if (!read.ok) return read;
  const text = utf8Text(read.value.bytes, file);
  if (!text.ok) return fail(`${text.error.replace(/; save it as UTF-8$/, '')}; ${notUtf8Hint}`);
  const mode = read.value.mode;
  const warning = (mode & 0o077) !== 0 ? `${file} can be read or changed by group or others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it` : undefined;
  return { ok: true, value: { text: text.value.replace(/\r?\n$/, ''), ...(warning ? { warning } : {}) } };
}

/** A regular UTF-8 text file of at most `maxBytes`, with its permission bits. */
export function readTextFile(file: string, maxBytes: number): Parsed<{ text: string; mode: number }> {
  const read = readRegularFile(file, maxBytes);
  if (!read.ok) return read;
  const text = utf8Text(read.value.bytes, file);
  if (!text.ok) return text;
  return { ok: true, value: { text: text.value, mode: read.value.mode } };
}
