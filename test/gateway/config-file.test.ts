// Reading the config file (ts/gateway/config/file.ts, json.ts) and the checks JSON.parse cannot make: syntax errors
// as line and column without the text (it may be a PSK), duplicate keys, non-regular files (a FIFO must not hang,
// /dev/zero must not be read), a size cap, BOM / UTF-16 / binary content, PSKs that are not UTF-8, PSK files
// others can read, and selectors that overlap (ts/gateway/config/overlaps.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../ts/gateway/config.js';
import { MAX_CONFIG_BYTES } from '../../ts/gateway/config/file.js';

const PSK = 'Tr0ub4dor-and-3-more-words';

/** loadConfig on `content` written to a fresh file: the ConfigError's lines, or the warnings when it loads. */
async function load(content: string | Buffer, name = 'gw.json', setup?: (dir: string) => void): Promise<{ errors?: readonly string[]; warnings?: string[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ike-config-file-'));
  try {
    const file = path.join(dir, name);
    writeFileSync(file, content);
    setup?.(dir);
    try {
      return { warnings: (await loadConfig(file, { IKE_PSK: 'a\ufffdb' })).warnings };
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      for (const l of e.errors) {
        assert.ok(!l.includes('\n'), `one line: ${l}`);
        assert.ok(!l.includes(PSK) && !l.includes('Tr0ub'), `the PSK leaked: ${l}`);
      }
      return { errors: e.errors };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const conn = (extra = '') => `{ "remote": "10.99.0.1", "auth": { "psk": "${PSK}" }${extra} }`;

test('config file: a JSON syntax error is reported as file:line:column and a reason, never the text around it', async () => {
  // the error is right after the PSK: JSON.parse would quote it
  const r = await load(`{\n  "connections": {\n    "a": { "remote": "10.99.0.1", "auth": { "psk": "${PSK}" x } }\n  }\n}\n`);
  assert.equal(r.errors?.length, 1);
  assert.match(r.errors![0]!, /gw\.json:3:\d+: not valid JSON: /);
  const col = Number(/gw\.json:3:(\d+)/.exec(r.errors![0]!)![1]);
  assert.equal(col, `    "a": { "remote": "10.99.0.1", "auth": { "psk": "${PSK}" x`.length);
  const trailing = await load(`{ "connections": { "a": ${conn()}, } }`);
  assert.match(trailing.errors![0]!, /gw\.json:1:\d+: not valid JSON: expected a property name in double quotes \(a trailing comma\?\)/);
  const comment = await load(`{ // site a\n "connections": { "a": ${conn()} } }`);
  assert.match(comment.errors![0]!, /gw\.json:1:3: not valid JSON: comments are not JSON \(use a "_comment" key\)/);
  const unclosed = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "psk": "${PSK}`);
  assert.match(unclosed.errors![0]!, /gw\.json:1:\d+: not valid JSON: /);
  assert.match((await load('  \n')).errors![0]!, /gw\.json: is empty \(expected a JSON object: \{ "connections": \{ \.\.\. \} \}\)$/);
});

test('config file: a connection name (or any key) written twice is an error naming both lines; _comment may repeat', async () => {
  const r = await load(`{\n "connections": {\n  "site-a": ${conn()},\n  "site-a": { "remote": "10.99.0.3", "auth": { "psk": "x" } }\n }\n}`);
  assert.deepEqual(r.errors?.map((e) => e.replace(/^.*gw\.json/, 'gw.json')), ['gw.json:4:3: connections.site-a is defined twice (first on line 3); JSON would keep only the last']);
  const inner = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "remote": "10.99.0.2", "auth": { "psk": "x" } } } }`);
  assert.match(inner.errors![0]!, /connections\.a\.remote is defined twice \(first on line 1\)/);
  const comments = await load(`{ "_comment": "one", "_comment": "two", "connections": { "a": ${conn()} } }`);
  assert.equal(comments.errors, undefined);
  // the same name in two different objects is fine
  const ok = await load(`{ "connections": { "a": ${conn()}, "b": { "remote": "10.99.0.5", "auth": { "psk": "y" } } } }`);
  assert.equal(ok.errors, undefined);
});

test('config file: a FIFO, a directory and /dev/zero are refused at once with one line; a file over the cap too', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ike-config-file-'));
  try {
    const fifo = path.join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    const reject = async (file: string, pattern: RegExp) => {
      const t0 = performance.now();
      await assert.rejects(loadConfig(file, {}), (e: unknown) => e instanceof ConfigError && e.errors.length === 1 && pattern.test(e.errors[0]!));
      assert.ok(performance.now() - t0 < 1000, `${file} took ${performance.now() - t0} ms`);
    };
    await reject(fifo, /fifo\.json: the config file is a FIFO, not a regular file$/);
    await reject(dir, /: the config file is a directory, not a regular file$/);
    await reject('/dev/zero', /^\/dev\/zero: the config file is a character device, not a regular file$/);
    const big = path.join(dir, 'big.json');
    writeFileSync(big, `{ "connections": { "a": ${conn()} }, "_comment": "${'x'.repeat(MAX_CONFIG_BYTES)}" }`);
    await reject(big, new RegExp(`big\\.json: the config file is \\d+ bytes, over the limit of ${MAX_CONFIG_BYTES}$`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config file: a BOM, UTF-16, binary content or bytes that are not UTF-8 give one clear line', async () => {
  const json = `{ "connections": { "a": ${conn()} } }`;
  const bom = await load(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]));
  assert.match(bom.errors![0]!, /the config file starts with a UTF-8 byte order mark \(BOM\); save it as UTF-8 without BOM$/);
  const utf16 = await load(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json, 'utf16le')]));
  assert.match(utf16.errors![0]!, /the config file is UTF-16 text; save it as UTF-8$/);
  const binary = await load(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]));
  assert.match(binary.errors![0]!, /the config file has binary content \(control byte 0x02 at line 1, column 5\), not a text file$/);
  const latin1 = await load(Buffer.from(`{\n "connections": { "a": { "remote": "10.99.0.1", "auth": { "psk": "gr\xfcn" } } } }`, 'latin1'));
  assert.match(latin1.errors![0]!, /the config file has bytes that are not UTF-8 at line 2, column 69; save it as UTF-8$/);
  assert.deepEqual([bom, utf16, binary, latin1].map((r) => r.errors!.length), [1, 1, 1, 1]);
});

test('config file: a PSK that is not UTF-8 is refused (file, environment, \\u escape); a PSK file others can read warns', async () => {
  const notUtf8 = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "pskFile": "a.psk" } } } }`, 'gw.json', (dir) =>
    writeFileSync(path.join(dir, 'a.psk'), Buffer.from([0x6b, 0x65, 0x79, 0xff, 0x0a]), { mode: 0o600 }),
  );
  assert.match(notUtf8.errors![0]!, /^connections\.a\.auth\.pskFile: \/.*a\.psk has bytes that are not UTF-8 at line 1, column 4; decoded, the key would differ from the peer's: write a binary key as hex \(0x\.\.\.\)$/);
  const env = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "pskEnv": "IKE_PSK" } } } }`);
  assert.match(env.errors![0]!, /^connections\.a\.auth\.pskEnv: the pre-shared key has bytes that are not UTF-8 text/);
  const surrogate = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "psk": "ab\\ud800cd" } } } }`);
  assert.match(surrogate.errors![0]!, /^connections\.a\.auth\.psk: the pre-shared key has bytes that are not UTF-8 text \(or a lone \\u surrogate escape\)/);
  // a well-formed pair of escapes is one character, and fine
  assert.equal((await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "psk": "\\ud83d\\udd11 key" } } } }`)).errors, undefined);

  const shared = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "pskFile": "a.psk" } } } }`, 'gw.json', (dir) => {
    writeFileSync(path.join(dir, 'a.psk'), `${PSK}\n`);
    chmodSync(path.join(dir, 'a.psk'), 0o644);
  });
  assert.equal(shared.errors, undefined);
  assert.equal(shared.warnings?.length, 1);
  assert.match(shared.warnings![0]!, /^connections\.a\.auth\.pskFile: \/.*a\.psk can be read or changed by group or others \(mode 0644\); chmod 600 it$/);
  const own = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "pskFile": "a.psk" } } } }`, 'gw.json', (dir) => {
    writeFileSync(path.join(dir, 'a.psk'), `${PSK}\n`);
    chmodSync(path.join(dir, 'a.psk'), 0o600);
  });
  assert.deepEqual(own.warnings, []);
  const fifo = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "pskFile": "a.psk" } } } }`, 'gw.json', (dir) => execFileSync('mkfifo', [path.join(dir, 'a.psk')]));
  assert.match(fifo.errors![0]!, /^connections\.a\.auth\.pskFile: \/.*a\.psk is a FIFO, not a regular file$/);
});

test('config: overlapping remoteTs across connections and localTs equal to remoteTs are warnings', () => {
  const c = (remote: string, localTs: unknown, remoteTs: unknown) => ({ remote, auth: { psk: 'k' }, localTs, remoteTs });
  const warnings = (connections: Record<string, unknown>) => {
    const r = parseConfig({ listen: { address: '10.99.0.2' }, connections }, { baseDir: '/', env: {} });
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
    return r.warnings;
  };
  assert.deepEqual(warnings({ a: c('10.99.0.1', '10.1.0.0/24', '10.2.0.0/24'), b: c('10.99.0.3', '10.1.0.0/24', '10.3.0.0/24') }), []);
  assert.deepEqual(warnings({ a: c('10.99.0.1', '10.1.0.0/24', ['10.2.0.0/16']), b: c('10.99.0.3', '10.1.0.0/24', ['10.9.0.0/24', '10.2.5.0-10.2.5.9']) }), [
    'connections.b.remoteTs: 10.2.5.0-10.2.5.9 overlaps 10.2.0.0/16 in connections.a.remoteTs: traffic to the common addresses can go into only one of the two tunnels',
  ]);
  assert.deepEqual(warnings({ a: c('10.99.0.1', ['10.1.0.0/24', '10.5.0.1'], ['10.5.0.1', '10.1.0.0/24']) }), [
    'connections.a.remoteTs: is the same as localTs: the tunnel would carry traffic from those addresses to themselves; is one of them pasted twice?',
  ]);
  // an IPv6 selector does not overlap an IPv4 one; dynamic selectors are not compared
  assert.deepEqual(warnings({ a: c('10.99.0.1', '10.1.0.0/24', ['10.2.0.0/24', '2001:db8::/32']), b: c('10.99.0.3', '%dynamic', ['::/0']), d: c('10.99.0.4', '%dynamic', '%dynamic') }), [
    'connections.b.remoteTs: ::/0 overlaps 2001:db8::/32 in connections.a.remoteTs: traffic to the common addresses can go into only one of the two tunnels',
  ]);
});

test('config: an XAUTH user file is read like the config (a FIFO refused at once) and warns when others can change it', async () => {
  const line = 'alice:scrypt$1024$8$1$00112233445566778899aabbccddeeff$' + '00'.repeat(32);
  const json = `{ "connections": { "ra": { "remote": "%any", "auth": { "psk": "${PSK}" }, "xauth": { "users": "u.txt" } } } }`;
  const writable = await load(json, 'gw.json', (dir) => {
    writeFileSync(path.join(dir, 'u.txt'), `${line}\n`);
    chmodSync(path.join(dir, 'u.txt'), 0o664);
  });
  assert.equal(writable.errors, undefined, writable.errors?.join('\n'));
  assert.ok(writable.warnings!.some((w) => /^connections\.ra\.xauth\.users: \/.*u\.txt can be changed by group or others \(mode 0664\); chmod go-w it$/.test(w)), writable.warnings!.join('\n'));
  const fifo = await load(json, 'gw.json', (dir) => execFileSync('mkfifo', [path.join(dir, 'u.txt')]));
  assert.match(fifo.errors![0]!, /^connections\.ra\.xauth\.users: \/.*u\.txt is a FIFO, not a regular file$/);
});

test('config: a config file holding a PSK warns when group or others can read it; at 0600 it does not', async () => {
  const json = `{ "connections": { "a": ${conn()} } }`;
  const open = await load(json, 'gw.json', (dir) => chmodSync(path.join(dir, 'gw.json'), 0o644));
  assert.deepEqual(open.warnings?.map((w) => w.replace(/^.*gw\.json/, 'gw.json')), [
    'gw.json: holds a pre-shared key (connections.a.auth.psk) and can be read or changed by group or others (mode 0644); chmod 600 it, or use pskFile / pskEnv',
  ]);
  assert.deepEqual((await load(json, 'gw.json', (dir) => chmodSync(path.join(dir, 'gw.json'), 0o600))).warnings, []);
  // no key in the file: nothing to say about its mode
  const noKey = await load(`{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "pskFile": "a.psk" } } } }`, 'gw.json', (dir) => {
    chmodSync(path.join(dir, 'gw.json'), 0o644);
    writeFileSync(path.join(dir, 'a.psk'), PSK, { mode: 0o600 });
  });
  assert.deepEqual(noKey.warnings, []);
});

test('config file: a .yaml / .yml file is YAML 1.2 with the same checks: line and column without the text, duplicate keys, one document, bounded aliases', async () => {
  const good = `connections:\n  a:\n    remote: 10.99.0.1\n    auth: { psk: "${PSK}" }\n    fragmentation: yes\n`;
  const loaded = await load(good, 'gw.yaml');
  assert.equal(loaded.errors, undefined);
  assert.ok(loaded.warnings?.some((w) => /gw\.yaml: holds a pre-shared key/.test(w)), 'the same PSK-file warning as for JSON');
  assert.equal((await load(good, 'gw.yml')).errors, undefined);
  // YAML 1.2: "yes" is the string the config wants, not a boolean (YAML 1.1 would turn it into true)
  const bad = await load(good.replace('fragmentation: yes', 'fragmentation: true'), 'gw.yaml');
  assert.match(bad.errors?.join('\n') ?? '', /fragmentation/);
  // an unclosed quote right after the PSK: the library's own message would quote the line
  const unclosed = await load(`connections:\n  a:\n    remote: 10.99.0.1\n    auth: { psk: "${PSK} }\n`, 'gw.yaml');
  assert.ok(unclosed.errors && unclosed.errors.length >= 1);
  assert.match(unclosed.errors[0]!, /gw\.yaml:\d+:\d+: not valid YAML: /);
  const dup = await load(`connections:\n  site-a: { remote: 10.99.0.1, auth: { psk: x } }\n  site-a: { remote: 10.99.0.3, auth: { psk: y } }\n`, 'gw.yaml');
  assert.deepEqual(dup.errors?.map((e) => e.replace(/^.*gw\.yaml/, 'gw.yaml')), ['gw.yaml:3:3: not valid YAML: site-a is defined twice in one mapping']);
  const tab = await load(`connections:\n\ta: { remote: 10.99.0.1 }\n`, 'gw.yaml');
  assert.match(tab.errors![0]!, /gw\.yaml:2:1: not valid YAML: /);
  const docs = await load(`connections: {}\n---\nconnections: {}\n`, 'gw.yaml');
  assert.match(docs.errors![0]!, /more than one document/);
  // a "billion laughs" file: each level doubles the last
  let laughs = 'a0: &a0 [x, x]\n';
  for (let i = 1; i < 30; i++) laughs += `a${i}: &a${i} [*a${i - 1}, *a${i - 1}]\n`;
  const boom = await load(laughs + 'connections: {}\n', 'gw.yaml');
  assert.match(boom.errors![0]!, /gw\.yaml: not valid YAML: aliases expand too far/);
  assert.match((await load('  \n', 'gw.yaml')).errors![0]!, /gw\.yaml: is empty/);
});
