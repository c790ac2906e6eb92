// ike-scan 1.9.5 (Debian's package), the IKEv1 scanner auditors point at VPN gateways, against our gateway in
// network namespaces: its Main Mode probe gets a handshake with the transform it asked for and its weak default
// offer a NO-PROPOSAL-CHOSEN notify; in Aggressive Mode a pre-shared key connection answers only with
// allowAggressivePsk, and then psk-crack (its own SKEYID / HASH_R code) recovers the key from our message 2 with
// a word list: an independent check of HASH_R, and the reason that setting is off by default.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NetnsPair, interopSkipReason, netnsAvailable, runCommand, type Availability } from './harness/index.js';
import { OurGateway } from './ours.js';

function ikeScanAvailable(): Availability {
  for (const bin of ['ike-scan', 'psk-crack']) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
    if (r.error || !`${r.stdout}${r.stderr}`.includes('ike-scan')) return { ok: false, why: `${bin} missing (package ike-scan; scripts/install-interop-deps.sh)` };
  }
  return { ok: true, why: 'ike-scan' };
}

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? ikeScanAvailable() : netns);
const PSK = 'ike-scan-test-secret';

let pair: NetnsPair;
let dir: string;
before(async () => {
  if (skip) return;
  pair = await NetnsPair.create({ prefix: 'ikscan' });
  dir = mkdtempSync(path.join(os.tmpdir(), 'ike-scan-'));
});
after(async () => {
  await pair?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function ourGateway(connection: Record<string, unknown>): OurGateway {
  return new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    connections: { scan: { remote: '%any', auth: { psk: PSK }, esp: ['aes128-sha1'], ...connection } },
  });
}

/** ike-scan from side b (port 500 there) at our gateway; its output lines. */
async function ikeScan(args: string[]): Promise<string> {
  const r = await pair.run('b', 'ike-scan', [...args, pair.a.addr]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return r.stdout;
}

test('ike-scan, Main Mode: a handshake with the transform it asked for and our DPD vendor ID; its weak default offer gets NO-PROPOSAL-CHOSEN', { skip, timeout: 30_000 }, async () => {
  const gw = ourGateway({ ike: ['aes128-sha1-modp2048', 'aes256-sha256-modp3072'] });
  try {
    await gw.start();
    const ok = await ikeScan(['--trans=7/256,4,1,15']); // AES-256, SHA2-256, PSK, modp3072
    assert.match(ok, /Main Mode Handshake returned HDR=\(CKY-R=[0-9a-f]{16}\) SA=\(Enc=AES Hash=SHA2-256 Auth=PSK Group=15:modp3072 KeyLength=256 LifeType=Seconds LifeDuration\(4\)=0x00007080\)/);
    assert.match(ok, /VID=afcad71368a1f1c96b8696fc77570100 \(Dead Peer Detection v1\.0\)/);
    assert.match(ok, /1 returned handshake; 0 returned notify/);
    const weak = await ikeScan([]); // DES / 3DES with MD5 / SHA-1, modp768 / modp1024
    assert.match(weak, /Notify message 14 \(NO-PROPOSAL-CHOSEN\)/);
    const refused = await gw.waitFor((e) => e.event === 'error', 5000);
    assert.equal(refused.kind, 'NO_PROPOSAL_CHOSEN');
  } finally {
    await gw.stop();
  }
});

test('ike-scan, Aggressive Mode with a pre-shared key: a main-mode gateway refuses it; with allowAggressivePsk psk-crack recovers the key from our message 2', { skip, timeout: 30_000 }, async () => {
  const am = ['-A', '--id=client.example.com', '--idtype=2', '--dhgroup=14', '--trans=7/128,2,1,14'];
  // (a config with an aggressive-mode PSK connection and no allowAggressivePsk does not even load: config.test.ts)
  const closed = ourGateway({ ike: ['aes128-sha1-modp2048'] });
  try {
    await closed.start();
    assert.match(await ikeScan(am), /Notify message 14 \(NO-PROPOSAL-CHOSEN\)[\s\S]*0 returned handshake; 1 returned notify/);
    const e = await closed.waitFor((x) => x.event === 'error', 5000);
    assert.match(String(e.message), /started aggressive mode, but no connection for it uses aggressive mode/);
  } finally {
    await closed.stop();
  }
  const open = ourGateway({ mode: 'aggressive', localId: '@vpn.example.com', remoteId: '@client.example.com', ike: ['aes128-sha1-modp2048'], auth: { psk: PSK, allowAggressivePsk: true } });
  try {
    await open.start();
    const params = path.join(dir, 'psk-params');
    const out = await ikeScan([...am, `--pskcrack=${params}`]);
    assert.match(out, /Aggressive Mode Handshake returned .*ID\(Type=ID_FQDN, Value=vpn\.example\.com\) Hash\(20 bytes\)/);
    const words = path.join(dir, 'words');
    writeFileSync(words, ['password', 'ike-scan-test-secreT', PSK, 'letmein', ''].join('\n'));
    const crack = await runCommand('psk-crack', ['-d', words, params]);
    assert.match(crack.stdout, new RegExp(`key "${PSK}" matches SHA1 hash [0-9a-f]{40}`), crack.stdout + crack.stderr);
  } finally {
    await open.stop();
  }
});
