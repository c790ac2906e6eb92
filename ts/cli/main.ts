// The `ike` command. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
import { ConfigError } from '../gateway/config.js';
import { defaultControlPath } from '../gateway/control.js';

const USAGE = `usage: ike <command> [options]

commands:
  demo        two gateways on loopback: Main Mode + Quick Mode narrated
              message by message, then ESP traffic and its rates
  gateway --config FILE [--json] [--keylog DIR] [--control PATH | --no-control]
          [--log-level error|warn|info|debug]
              run a gateway until SIGINT/SIGTERM (SIGHUP: reload the
              config file, see ike reload); one line per event with its
              time; under load, SA events beyond 20 per 10 s are counted
              in a summary line (--log-level debug: every one)
              (phase1-up, child-up, child-down, phase1-down, error);
              --json prints one JSON object per line; --keylog writes the
              session keys of connections with "keylog": true to
              DIR/ikev1_decryption_table and DIR/esp_sa (Wireshark's files);
              --control: its control socket (mode 0600, default one per
              listen address, e.g. ${defaultControlPath({ address: '0.0.0.0', port: 500 })}),
              for ike status / keylog / list-conns / initiate / terminate / reload
  list-conns | initiate NAME | terminate NAME | reload
              operate a running gateway over its control socket: its
              connections and whether they are up, bring one up (waits for
              its child SA) or down, re-read its config file (as SIGHUP:
              unchanged connections keep their SAs) (ike list-conns --help)
  status [--control PATH] [--json]
              the SAs of a running gateway: algorithms, NAT, lifetimes,
              packet and byte counters (never keys)
  keylog [--control PATH] --out DIR
              the session keys of ALL current SAs of a running gateway
              (whatever "keylog" says: whoever may open the owner-only
              control socket may have them) in Wireshark's two files
  bench <suite> [options]
              run a benchmark suite: crypto (DH, prf, KDF vs node:crypto),
              codec (ISAKMP parse/encode), esp (ESP seal/open vs raw EVP and
              node:crypto; --json, --quick), handshakes (MM/AM + Quick Mode
              in memory; --pfs, --esp, --workers N, --fake-dh, --async,
              --full-exponent, --json), gateway (MM+QM setups over UDP on
              loopback, responder in a child process, vs the DH ceiling;
              --duration, --concurrency, --pfs, --sync-dh, --json), memory
              (bytes per SA pair, --count N; --gateway: what a responder
              Gateway keeps, set up over loopback);
              options go to the suite; npm run bench runs them all
  load --config FILE --connection NAME --count N [--concurrency C] [--rate R] [--json] [--keep]
              set a connection up N times against a real peer, each on a
              fresh ISAKMP SA (deleted once its child SA is up unless --keep);
              progress on stderr, summary on stdout (ike load --help)
  soak [--minutes 30] [--rate PPS] [--child-lifetime S] [--ike-lifetime S] [--json]
              two gateways on loopback, child SA rekeyed every ~5 s and
              ISAKMP SA every ~40 s under numbered ESP both ways; lost
              packets, rekeys and memory after gc every 10 s; exit 1 on a
              lost packet or a growing heap (ike soak --help)
  passwd USER  read a password from stdin, print the XAUTH user-file line
              USER:scrypt$N$r$p$salt$hash
  help        this text

A pre-shared key comes from the config file (auth.psk, auth.pskEnv or auth.pskFile), never from the command line.
`;

interface Args {
  positional: string[];
  flags: Map<string, string | true>;
}

function parseArgs(argv: string[], withValue: readonly string[]): Args {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
      if (v !== undefined) flags.set(k, v);
      else if (withValue.includes(k)) {
        const next = argv[++i];
        if (next === undefined) throw new UsageError(`--${k} needs a value`);
        flags.set(k, next);
      } else flags.set(k, true);
    } else positional.push(a);
  }
  return { positional, flags };
}

class UsageError extends Error {}

async function gateway(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['config', 'keylog', 'control', 'log-level']);
  if (args.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  for (const k of args.flags.keys()) if (!['config', 'json', 'keylog', 'control', 'no-control', 'log-level'].includes(k)) throw new UsageError(`unknown option --${k}`);
  const { LOG_LEVELS } = await import('./log.js');
  const level = args.flags.get('log-level');
  if (level !== undefined && !LOG_LEVELS.includes(level as never)) throw new UsageError(`--log-level: one of ${LOG_LEVELS.join(', ')}, got '${String(level)}'`);
  const file = args.flags.get('config');
  if (typeof file !== 'string') throw new UsageError('ike gateway needs --config FILE');
  const keylog = args.flags.get('keylog');
  const control = args.flags.get('control');
  const { runGateway } = await import('./gateway.js');
  return runGateway({
    file,
    json: args.flags.get('json') === true,
    keylogDir: typeof keylog === 'string' ? keylog : undefined,
    control: args.flags.has('no-control') ? null : typeof control === 'string' ? control : undefined,
    logLevel: level as (typeof LOG_LEVELS)[number] | undefined,
  });
}

const BENCH_SUITES = ['handshakes', 'gateway', 'crypto', 'codec', 'esp', 'memory'];
/** Suites whose script is named differently from the suite. */
const BENCH_SCRIPTS: Record<string, string> = { gateway: 'gateway-handshakes' };

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

/** Each suite is a script of its own under dist/bench, so it also runs as `node dist/bench/<suite>.js`. */
async function bench(argv: string[]): Promise<number> {
  const [suite, ...args] = argv;
  if (suite === undefined || !BENCH_SUITES.includes(suite)) {
    throw new UsageError(`ike bench needs a suite: ${BENCH_SUITES.join(', ')}${suite ? ` (not '${suite}')` : ''}`);
  }
  // the memory suite measures after full collections
  return runScript(BENCH_SCRIPTS[suite] ?? suite, args, suite === 'memory' ? ['--expose-gc'] : []);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      case 'demo': {
        const { demo } = await import('./demo.js');
        return await demo();
      }
      case 'gateway':
        return await gateway(rest);
      case 'bench':
        return await bench(rest);
      case 'status':
        return await (await import('./status.js')).status(rest);
      case 'list-conns':
      case 'initiate':
      case 'terminate':
      case 'reload': {
        const { conns, ConnsUsageError } = await import('./conns.js');
        try {
          return await conns(command, rest);
        } catch (e) {
          throw e instanceof ConnsUsageError ? new UsageError(e.message) : e;
        }
      }
      case 'keylog':
        return await (await import('./keylog.js')).keylog(rest);
      case 'load': {
        const { load, LoadUsageError } = await import('./load.js');
        try {
          return await load(rest);
        } catch (e) {
          throw e instanceof LoadUsageError ? new UsageError(e.message) : e;
        }
      }
      case 'soak':
        // its memory samples mean something only after full collections
        return await runScript('soak', rest, ['--expose-gc']);
      case 'passwd':
        return await (await import('./passwd.js')).passwd(rest);
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`ike: ${e.message} (try 'ike --help')\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      for (const line of e.errors) process.stderr.write(`ike: config: ${line}\n`);
      return 2;
    }
    process.stderr.write(`ike: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
