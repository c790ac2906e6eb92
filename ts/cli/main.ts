// The `ike` command. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
import { ConfigError, loadConfig } from '../gateway/config.js';
import { Gateway, type GatewayErrorEvent, type Phase1UpEvent } from '../gateway/gateway.js';
import { ControlServer, defaultControlPath } from '../gateway/control.js';

const USAGE = `usage: ike <command> [options]

commands:
  demo        two gateways on loopback: Main Mode + Quick Mode narrated (--auth cert: with certificates)
              message by message, then ESP traffic and its rates
  gateway --config FILE [--json] [--keylog DIR] [--control PATH | --no-control]
              run a gateway until SIGINT/SIGTERM; one line per event
              (phase1-up, child-up, child-down, phase1-down, error);
              --json prints one JSON object per line; --keylog writes the
              session keys of connections with "keylog": true to
              DIR/ikev1_decryption_table and DIR/esp_sa (Wireshark's files);
              --control: its control socket (mode 0600, default
              ${defaultControlPath()}), for ike status / ike keylog
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

/** One event as a line: the event name first, then key=value pairs (or one JSON object with --json). */
function formatEvent(event: string, fields: Record<string, unknown>, json: boolean): string {
  if (json) return JSON.stringify({ event, time: new Date().toISOString(), ...fields });
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [event, ...parts].join(' ');
}

async function gateway(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['config', 'keylog', 'control']);
  if (args.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  for (const k of args.flags.keys()) if (!['config', 'json', 'keylog', 'control', 'no-control'].includes(k)) throw new UsageError(`unknown option --${k}`);
  const file = args.flags.get('config');
  if (typeof file !== 'string') throw new UsageError('ike gateway needs --config FILE');
  const json = args.flags.get('json') === true;
  const config = await loadConfig(file);
  for (const w of config.warnings) process.stderr.write(`ike: warning: ${w}\n`);
  const gw = new Gateway(config);
  const print = (event: string, fields: Record<string, unknown>) => process.stdout.write(formatEvent(event, fields, json) + '\n');
  const keylogDir = args.flags.get('keylog');
  const { appendFileSync, mkdirSync } = await import('node:fs');
  const path = await import('node:path');
  gw.on('listening', (l) => print('listening', { address: l.address, port: l.port, nattPort: l.nattPort }));
  gw.on('phase1-up', (e: Phase1UpEvent) =>
    print('phase1-up', {
      connection: e.connection,
      role: e.initiator ? 'initiator' : 'responder',
      mode: e.mode,
      remote: `${e.remote.address}:${e.remote.port}`,
      localId: e.localId,
      remoteId: e.remoteId,
      algorithms: e.algorithms,
      lifetime: e.lifetimeSeconds,
      cookieI: e.cookieI,
      cookieR: e.cookieR,
      natLocal: e.natDetected.local,
      natRemote: e.natDetected.remote,
    }),
  );
  gw.on('child-up', (e) =>
    print('child-up', {
      connection: e.connection,
      role: e.initiator ? 'initiator' : 'responder',
      spiIn: e.spiIn,
      spiOut: e.spiOut,
      proposal: e.proposal,
      mode: e.mode,
      encap: e.encapsulation,
      localTs: e.localTs,
      remoteTs: e.remoteTs,
      lifetime: e.lifetimeSeconds,
      rekey: e.rekey,
    }),
  );
  // XAUTH / Mode-Config progress (never a password: the events carry the user name and the configuration received)
  gw.on('remote-access', (e) => print('remote-access', { connection: e.connection, remote: `${e.remote.address}:${e.remote.port}`, cookieI: e.cookieI, ...e.event }));
  gw.on('child-down', (e) => print('child-down', { connection: e.connection, spiIn: e.spiIn, spiOut: e.spiOut, reason: e.reason }));
  gw.on('phase1-down', (e) => print('phase1-down', { connection: e.connection, remote: `${e.remote.address}:${e.remote.port}`, reason: e.reason }));
  gw.on('error', (e: GatewayErrorEvent) =>
    print('error', { connection: e.connection, remote: e.remote ? `${e.remote.address}:${e.remote.port}` : undefined, kind: e.kind, message: e.message }),
  );
  if (typeof keylogDir === 'string') mkdirSync(keylogDir, { recursive: true, mode: 0o700 });
  gw.on('keylog', (k) => {
    if (typeof keylogDir === 'string') appendFileSync(path.join(keylogDir, k.table), k.line + '\n', { mode: 0o600 });
  });
  const controlPath = args.flags.get('control');
  const control = args.flags.has('no-control') ? null : await ControlServer.listen(gw, typeof controlPath === 'string' ? controlPath : defaultControlPath());
  try {
    await gw.start();
    if (control) print('control', { path: control.path });
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await gw.stop();
  } finally {
    await control?.close();
  }
  print('stopped', {});
  return 0;
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
        return await demo(rest);
      }
      case 'gateway':
        return await gateway(rest);
      case 'bench':
        return await bench(rest);
      case 'status':
        return await (await import('./status.js')).status(rest);
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
