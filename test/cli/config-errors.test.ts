// `ike gateway --config FILE` with a config that must be refused: exit 2, one line per problem on stderr, nothing
// on stdout, no PSK text in the output, and no wait on a FIFO or /dev/zero.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
const PSK = 'a-psk-that-must-not-be-printed';

function gateway(config: string) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [IKE, 'gateway', '--no-control', '--config', config], { encoding: 'utf8', timeout: 10_000 });
  return { ...r, ms: performance.now() - t0 };
}

test('ike gateway: a broken, duplicated, binary or non-regular config is refused with exit 2 and one line each, never the PSK', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ike-cli-config-'));
  try {
    const fifo = path.join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    const files: [string, string | Buffer, RegExp][] = [
      ['syntax.json', `{ "connections": { "a": { "remote": "10.99.0.1", "auth": { "psk": "${PSK}" ] } } }`, /^ike: config: .*syntax\.json:1:\d+: not valid JSON: expected ',' between two members/],
      ['dup.json', `{ "connections": {\n "a": { "remote": "10.99.0.1", "auth": { "psk": "${PSK}" } },\n "a": { "remote": "10.99.0.2", "auth": { "psk": "${PSK}" } } } }`, /^ike: config: .*dup\.json:3:2: connections\.a is defined twice \(first on line 2\)/],
      ['bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]), /^ike: config: .*bom\.json: the config file starts with a UTF-8 byte order mark/],
      ['binary.json', Buffer.from([0x00, 0x01, 0x02, 0x03]), /^ike: config: .*binary\.json: the config file has binary content \(control byte 0x00 at line 1, column 1\)/],
    ];
    for (const [name, content] of files) writeFileSync(path.join(dir, name), content);
    const cases: [string, RegExp][] = [...files.map(([name, , re]) => [path.join(dir, name), re] as [string, RegExp]), [fifo, /is a FIFO, not a regular file$/], ['/dev/zero', /^ike: config: \/dev\/zero: the config file is a character device, not a regular file$/]];
    for (const [file, re] of cases) {
      const r = gateway(file);
      assert.equal(r.status, 2, `${file}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, re);
      assert.ok(!r.stderr.includes(PSK), r.stderr);
      assert.ok(r.ms < 5000, `${file}: ${r.ms} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
