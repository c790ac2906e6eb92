// The command-line options of the benchmark scripts, which take them as `--name value`.

/** The value after `--name` (undefined when the option is not given). */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
