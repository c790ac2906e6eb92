// The control socket of `ike gateway` (ts/gateway/control.ts) and the `ike status` / `ike keylog` commands,
// against two real gateways on loopback: status without key material, key files that match the SAs, a
// second gateway refused on a live socket, a stale socket replaced, no gateway -> exit 1 with one line.
import { after, before, test } from 'node:test';
import type { Phase1StatusReport } from '../../ts/gateway/status.js';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlError, ControlServer, controlRequest, Gateway } from '../../ts/gateway/index.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
import { peerConfig, until } from './peers.js';

const config = (l: number, r: number, over: Record<string, unknown> = {}) => peerConfig(l, r, { auth: { psk: 'control test secret' }, ...over });
const base = 30000 + (process.pid % 2000) * 5;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-control-'));



/** `ike ...` as a child process, without blocking this process's event loop (its gateways must answer). */
function ike(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [IKE, ...args], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

let r: Gateway;
let i: Gateway;
let cr: ControlServer;
let ci: ControlServer;
const sockR = path.join(dir, 'r.sock');
const sockI = path.join(dir, 'i.sock');

before(async () => {
  r = new Gateway(config(base, base + 2));
  // forced encapsulation counts as behind a NAT: the initiator sends keepalives every second
  i = new Gateway(config(base + 2, base, { initiate: true, encap: true, natKeepalive: '1s' }));
  cr = await ControlServer.listen(r, sockR);
  ci = await ControlServer.listen(i, sockI);
  let up = 0;
  r.on('child-up', () => up++);
  i.on('child-up', () => up++);
  await r.start();
  await i.start();
  await until(() => up === 2, 10_000);
});

after(async () => {
  await i?.stop();
  await r?.stop();
  await ci?.close();
  await cr?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every secret either gateway holds, hex: none of them may appear in a status answer. */
function secrets(): string[] {
  const out: string[] = [];
  for (const gw of [r, i]) {
    for (const sa of gw.phase1Sas()) out.push(...[sa.skeyidD, sa.skeyidA, sa.skeyidE, sa.encryptionKey, sa.lastIv].map((b) => b.toString('hex')));
    for (const c of gw.childSas()) {
      for (const k of [c.inbound, c.outbound]) out.push(...[k.encryptionKey, k.integrityKey, k.salt].filter((b) => b.length >= 4).map((b) => b.toString('hex')));
    }
  }
  assert.ok(out.length >= 10);
  return out;
}

test('status over the socket: both SAs with their children, counters, NAT and lifetimes; no key bytes anywhere', async () => {
  const res = await controlRequest(sockI, { cmd: 'status' });
  const s = res.status;
  assert.equal(s.sas.length, 1);
  const sa = s.sas[0]!;
  assert.equal(sa.role, 'initiator');
  assert.equal(sa.cookieI, i.phase1Sas()[0]!.cookieI.toString('hex'));
  assert.equal(sa.algorithms, 'aes128-sha256-ecp256');
  assert.deepEqual(sa.remote, { address: '127.0.0.1', port: base + 1 }, 'IKE floated to the NAT-T port');
  assert.equal(sa.nat.local, false, 'forced encapsulation is not a NAT');
  assert.equal((sa as Phase1StatusReport).nat.encapForced, true);
  assert.equal(sa.nat.keepaliveSeconds, 1, 'forced encapsulation keeps its keepalives');
  assert.ok(sa.lifetimeRemainingSeconds > 0 && sa.lifetimeRemainingSeconds <= 8 * 3600);
  assert.equal(sa.children.length, 1);
  const child = sa.children[0]!;
  assert.equal(child.encapsulation, true);
  assert.equal(child.spiOut, i.childSas()[0]!.spiOut.toString('hex'));

  // traffic shows in the counters of both ends
  for (let n = 0; n < 3; n++) i.sendEsp('peer', Buffer.alloc(100, n));
  const rs = (await controlRequest(sockR, { cmd: 'status' })).status;
  await until(() => r.status().sas[0]!.children[0]!.in.packets === 3, 2000);
  const after = (await controlRequest(sockR, { cmd: 'status' })).status.sas[0]!;
  assert.equal(rs.sas[0]!.role, 'responder');
  assert.equal(after.children[0]!.spiIn, child.spiOut);
  assert.deepEqual(after.children[0]!.in, { packets: 3, bytes: 300 });
  assert.deepEqual((await controlRequest(sockI, { cmd: 'status' })).status.sas[0]!.children[0]!.out, { packets: 3, bytes: 300 });

  // keepalives every second while we count as behind a NAT
  await until(() => i.status().sas[0]!.nat.keepalivesSent >= 1, 3000);
  assert.equal(r.status().sas[0]!.nat.keepaliveSeconds, 0, 'the responder is not behind a NAT: no keepalives');

  // no secret in the answer, nor in what `ike status` prints (table or JSON)
  const text = await ike(['status', '--control', sockI]);
  const json = await ike(['status', '--control', sockR, '--json']);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(json.code, 0, json.stderr);
  assert.match(text.stdout, new RegExp(`peer: initiator main mode, 127\\.0\\.0\\.1:${base + 3} <-> 127\\.0\\.0\\.1:${base + 1}`));
  assert.match(text.stdout, new RegExp(`child ${child.spiIn}_i ${child.spiOut}_o: `));
  assert.equal((JSON.parse(json.stdout) as { sas: unknown[] }).sas.length, 1);
  const everything = [JSON.stringify(res), JSON.stringify(rs), text.stdout, json.stdout].join('\n').toLowerCase();
  for (const k of secrets()) assert.ok(!everything.includes(k), `key bytes ${k.slice(0, 8)}... in the status output`);
});

test('ike keylog writes Wireshark files whose lines are those of the current SAs', async () => {
  const out = path.join(dir, 'keys');
  const res = await ike(['keylog', '--control', sockR, '--out', out]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /wrote 1 ISAKMP SA key\(s\).*\n.*wrote 2 ESP SA row\(s\)/);
  assert.match(res.stdout, /tshark/);
  const ike1 = readFileSync(path.join(out, 'ikev1_decryption_table'), 'utf8').trim().split('\n');
  const esp = readFileSync(path.join(out, 'esp_sa'), 'utf8').trim().split('\n');
  const sa = r.phase1Sas()[0]!;
  assert.deepEqual(ike1, [`${sa.cookieI.toString('hex')},${sa.encryptionKey.toString('hex')}`]);
  const child = r.childSas()[0]!;
  assert.equal(esp.length, 2);
  assert.ok(esp.some((l) => l.includes(`"0x${child.spiIn.toString('hex')}"`) && l.includes(child.inbound.encryptionKey.toString('hex'))));
  assert.ok(esp.some((l) => l.includes(`"0x${child.spiOut.toString('hex')}"`) && l.includes(child.outbound.encryptionKey.toString('hex'))));
  assert.equal(statSync(path.join(out, 'esp_sa')).mode & 0o777, 0o600);
  // the initiator's files describe the same SAs: Wireshark decrypts either side's capture with either
  const fromI = await ike(['keylog', '--control', sockI, '--out', path.join(dir, 'keys-i')]);
  assert.equal(fromI.code, 0, fromI.stderr);
  assert.deepEqual(readFileSync(path.join(dir, 'keys-i', 'ikev1_decryption_table'), 'utf8').trim().split('\n'), ike1);
});

test('ike keylog / ike gateway --keylog: no write through a symlink, a directory others can write refused (exit 1, one line)', async () => {
  const out = path.join(dir, 'keys-link');
  mkdirSync(out, { mode: 0o700 });
  const victim = path.join(dir, 'victim');
  writeFileSync(victim, 'precious\n', { mode: 0o644 });
  symlinkSync(victim, path.join(out, 'esp_sa'));
  const res = await ike(['keylog', '--control', sockR, '--out', out]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.equal(lstatSync(path.join(out, 'esp_sa')).mode & 0o777, 0o600);
  assert.ok(lstatSync(path.join(out, 'esp_sa')).isFile());

  const open = path.join(dir, 'keys-open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const refused = await ike(['keylog', '--control', sockR, '--out', open]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, /^ike: keylog directory .* is writable by group or others \(mode 0777\): chmod go-w it, or use another directory\n$/);
  const cfg = path.join(dir, 'gw-keylog.json');
  writeFileSync(cfg, JSON.stringify({ listen: { address: '127.0.0.1', port: base + 3, nattPort: base + 4 }, connections: { x: { remote: '127.0.0.1', auth: { psk: 'x' }, keylog: true } } }));
  const gw = await ike(['gateway', '--config', cfg, '--no-control', '--keylog', open]);
  assert.equal(gw.code, 1);
  assert.match(gw.stderr, /ike: keylog directory .* is writable by group or others/);
  assert.deepEqual(readdirSync(open), []);
});

test('the socket is owner-only, a live one is refused, a stale one replaced, a plain file left alone', async () => {
  assert.equal(statSync(sockI).mode & 0o777, 0o600);
  await assert.rejects(ControlServer.listen(r, sockI), (e: unknown) => e instanceof ControlError && e.kind === 'IN_USE' && /already running/.test(e.message));
  assert.ok(existsSync(sockI), 'the refused listener must not remove the live socket');
  assert.equal((await controlRequest(sockI, { cmd: 'status' })).status.sas.length, 1, 'the first gateway still answers');

  // `ike gateway` on a live control path: exit 1, one line, before binding any port
  const cfg = path.join(dir, 'gw.json');
  writeFileSync(cfg, JSON.stringify({ listen: { address: '127.0.0.1', port: base + 3, nattPort: base + 4 }, connections: { x: { remote: '127.0.0.1', auth: { psk: 'x' } } } }), { mode: 0o600 });
  const refused = await ike(['gateway', '--config', cfg, '--control', sockI]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  assert.match(refused.stderr, /^ike: a gateway is already running with control socket /);

  // a socket file whose gateway died (SIGKILL: nobody removed it) is replaced
  const stale = path.join(dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await new Promise((res) => child.once('exit', res));
  assert.ok(statSync(stale).isSocket(), 'the dead process left its socket behind');
  const replaced = await ControlServer.listen(r, stale);
  assert.equal((await controlRequest(stale, { cmd: 'status' })).status.sas[0]!.role, 'responder');
  await replaced.close();
  assert.ok(!existsSync(stale), 'close() removes the socket');

  const plain = path.join(dir, 'plain');
  writeFileSync(plain, 'not a socket');
  await assert.rejects(ControlServer.listen(r, plain), (e: unknown) => e instanceof ControlError && e.kind === 'NOT_A_SOCKET');
  assert.equal(readFileSync(plain, 'utf8'), 'not a socket');
});

test('unknown commands get an error answer; ike status / keylog with no gateway: exit 1, one line', async () => {
  await assert.rejects(controlRequest(sockR, { cmd: 'nope' } as never), /unknown cmd "nope"/);
  const none = path.join(dir, 'nobody.sock');
  for (const args of [['status', '--control', none], ['keylog', '--control', none, '--out', path.join(dir, 'none')]]) {
    const res = await ike(args);
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, `ike: no gateway running at ${none}\n`);
  }
  assert.ok(!existsSync(path.join(dir, 'none')), 'no key directory without a gateway');
  const usage = spawnSync(process.execPath, [IKE, 'keylog', '--control', none], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /^ike keylog: missing --out DIR/);
});

test('an unauthenticated message with the right cookies from a new port does not move the peer', async () => {
  const before = r.status().sas[0]!;
  assert.equal(before.nat.natt, true);
  // an encrypted Informational that does not decrypt: header (RFC 2408 3.1) + 32 random octets
  const sa = r.phase1Sas()[0]!;
  const header = Buffer.alloc(28);
  sa.cookieI.copy(header, 0);
  sa.cookieR.copy(header, 8);
  header[16] = 8; // HASH
  header[17] = 0x10;
  header[18] = 5; // Informational
  header[19] = 1; // encrypted
  randomBytes(4).copy(header, 20);
  header.writeUInt32BE(28 + 32, 24);
  const forged = Buffer.concat([Buffer.alloc(4), header, randomBytes(32)]);
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  try {
    await new Promise<void>((res, rej) => s.send(forged, before.local.port, '127.0.0.1', (e) => (e ? rej(e) : res())));
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(r.status().sas[0]!.remote, before.remote, 'a forged message moved the peer');
    assert.equal(r.status().sas.length, 1);
  } finally {
    s.close();
  }
});
