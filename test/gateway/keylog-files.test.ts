// The keylog files (ts/gateway/keylog-files.ts) on the real file system: new 0600 files renamed into place, never
// written through a symlink or into an existing file's mode, and a directory others can write (or not ours) refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KeylogAppender, KeylogFileError, keylogDirectory, writeKeylogFiles } from '../../ts/gateway/index.js';

const LINES = [
  { table: 'ikev1_decryption_table' as const, line: '0102030405060708,00112233445566778899aabbccddeeff' },
  { table: 'esp_sa' as const, line: '"IPv4","10.0.0.1","10.0.0.2","0x01020304","AES-CBC [RFC3602]","0x00","HMAC-SHA-1-96 [RFC2404]","0x00"' },
];

function scratch(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'ike-keylog-'));
  return d;
}

test('keylog files: written 0600 under a umask that would allow more, the directory created 0700', () => {
  const base = scratch();
  const old = process.umask(0o000);
  try {
    const out = writeKeylogFiles(path.join(base, 'new', 'keys'), LINES);
    assert.equal(out.esp_sa.count, 1);
    for (const t of ['ikev1_decryption_table', 'esp_sa']) assert.equal(statSync(path.join(base, 'new', 'keys', t)).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(base, 'new', 'keys')).mode & 0o777, 0o700);
    assert.equal(readFileSync(out.ikev1_decryption_table.path, 'utf8'), LINES[0]!.line + '\n');
    assert.deepEqual(readdirSync(path.join(base, 'new', 'keys')).sort(), ['esp_sa', 'ikev1_decryption_table'], 'no temporary file left');
  } finally {
    process.umask(old);
    rmSync(base, { recursive: true, force: true });
  }
});

test('keylog files: an existing 0644 file is replaced by a 0600 one, a symlink is replaced, its target untouched', () => {
  const base = scratch();
  try {
    const keys = path.join(base, 'keys');
    mkdirSync(keys, { mode: 0o700 });
    writeFileSync(path.join(keys, 'esp_sa'), 'old\n', { mode: 0o644 });
    chmodSync(path.join(keys, 'esp_sa'), 0o644);
    const victim = path.join(base, 'victim');
    writeFileSync(victim, 'precious\n', { mode: 0o644 });
    symlinkSync(victim, path.join(keys, 'ikev1_decryption_table'));
    writeKeylogFiles(keys, LINES);
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n', 'nothing written through the symlink');
    assert.ok(lstatSync(path.join(keys, 'ikev1_decryption_table')).isFile(), 'the symlink itself was replaced by a file');
    assert.equal(statSync(path.join(keys, 'esp_sa')).mode & 0o777, 0o600);
    assert.equal(readFileSync(path.join(keys, 'esp_sa'), 'utf8'), LINES[1]!.line + '\n');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('keylog files: a directory writable by group or others, not ours, or not a directory is refused with one line', () => {
  const base = scratch();
  try {
    const open = path.join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    assert.throws(() => writeKeylogFiles(open, LINES), (e: unknown) => e instanceof KeylogFileError && /writable by group or others \(mode 0777\)/.test(e.message) && !e.message.includes('\n'));
    assert.deepEqual(readdirSync(open), [], 'nothing written');
    chmodSync(open, 0o770);
    assert.throws(() => new KeylogAppender(open), /writable by group or others \(mode 0770\)/);
    // a symlink to such a directory is judged by what it points to
    symlinkSync(open, path.join(base, 'link'));
    assert.throws(() => keylogDirectory(path.join(base, 'link')), /writable by group or others/);
    writeFileSync(path.join(base, 'file'), '');
    assert.throws(() => keylogDirectory(path.join(base, 'file')), (e: unknown) => e instanceof KeylogFileError && /cannot create it \(EEXIST\)|is not a directory/.test(e.message));
    // /tmp itself: sticky and world-writable, and (unless we are root) not ours
    assert.throws(() => keylogDirectory(os.tmpdir() === '/tmp' ? '/tmp' : open), KeylogFileError);
    if (process.getuid?.() === 0) {
      const theirs = path.join(base, 'theirs');
      mkdirSync(theirs, { mode: 0o700 });
      chownSync(theirs, 65534, 65534);
      assert.throws(() => keylogDirectory(theirs), /belongs to uid 65534, not to us \(uid 0\)/);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('keylog files: the gateway appender starts both files empty and 0600, appends through its own descriptors', () => {
  const base = scratch();
  try {
    const keys = path.join(base, 'keys');
    mkdirSync(keys, { mode: 0o700 });
    writeFileSync(path.join(keys, 'esp_sa'), 'keys of an earlier run\n', { mode: 0o644 });
    const a = new KeylogAppender(keys);
    assert.equal(readFileSync(path.join(keys, 'esp_sa'), 'utf8'), '');
    for (const l of LINES) a.append(l);
    a.append(LINES[1]!);
    // a file swapped in under the name after the start is never written
    rmSync(path.join(keys, 'ikev1_decryption_table'));
    const victim = path.join(base, 'victim');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, path.join(keys, 'ikev1_decryption_table'));
    a.append(LINES[0]!);
    a.close();
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    assert.equal(readFileSync(path.join(keys, 'esp_sa'), 'utf8'), `${LINES[1]!.line}\n${LINES[1]!.line}\n`);
    assert.equal(statSync(path.join(keys, 'esp_sa')).mode & 0o777, 0o600);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
