// The command-line options of the benchmark scripts: the same parser as the `ike` commands (ts/cli/args.ts), so
// every suite prints its usage for -h / --help, refuses unknown options and bad values with exit code 2, and
// takes durations with units (30s, 2m; a plain number is seconds).
import { command, parseCommand, usage, UsageError, type CommandSpec, type OptionValues } from '../ts/cli/args.js';

export { command };

/** The script's options from process.argv: --help prints its usage and exits 0, a usage error exits 2. */
export function benchArgs<C extends CommandSpec>(spec: C, argv: readonly string[] = process.argv.slice(2)): OptionValues<C> {
  try {
    const parsed = parseCommand(spec, argv);
    if (parsed !== 'help') return parsed.values;
    process.stdout.write(usage(spec));
    process.exit(0);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${spec.name}: ${e.message} (try '${spec.name} --help')\n`);
    process.exit(2);
  }
}

/** A value the parser cannot judge (a DH group number, ...) is wrong: one line, exit 2. */
export function benchUsageError(name: string, message: string): never {
  process.stderr.write(`${name}: ${message} (try '${name} --help')\n`);
  process.exit(2);
}

/**
 * The value after `--name` in process.argv, unchecked. Deprecated: kept so that a suite written against it still
 * builds; new suites declare their options with `command` and read them with `benchArgs` (help, errors, units).
 */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
