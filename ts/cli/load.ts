// `ike load`: many initiators against a real peer through one Gateway (see ts/load/load-tester.ts).
// Progress on stderr once a second and once at the end; the summary on stdout (one JSON object with --json).
// Exit codes: 0 every setup done, 1 some failed, 2 usage or configuration error.
import { loadConfig } from '../gateway/config.js';
import { Gateway } from '../gateway/gateway.js';
import { LoadTester, formatProgress, formatResult } from '../load/load-tester.js';

export const LOAD_USAGE = `usage: ike load --config FILE --connection NAME --count N [--concurrency C]
                [--rate R] [--timeout SECONDS] [--json] [--keep]

Sets connection NAME up N times, each on a fresh ISAKMP SA (Main/Aggressive Mode + Quick Mode),
at most C in flight and R started per second; each SA is deleted once its child SA is up unless
--keep. A setup not done after --timeout seconds (default 30) fails with kind TIMEOUT.
Connections of FILE are not started on their own ("initiate" is ignored).
A progress line goes to stderr every second and at the end; the summary to stdout.
`;

export class LoadUsageError extends Error {}

const VALUE_FLAGS = ['config', 'connection', 'count', 'concurrency', 'rate', 'timeout'];
const BOOL_FLAGS = ['json', 'keep', 'help'];

function parse(argv: string[]): Map<string, string | true> {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new LoadUsageError(`unexpected argument '${a}'`);
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (VALUE_FLAGS.includes(k)) {
      const value = v ?? argv[++i];
      if (value === undefined) throw new LoadUsageError(`--${k} needs a value`);
      flags.set(k, value);
    } else if (BOOL_FLAGS.includes(k) && v === undefined) flags.set(k, true);
    else throw new LoadUsageError(`unknown option --${k}`);
  }
  return flags;
}

function num(flags: Map<string, string | true>, name: string, integer: boolean): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new LoadUsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, not '${String(v)}'`);
  }
  return n;
}

/** Runs `ike load`; throws LoadUsageError (exit 2) or ConfigError (the caller prints it). */
export async function load(argv: string[]): Promise<number> {
  const flags = parse(argv);
  if (flags.has('help')) {
    process.stdout.write(LOAD_USAGE);
    return 0;
  }
  const file = flags.get('config');
  const connection = flags.get('connection');
  if (typeof file !== 'string') throw new LoadUsageError('ike load needs --config FILE');
  if (typeof connection !== 'string') throw new LoadUsageError('ike load needs --connection NAME');
  const count = num(flags, 'count', true);
  if (count === undefined) throw new LoadUsageError('ike load needs --count N');
  const concurrency = num(flags, 'concurrency', true) ?? 1;
  const rate = num(flags, 'rate', false);
  const timeoutMs = (num(flags, 'timeout', false) ?? 30) * 1000;
  const json = flags.get('json') === true;
  const config = await loadConfig(file);
  for (const w of config.warnings) process.stderr.write(`ike: warning: ${w}\n`);
  const c = config.connections.find((x) => x.name === connection);
  if (!c) throw new LoadUsageError(`no connection named '${connection}' in ${file} (have: ${config.connections.map((x) => x.name).join(', ')})`);
  if (c.remote === '%any') throw new LoadUsageError(`connection '${connection}' has remote %any: ike load needs a peer address`);
  // The load tester decides when setups start: nothing comes up on its own.
  const gw = new Gateway({ ...config, connections: config.connections.map((x) => ({ ...x, initiate: false })) });
  // failures are counted by the tester while it runs; an EventEmitter 'error' without a listener would throw
  gw.on('error', () => undefined);
  const tester = new LoadTester(gw, {
    connection,
    count,
    concurrency,
    ...(rate !== undefined ? { rate } : {}),
    keep: flags.get('keep') === true,
    timeoutMs,
    onProgress: (p) => process.stderr.write(formatProgress(p, count) + '\n'),
  });
  await gw.start();
  const stop = () => tester.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let result;
  try {
    result = await tester.run();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    // with --keep the SAs go now (stop() sends the deletes); the peer's tables end clean either way
    await gw.stop();
  }
  process.stdout.write((json ? JSON.stringify(result) : formatResult(result)) + '\n');
  return result.failed === 0 && result.done === count ? 0 : 1;
}
