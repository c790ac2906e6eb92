// `ike gateway` run as a daemon, operated from the command line: ike list-conns / initiate / terminate /
// reload over its control socket, SIGHUP re-reading the config (a broken file refused, the old one kept), and
// the client finding the one socket of this user by itself. The gateway is a real `ike gateway` process; its
// peer a Gateway in this process, both on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, parseConfig } from '../../ts/gateway/index.js';
import { events, peerJson, until } from '../gateway/peers.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
const base = 41000 + (process.pid % 1500) * 4;
/** The second daemon's ports (IKE, NAT-T), away from the first pair's. */
const base2 = 47500 + (process.pid % 1000) * 2;
const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-conns-'));
const sock = path.join(dir, 'gw.sock');
const file = path.join(dir, 'gw.json');

function ike(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [IKE, ...args], { encoding: 'utf8', timeout: 30_000, env }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

const writeConfig = (over: Record<string, unknown> = {}) => writeFileSync(file, JSON.stringify(peerJson(base, base + 2, over)), { mode: 0o600 });

let peer: Gateway;
let ev: ReturnType<typeof events>;
let daemon: ChildProcess;
let out = '';

before(async () => {
  const r = parseConfig(peerJson(base + 2, base), { baseDir: '.', env: {} });
  assert.ok(r.ok);
  peer = new Gateway(r.config);
  ev = events(peer);
  await peer.start();
  writeConfig();
  daemon = spawn(process.execPath, [IKE, 'gateway', '--config', file, '--control', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  daemon.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  await until(() => out.includes('control path='), 10_000, 'the daemon to listen');
});

after(async () => {
  if (daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  await peer?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('list-conns, initiate and terminate from the command line', async () => {
  let r = await ike(['list-conns', '--control', sock]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^peer: down, main mode to 127\.0\.0\.1/);
  r = await ike(['initiate', 'peer', '--control', sock, '--timeout', '10s']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^peer: up, child [0-9a-f]{8}_i [0-9a-f]{8}_o /);
  r = await ike(['list-conns', '--control', sock, '--json']);
  assert.deepEqual((JSON.parse(r.stdout) as { name: string; state: string }[]).map((c) => [c.name, c.state]), [['peer', 'up']]);
  r = await ike(['terminate', 'peer', '--control', sock]);
  assert.equal(r.code, 0, r.stderr);
  await until(() => ev.down.length === 1, 5_000, 'the peer to hear the Delete');
  r = await ike(['initiate', 'nope', '--control', sock]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no connection named 'nope'/);
  r = await ike(['initiate', '--control', sock]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /needs one connection name/);
  r = await ike(['initiate', 'peer', '--timeout', 'soon', '--control', sock]);
  assert.equal(r.code, 2);
});

test('SIGHUP and ike reload apply a new config; a broken one is refused and the gateway keeps running', async () => {
  writeConfig({ initiate: true });
  daemon.kill('SIGHUP');
  await until(() => / reload .*changed=\["peer"\]/.test(out), 10_000, 'the reload line');
  await until(() => ev.childUp.length === 2, 10_000, 'the changed connection (now initiate) to come up');
  writeFileSync(file, '{ "listen": ', { mode: 0o600 });
  daemon.kill('SIGHUP');
  await until(() => / error kind=CONFIG message=.*config refused, the running configuration stays/.test(out), 10_000, 'the refusal');
  let r = await ike(['reload', '--control', sock]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /config refused/);
  r = await ike(['list-conns', '--control', sock]);
  assert.match(r.stdout, /^peer: up/, 'still running its SAs');
  writeConfig({ initiate: true });
  r = await ike(['reload', '--control', sock]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /unchanged: peer/);
  assert.equal(daemon.exitCode, null);
});

test('without --control the gateway takes a socket per listen address and the client finds the one there', async () => {
  const rt = mkdtempSync(path.join(os.tmpdir(), 'ike-rt-'));
  const env = { ...process.env, IKE_CONTROL_DIR: rt };
  let second: ChildProcess | undefined;
  try {
    let r = await ike(['list-conns'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no gateway control socket in/);
    const other = path.join(dir, 'other.json');
    writeFileSync(other, JSON.stringify(peerJson(base2, base + 2)), { mode: 0o600 });
    second = spawn(process.execPath, [IKE, 'gateway', '--config', other], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let text = '';
    second.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
    second.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
    await until(() => text.includes('control path=') || second!.exitCode !== null, 10_000, 'the second daemon to listen');
    assert.equal(second.exitCode, null, text);
    assert.ok(text.includes(`path=${path.join(rt, `ikev1-engine-127.0.0.1-${base2}.sock`)}`), text);
    r = await ike(['list-conns'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^peer: down/);
    // a second socket in the directory: the client asks which one
    writeFileSync(path.join(rt, 'ikev1-engine-x.sock'), '');
    symlinkSync(sock, path.join(rt, 'ikev1-engine-y.sock'));
    r = await ike(['list-conns'], env);
    assert.equal(r.code, 0, 'a plain file and a symlink are not sockets of ours');
    const extra = net.createServer();
    await new Promise<void>((res) => extra.listen(path.join(rt, 'ikev1-engine-z.sock'), res));
    r = await ike(['list-conns'], env);
    extra.close();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /several gateways run here; choose one with --control: .*ikev1-engine-127\.0\.0\.1-\d+\.sock.*ikev1-engine-z\.sock/);
  } finally {
    if (second && second.exitCode === null) {
      second.kill('SIGTERM');
      await new Promise((res) => second!.once('exit', res));
    }
    rmSync(rt, { recursive: true, force: true });
  }
});
