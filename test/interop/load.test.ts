// `ike load` (the CLI, in namespace a) against a real strongSwan 5.9 responder (namespace b): many
// complete Main Mode + Quick Mode setups, each on a fresh ISAKMP SA, deleted once up. strongSwan runs
// with kernel-netlink (this kernel has no ESP: it drops each CHILD_SA after Quick Mode, which costs it
// nothing we measure), half-open limits raised, low log levels so logging does not dominate.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable, pairGatewayConfig } from './harness/index.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const PSK = 'interop-load-secret';
const IKE_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikld' });
});
after(async () => {
  await pair?.destroy();
});

interface LoadJson {
  count: number;
  done: number;
  failed: number;
  seconds: number;
  setupsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failures: Record<string, number>;
}

test('ike load: 300 setups aes128-sha1-modp2048 at concurrency 32 against strongSwan, >= 95% done', { skip, timeout: 90_000 }, async () => {
  const ss = new StrongSwanPeer(pair, 'b', {
    ike: 'aes128-sha1-modp2048',
    esp: 'aes128-sha1',
    psk: PSK,
    kernel: 'netlink',
    unique: 'never',
    logLevel: 1,
    cfgLogLevel: 1,
    knlLogLevel: 0,
    threads: 8,
    retransmitTries: 2,
    retransmitTimeout: 2,
  });
  await ss.start();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-load-interop-'));
  const file = path.join(dir, 'load.json');
  writeFileSync(
    file,
    JSON.stringify(pairGatewayConfig(pair.a, PSK, { retransmit: { tries: 3, timeout: '2s', factor: 1.5 } })),
    { mode: 0o600 },
  );
  // the harness unrefs its children: this keeps the test's event loop alive while it waits on them
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const child = pair.spawnNode('a', [IKE_BIN, 'load', '--config', file, '--connection', 's', '--count', '300', '--concurrency', '32', '--timeout', '20', '--json']);
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    assert.ok(out.trim(), `no summary; exit ${code}; stderr:\n${err}`);
    const r = JSON.parse(out) as LoadJson;
    process.stderr.write(`# ike load vs strongSwan: ${JSON.stringify(r)}\n`);
    assert.equal(r.count, 300);
    assert.ok(r.done >= 285, `only ${r.done}/300 done: ${JSON.stringify(r.failures)}\n${err}\n${ss.logTail(30)}`);
    assert.equal(r.done + r.failed, 300);
    assert.equal(code, r.failed === 0 ? 0 : 1);
    assert.match(err, /done \d+\/300/, 'a progress line on stderr');
    // strongSwan got our deletes: no IKE SA stays behind (give the last deletes a moment)
    let left = -1;
    for (let i = 0; i < 20 && left !== 0; i++) {
      left = (await ss.listSas()).length;
      if (left !== 0) await new Promise((res) => setTimeout(res, 250));
    }
    assert.ok(left <= 300 - r.done, `strongSwan still holds ${left} IKE SAs`);
  } finally {
    clearInterval(keepAlive);
    await ss.stop(1000);
  }
});
