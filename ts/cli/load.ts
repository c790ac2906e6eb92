// `ike load`: many initiators against a real peer through one Gateway (see ts/load/load-tester.ts).
// Progress on stderr once a second and once at the end; the summary on stdout (one JSON object with --json).
// Exit codes: 0 every setup done, 1 some failed, 2 usage or configuration error.
import { loadConfig } from '../gateway/config.js';
import { Gateway } from '../gateway/gateway.js';
import { LoadTester, formatProgress, formatResult } from '../load/load-tester.js';
import { command, runCommand, UsageError, type OptionValues } from './args.js';

export const LOAD_COMMAND = command({
  name: 'ike load',
  summary: `Sets connection NAME up N times, each on a fresh ISAKMP SA (Main/Aggressive Mode + Quick Mode),
at most C in flight and R started per second; each SA is deleted once its child SA is up unless
--keep. Connections of FILE are not started on their own ("initiate" is ignored).
A progress line goes to stderr every second and at the end; the summary to stdout.`,
  options: {
    config: { kind: 'string', value: 'FILE', required: true, help: 'the configuration with the connection' },
    connection: { kind: 'string', value: 'NAME', required: true, help: 'the connection to set up' },
    count: { kind: 'integer', required: true, min: 1, help: 'setups in all' },
    concurrency: { kind: 'integer', value: 'C', min: 1, help: 'setups in flight at most (default 1)' },
    rate: { kind: 'number', value: 'R', min: 0.001, help: 'setups started per second at most (default: no limit)' },
    timeout: { kind: 'duration', min: 0.001, help: 'a setup not done by then fails with kind TIMEOUT (default 30s)' },
    json: { kind: 'flag', help: 'the summary as one JSON object' },
    keep: { kind: 'flag', help: 'keep each ISAKMP SA until the end' },
  },
  notes: 'Exit codes: 0 every setup done, 1 some failed, 2 usage or configuration error.',
});

/** Runs `ike load`; a ConfigError goes to the caller, which prints it. */
export function load(argv: string[]): Promise<number> {
  return runCommand(LOAD_COMMAND, argv, ({ values }) => run(values));
}

async function run(values: OptionValues<typeof LOAD_COMMAND>): Promise<number> {
  const { config: file, connection, count, json } = values;
  const concurrency = values.concurrency ?? 1;
  const rate = values.rate;
  const timeoutMs = (values.timeout ?? 30) * 1000;
  const config = await loadConfig(file);
  for (const w of config.warnings) process.stderr.write(`ike: warning: ${w}\n`);
  const c = config.connections.find((x) => x.name === connection);
  if (!c) throw new UsageError(`no connection named '${connection}' in ${file} (have: ${config.connections.map((x) => x.name).join(', ')})`);
  if (c.remote === '%any') throw new UsageError(`connection '${connection}' has remote %any: ike load needs a peer address`);
  // The load tester decides when setups start: nothing comes up on its own.
  const gw = new Gateway({ ...config, connections: config.connections.map((x) => ({ ...x, initiate: false })) });
  // failures are counted by the tester while it runs; an EventEmitter 'error' without a listener would throw
  gw.on('error', () => undefined);
  const tester = new LoadTester(gw, {
    connection,
    count,
    concurrency,
    ...(rate !== undefined ? { rate } : {}),
    keep: values.keep,
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
