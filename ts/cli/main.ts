// The `ike` command. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. Each command parses its
// options with ts/cli/args.ts and prints its own usage for -h / --help.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../gateway/config.js';
import { KeylogFileError } from '../gateway/keylog-files.js';
import { command, runCommand, UsageError } from './args.js';

const USAGE = `usage: ike <command> [options]      (ike <command> --help: that command's options)

commands:
  demo        two gateways on loopback: Main Mode + Quick Mode narrated (--auth cert: with certificates)
              message by message, then ESP traffic and its rates
  gateway     run a gateway from a config file until SIGINT/SIGTERM
              (SIGHUP: reload), one line per event; a control socket for
              the commands below
  list-conns | initiate NAME | terminate NAME | reload
              operate a running gateway over its control socket: its
              connections and whether they are up, bring one up (waits for
              its child SA) or down, re-read its config file (as SIGHUP)
  status      the SAs of a running gateway: algorithms, NAT, lifetimes,
              packet and byte counters (never keys)
  keylog      the session keys of ALL current SAs of a running gateway in
              Wireshark's two files
  load        set a connection up N times against a real peer, each on a
              fresh ISAKMP SA; progress on stderr, summary on stdout
  bench       benchmark suites: ${'handshakes, gateway, crypto, codec, esp, memory, flood'}
              (ike bench SUITE --help); npm run bench runs them all
  soak        two gateways on loopback, child and ISAKMP SAs rekeyed under
              ESP both ways for minutes; exit 1 on a lost packet or a
              growing heap
  passwd      print an XAUTH user-file line for USER (password read
              without echo on a terminal, else the first line of stdin)
  help        this text

options: -h, --help (this text), --version (the package version)
examples: ike demo; ike gateway --config gw.json --json; ike bench handshakes --duration 5s
Durations on the command line are written as in the config: 30s, 2m, 1h (a plain number is seconds).
A pre-shared key comes from the config file (auth.psk, auth.pskEnv or auth.pskFile), never from the command line.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return `${pkg.name} ${pkg.version}`;
}

const BENCH_SUITES = ['handshakes', 'gateway', 'crypto', 'codec', 'esp', 'memory', 'flood'];
/** Suites whose script is named differently from the suite. */
const BENCH_SCRIPTS: Record<string, string> = { gateway: 'gateway-handshakes' };
const BENCH_USAGE = `usage: ike bench SUITE [options]      (ike bench SUITE --help: the suite's options)

suites:
  handshakes  Main/Aggressive Mode + Quick Mode in memory vs the DH ceiling
  gateway     MM+QM setups over UDP on loopback, responder in a child process
  crypto      DH, prf and key derivation, addon vs node:crypto
  codec       ISAKMP parse / encode
  esp         ESP seal / open vs raw EVP and node:crypto
  memory      bytes per SA pair (--gateway: what a responder Gateway keeps)
`;

/** A script under dist/bench run as its own process: exit code and output are the script's. */
async function runScript(name: string, args: string[], flags: string[] = []): Promise<number> {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const { existsSync } = await import('node:fs');
  const script = fileURLToPath(new URL(`../../bench/${name}.js`, import.meta.url));
  // The published package leaves the benchmarks out (package.json "files"): say so instead of a module error.
  if (!existsSync(script)) throw new Error(`${script} is missing: this benchmark is not part of the published package (it needs the test harness); run it from a clone of the repository`);
  const r = spawnSync(process.execPath, [...flags, script, ...args], { stdio: 'inherit' });
  return r.status ?? 1;
}

/** Each suite is a script of its own under dist/bench (it also runs as `node dist/bench/<suite>.js`) and parses its options. */
async function bench(argv: string[]): Promise<number> {
  const [suite, ...args] = argv;
  if (suite === '--help' || suite === '-h') {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  if (suite === undefined || !BENCH_SUITES.includes(suite)) {
    throw new UsageError(`ike bench needs a suite: ${BENCH_SUITES.join(', ')}${suite ? ` (not '${suite}')` : ''}`);
  }
  // the memory suite measures after full collections
  return runScript(BENCH_SCRIPTS[suite] ?? suite, args, suite === 'memory' ? ['--expose-gc'] : []);
}

const DEMO_COMMAND = command({
  name: 'ike demo',
  summary: `Two gateways on 127.0.0.1: Main Mode + Quick Mode over real UDP, narrated message by message,
then ESP traffic in memory and over UDP with its rates.`,
  options: {
    auth: { kind: 'choice', choices: ['psk', 'cert'], value: 'psk|cert', help: 'pre-shared key (default), or ECDSA certificates from a throw-away demo CA (CERTREQ, CERT, SIG narrated)' },
  },
});

async function dispatch(commandName: string | undefined, rest: string[]): Promise<number> {
  switch (commandName) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    case '--version':
      process.stdout.write(version() + '\n');
      return 0;
    case 'demo':
      return runCommand(DEMO_COMMAND, rest, async (a) => (await import('./demo.js')).demo(a.values.auth === 'cert' ? ['--auth', 'cert'] : []));
    case 'gateway':
      return (await import('./gateway.js')).gateway(rest);
    case 'bench':
      return bench(rest);
    case 'status':
      return (await import('./status.js')).status(rest);
    case 'keylog':
      return (await import('./keylog.js')).keylog(rest);
    case 'list-conns':
    case 'initiate':
    case 'terminate':
    case 'reload':
      return (await import('./conns.js')).conns(commandName, rest);
    case 'load':
      return (await import('./load.js')).load(rest);
    case 'soak':
      // its memory samples mean something only after full collections
      return runScript('soak', rest, ['--expose-gc']);
    case 'passwd':
      return (await import('./passwd.js')).passwd(rest);
    default:
      throw new UsageError(`unknown command '${commandName}'`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [commandName, ...rest] = argv;
  try {
    return await dispatch(commandName, rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ike: ${e.message} (try 'ike --help')\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      for (const line of e.errors) process.stderr.write(`ike: config: ${line}\n`);
      return 2;
    }
    if (e instanceof KeylogFileError) {
      process.stderr.write(`ike: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`ike: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
