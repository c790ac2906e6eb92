// Every `ike` command and benchmark suite as a user runs it: -h / --help prints that command's usage (and runs
// nothing), --version, unknown options and bad values exit 2 with one line and no stack trace, durations take
// units; `ike passwd` on a terminal does not echo the password.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserFile } from '../../ts/ike/xauth-users.js';

const IKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'ike.js');
const ROOT = path.resolve(path.dirname(IKE), '..');

function ike(...args: string[]) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [IKE, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

const COMMANDS: [string[], string][] = [
  [['demo'], 'ike demo'],
  [['gateway'], 'ike gateway'],
  [['status'], 'ike status'],
  [['keylog'], 'ike keylog'],
  [['list-conns'], 'ike list-conns'],
  [['initiate'], 'ike initiate NAME'],
  [['terminate'], 'ike terminate NAME'],
  [['reload'], 'ike reload'],
  [['load'], 'ike load'],
  [['passwd'], 'ike passwd'],
  [['soak'], 'ike soak'],
  [['bench', 'handshakes'], 'ike bench handshakes'],
  [['bench', 'gateway'], 'ike bench gateway'],
  [['bench', 'crypto'], 'ike bench crypto'],
  [['bench', 'codec'], 'ike bench codec'],
  [['bench', 'esp'], 'ike bench esp'],
  [['bench', 'memory'], 'ike bench memory'],
  [['bench', 'flood'], 'ike bench flood'],
];

test('cli: -h and --help print each command\'s own usage on stdout, exit 0, and run nothing', () => {
  for (const [argv, name] of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const r = ike(...argv, flag);
      assert.equal(r.status, 0, `${name} ${flag}: ${r.stderr}`);
      assert.equal(r.stderr, '', `${name} ${flag}`);
      assert.ok(r.stdout.startsWith(`usage: ${name}`), `${name} ${flag}: ${r.stdout.slice(0, 80)}`);
      assert.match(r.stdout, /-h, --help +print this usage and exit/);
      // a benchmark that ran would take seconds and print a table
      assert.ok(r.ms < 5000, `${name} ${flag} took ${r.ms.toFixed(0)} ms`);
    }
  }
  const top = ike('--help');
  assert.equal(top.status, 0);
  assert.match(top.stdout, /^usage: ike <command>/);
  assert.equal(ike('-h').stdout, top.stdout);
  assert.match(ike('bench', '--help').stdout, /^usage: ike bench SUITE/);
});

test('cli: --version prints the package name and version', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  const r = ike('--version');
  assert.equal(r.status, 0);
  assert.equal(r.stdout, `${pkg.name} ${pkg.version}\n`);
});

test('cli: `npx ike` in the clone runs this checkout\'s bin/ike.js (the package links itself as a file: dev dependency)', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; devDependencies: Record<string, string> };
  assert.equal(pkg.devDependencies[pkg.name], 'file:.');
  // --no: never ask the registry (a missing link fails here instead of fetching some other 'ike'); --: the rest is ike's, not npx's
  const r = spawnSync('npx', ['--no', '--', 'ike', '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${pkg.name} ${pkg.version}\n`);
});

test('cli: unknown options and bad values exit 2 with one line naming the problem, never a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['demo', '--fast'], /^ike demo: unknown option --fast \(try 'ike demo --help'\)$/],
    [['gateway', '--config', 'x.json', '--jsn'], /^ike gateway: unknown option --jsn \(did you mean --json\?\)/],
    [['status', 'extra'], /^ike status: unexpected argument 'extra'/],
    [['keylog', '--control', 'x'], /^ike keylog: missing --out DIR/],
    [['load', '--config', 'x', '--connection', 'y', '--count', '3', '--concurrency', 'x'], /^ike load: --concurrency must be a whole number, not 'x'/],
    [['load', '--config', 'x', '--connection', 'y', '--count', '3', '--timeout', '1x'], /^ike load: --timeout must be a duration/],
    [['passwd', 'a', 'b'], /^ike passwd: too many arguments: 'b'/],
    [['terminate', 'a', '--timeout', '5s'], /^ike terminate: unknown option --timeout/],
    [['reload', 'extra'], /^ike reload: unexpected argument 'extra'/],
    [['soak', '--seconds', 'x'], /^ike soak: --seconds must be a duration/],
    [['soak', '--minuts', '1'], /^ike soak: unknown option --minuts \(did you mean --minutes\?\)/],
    [['bench', 'handshakes', '--mode', 'agressive'], /^ike bench handshakes: --mode must be main or aggressive, not 'agressive' \(did you mean 'aggressive'\?\)/],
    [['bench', 'handshakes', '--duration', '1s', '--concurency', '2'], /^ike bench handshakes: unknown option --concurency \(did you mean --concurrency\?\)/],
    [['bench', 'gateway', '--concurrency', 'x'], /^ike bench gateway: --concurrency must be a whole number, not 'x'/],
    [['bench', 'gateway', '--duration', 'soon'], /^ike bench gateway: --duration must be a duration/],
    [['bench', 'codec', '--time', '-1'], /^ike bench codec: --time must be a duration/],
    [['bench', 'crypto', '--groups', '14,99'], /^ike bench crypto: --groups: '99' is not a DH group number/],
    [['bench', 'memory', '--count', '0'], /^ike bench memory: --count must be a whole number >= 1, not '0'/],
    [['bench', 'esp', '--quik'], /^ike bench esp: unknown option --quik \(did you mean --quick\?\)/],
    [['bench', 'nope'], /^ike: ike bench needs a suite: .* \(not 'nope'\)/],
    [['nope'], /^ike: unknown command 'nope'/],
  ];
  for (const [argv, re] of cases) {
    const r = ike(...argv);
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', argv.join(' '));
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(lines[0]!, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('cli: durations with units reach the benchmarks (--duration 300ms, --time 20ms)', () => {
  const r = ike('bench', 'handshakes', '--duration', '300ms', '--json');
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { handshakes: number; seconds?: number };
  assert.ok(result.handshakes > 0);
  const codec = ike('bench', 'codec', '--time', '20ms', '--json');
  assert.equal(codec.status, 0, codec.stderr);
  const rows = (JSON.parse(codec.stdout) as { timeMs: number; rows: { msgsPerSec: number }[] });
  assert.equal(rows.timeMs, 20);
  assert.ok(rows.rows.every((x) => x.msgsPerSec > 0));
});

test('cli: ike passwd on a terminal asks twice without echo; the line it prints verifies', async (t) => {
  const python = spawnSync('python3', ['-c', 'import pty'], { encoding: 'utf8' });
  if (python.status !== 0) {
    t.skip('python3 with the pty module is needed to give ike passwd a terminal');
    return;
  }
  // python's pty gives the child a real terminal (echo on by default): whatever the terminal shows comes back
  const script = `
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], sys.argv[2], 'passwd', 'grace'])
out = b''
def read_until(marker):
    global out
    while marker not in out:
        out += os.read(fd, 1024)
read_until(b'password: ')
os.write(fd, b'hunter2 pw\\r')
read_until(b'again: ')
os.write(fd, b'hunter2 pw\\r')
try:
    while True:
        chunk = os.read(fd, 1024)
        if not chunk: break
        out += chunk
except OSError:
    pass
os.waitpid(pid, 0)
sys.stdout.write(out.decode())
`;
  const r = spawnSync('python3', ['-c', script, process.execPath, IKE], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!r.stdout.includes('hunter2'), `the password was echoed: ${JSON.stringify(r.stdout)}`);
  const line = r.stdout.split(/\r?\n/).find((l) => l.startsWith('grace:'));
  assert.ok(line, r.stdout);
  assert.equal(await new UserFile(line.trim()).verify('grace', 'hunter2 pw'), true);
});
