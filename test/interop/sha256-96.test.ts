// HMAC-SHA-256 with a 96-bit ICV (`sha256_96`): the truncation of Android 6 and Linux kernels before 2.6.33
// (draft-ietf-ipsec-ciph-sha-256-00). IKEv1 negotiates only "HMAC-SHA2-256", so both sides are configured.
// Two of our gateways with the TUN data plane and plain ESP; Wireshark is the independent judge: with the
// keys of `ike keylog` it checks every ICV of the capture as HMAC-SHA-256-96 (and refuses them as -128).
// strongSwan 5.9 cannot be the peer here: its `sha256_96 = yes` needs kernel ESP (xfrm), which this
// machine's kernel lacks (CONFIG_INET_ESP unset), and kernel-libipsec has no HMAC_SHA2_256_96 signer
// ("failed to create ESP context: unsupported integrity algorithm HMAC_SHA2_256_96", seen with 5.9.8).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsPair, interopSkipReason, netnsAvailable, readPcapPackets, runCommand, sleep, stopChild, tsharkAvailable } from './harness/index.js';
import { OurGateway, ourPairConfig, pingThrough, startBoth } from './ours.js';
import { controlRequest } from '../../ts/gateway/index.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? tsharkAvailable() : netns);
const PSK = 'sha256-96-test-secret';

let pair: NetnsPair;
let dir: string;
before(async () => {
  if (skip) return;
  pair = await NetnsPair.create({ prefix: 'ik96' });
  dir = mkdtempSync(path.join(os.tmpdir(), 'ike-sha96-'));
});
after(async () => {
  await pair?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const config = (side: 'a' | 'b', sha256_96: boolean) => ourPairConfig(pair[side], side, PSK, { esp: ['aes128-sha256'], ...(sha256_96 ? { sha256_96 } : {}) });

/** tshark's verdict on the ICVs of the capture's ESP packets with the esp_sa table in `keys`. */
async function icvVerdicts(pcap: string, keys: string): Promise<{ good: number; bad: number }> {
  const ts = await runCommand('tshark', ['-n', '-r', pcap, '-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE', '-Y', 'esp', '-T', 'fields', '-e', 'esp.icv_good', '-e', 'esp.icv_bad'], {
    env: { ...process.env, WIRESHARK_CONFIG_DIR: keys },
  });
  assert.equal(ts.code, 0, ts.stderr);
  const rows = ts.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
  const yes = (v: string | undefined) => v === '1' || v === 'True';
  return { good: rows.filter((r) => yes(r[0])).length, bad: rows.filter((r) => yes(r[1])).length };
}

test('sha256_96 on both sides: aes128-sha256_96 children, 12-octet ICVs on the wire that Wireshark verifies as HMAC-SHA-256-96', { skip, timeout: 60_000 }, async () => {
  const a = new OurGateway(pair, 'a', config('a', true));
  const b = new OurGateway(pair, 'b', config('b', true));
  try {
    const [childA, childB] = await startBoth(a, b);
    assert.deepEqual([childA.proposal, childB.proposal], ['aes128-sha256_96', 'aes128-sha256_96']);
    const pcap = path.join(dir, 'both.pcap');
    const dumpcap = pair.spawn('b', 'dumpcap', ['-q', '-i', pair.b.veth, '-f', 'esp', '-w', pcap], { stdio: 'ignore' });
    await sleep(1000);
    await pingThrough(pair, 'a', pair.a.peerInner, pair.a.inner);
    await pingThrough(pair, 'b', pair.b.peerInner, pair.b.inner);
    await sleep(300);
    await stopChild(dumpcap, 'SIGINT', 5000);

    // header 8 + IV 16 + ciphertext (whole AES blocks) + ICV 12
    const esp = readPcapPackets(pcap).filter((p) => p.protocol === 50);
    assert.ok(esp.length >= 12, `${esp.length} ESP packets captured`);
    for (const p of esp) assert.equal((p.payload.length - 8 - 16 - 12) % 16, 0, `ESP of ${p.payload.length} octets: not a 12-octet ICV`);

    const keys = path.join(dir, 'keys');
    const kl = await runCommand(process.execPath, [IKE, 'keylog', '--control', b.controlPath, '--out', keys]);
    assert.equal(kl.code, 0, kl.stderr);
    const table = path.join(keys, 'esp_sa');
    assert.match(readFileSync(table, 'utf8'), /"HMAC-SHA-256-96 \[draft-ietf-ipsec-ciph-sha-256-00\]"/);
    assert.deepEqual(await icvVerdicts(pcap, keys), { good: esp.length, bad: 0 });
    // the same keys read as RFC 4868's 128-bit ICV: Wireshark refuses every packet, so the check above is real
    writeFileSync(table, readFileSync(table, 'utf8').replaceAll('HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]', 'HMAC-SHA-256-128 [RFC4868]'));
    const wrong = await icvVerdicts(pcap, keys);
    assert.equal(wrong.good, 0, JSON.stringify(wrong));

    const status = (await controlRequest(a.controlPath, { cmd: 'status' })).status;
    assert.equal(status.dataplane?.drops.authFailed, 0, JSON.stringify(status.dataplane));
    const text = await runCommand(process.execPath, [IKE, 'status', '--control', a.controlPath]);
    assert.match(text.stdout, /child [0-9a-f]{8}_i [0-9a-f]{8}_o: aes128-sha256_96 tunnel, plain ESP/);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('sha256_96 on one side only: the SA comes up (nothing on the wire differs), every packet fails the other side\'s check', { skip, timeout: 60_000 }, async () => {
  const a = new OurGateway(pair, 'a', config('a', true));
  const b = new OurGateway(pair, 'b', config('b', false));
  try {
    const [childA, childB] = await startBoth(a, b);
    assert.deepEqual([childA.proposal, childB.proposal], ['aes128-sha256_96', 'aes128-sha256']);
    const r = await pair.ping('a', pair.a.peerInner, { src: pair.a.inner, count: 3 });
    assert.notEqual(r.code, 0, 'a ping through mismatched truncations');
    // 4 octets of ICV short, the ciphertext no longer ends on an AES block: `ike status` counts them malformed
    let drops = { malformed: 0, authFailed: 0 };
    for (let i = 0; i < 20 && drops.malformed < 3; i++) {
      drops = (await controlRequest(b.controlPath, { cmd: 'status' })).status.dataplane?.drops ?? drops;
      if (drops.malformed < 3) await sleep(100);
    }
    assert.ok(drops.malformed >= 3, `B's drops: ${JSON.stringify(drops)}`);
  } finally {
    await a.stop();
    await b.stop();
  }
});
