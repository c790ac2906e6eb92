// One argument parser for every `ike` command and benchmark script, over node:util parseArgs (in Node itself:
// no dependency, and it knows `--name=value`, `-h`, `--` and bundled short flags). parseArgs only splits the
// command line; this module adds what the commands need alike: `-h` / `--help` printing the command's own usage,
// unknown options and bad values as one line with exit code 2 (with "did you mean" for a near miss), typed values
// (whole numbers, numbers, durations with units, choices) and required options.
import { parseArgs } from 'node:util';
import { closest } from '../gateway/config/check.js';
import { parseDuration } from '../gateway/config/values.js';

/** A mistake on the command line: the caller prints `ike load: MESSAGE (try 'ike load --help')` and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface OptionSpec {
  /**
   * flag: present or not; string: any text; integer / number: checked against min / max; duration: '30s', '2m',
   * '1h', '1.5' (a plain number is seconds), given to the program in seconds; choice: one of `choices`.
   */
  kind: 'flag' | 'string' | 'integer' | 'number' | 'duration' | 'choice';
  help: string;
  /** The value's name in the usage (FILE, N, PATH); by default from the kind. */
  value?: string;
  short?: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  required?: boolean;
}

export interface CommandSpec {
  /** As typed: 'ike load', 'ike bench handshakes'. */
  name: string;
  /** What follows the name in the usage line besides the options ('USER', 'SUITE [options]'). */
  synopsis?: string;
  /** What the command does: a few lines, already wrapped. */
  summary: string;
  options: Record<string, OptionSpec>;
  /** How many positional arguments are allowed (default none). */
  positionals?: { min: number; max: number; name: string };
  /** Text after the options (exit codes, examples). */
  notes?: string;
}

type ValueOf<O extends OptionSpec> = O['kind'] extends 'flag' ? boolean : O['kind'] extends 'string' | 'choice' ? string : number;

/** The parsed options: a flag is a boolean, a required option is always there, any other is `undefined` when absent. */
export type OptionValues<C extends CommandSpec> = {
  [K in keyof C['options']]: C['options'][K]['kind'] extends 'flag' ? boolean : C['options'][K] extends { required: true } ? ValueOf<C['options'][K]> : ValueOf<C['options'][K]> | undefined;
};

export interface Parsed<C extends CommandSpec> {
  values: OptionValues<C>;
  positionals: string[];
}

/** Declares a command (the const parameter keeps each option's kind exact, for OptionValues). */
export function command<const C extends CommandSpec>(spec: C): C {
  return spec;
}

const HELP: OptionSpec = { kind: 'flag', short: 'h', help: 'print this usage and exit' };
const VALUE_NAME: Record<OptionSpec['kind'], string> = { flag: '', string: 'TEXT', integer: 'N', number: 'X', duration: 'DURATION', choice: '' };

function optionLabel(name: string, o: OptionSpec): string {
  const value = o.kind === 'flag' ? '' : ` ${o.value ?? (o.kind === 'choice' ? (o.choices ?? []).join('|') : VALUE_NAME[o.kind])}`;
  return `${o.short ? `-${o.short}, ` : '    '}--${name}${value}`;
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/** The usage text `-h` / `--help` prints: synopsis, summary, one line (or more) per option, notes. */
export function usage(spec: CommandSpec): string {
  const options = { ...spec.options, help: HELP };
  const required = Object.entries(spec.options)
    .filter(([, o]) => o.required)
    .map(([n, o]) => optionLabel(n, o).trim());
  const head = [`usage: ${spec.name}`, ...required, spec.synopsis ?? '', Object.keys(options).length > required.length ? '[options]' : ''].filter((s) => s !== '').join(' ');
  const labels = Object.entries(options).map(([n, o]) => [optionLabel(n, o), o] as const);
  const width = Math.min(34, Math.max(...labels.map(([l]) => l.length)) + 2);
  const lines = labels.map(([l, o]) => {
    // bounds of counts say something; a duration's lower bound (1ms, 0.1s) is only a guard
    const shown = o.kind === 'integer' || o.kind === 'number';
    const bounds = shown ? [o.min !== undefined ? `min ${o.min}` : '', o.max !== undefined ? `max ${o.max}` : ''].filter((s) => s !== '').join(', ') : '';
    const text = `${o.help}${bounds ? ` (${bounds})` : ''}${o.kind === 'duration' ? ' [500ms, 30s, 2m, 1h; a plain number is seconds]' : ''}`;
    const indent = ' '.repeat(width + 2);
    const body = wrap(text, 100 - indent.length).join(`\n${indent}`);
    return l.length + 2 > width ? `  ${l}\n${indent}${body}` : `  ${l.padEnd(width)}${body}`;
  });
  return `${head}\n\n${spec.summary.trimEnd()}\n\noptions:\n${lines.join('\n')}\n${spec.notes ? `\n${spec.notes.trimEnd()}\n` : ''}`;
}

function convert(name: string, o: OptionSpec, raw: string): string | number {
  const range = (n: number, what: string) => {
    if ((o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
      const bounds = o.min !== undefined && o.max !== undefined ? `${o.min}-${o.max}` : o.min !== undefined ? `>= ${o.min}` : `<= ${o.max}`;
      throw new UsageError(`--${name} must be ${what} ${bounds}, not '${raw}'`);
    }
    return n;
  };
  switch (o.kind) {
    case 'string':
      return raw;
    case 'integer':
      if (!/^-?\d+$/.test(raw.trim())) throw new UsageError(`--${name} must be a whole number, not '${raw}'`);
      return range(Number(raw), 'a whole number');
    case 'number': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not '${raw}'`);
      return range(n, 'a number');
    }
    case 'duration': {
      const d = parseDuration(raw);
      if (!d.ok) throw new UsageError(`--${name} must be a duration like 500ms, 30s, 2m, 1h or a number of seconds, not '${raw}'`);
      return range(d.value, 'a duration in seconds');
    }
    case 'choice': {
      const choices = o.choices ?? [];
      if (choices.includes(raw)) return raw;
      const near = closest(raw, choices);
      throw new UsageError(`--${name} must be ${choices.join(' or ')}, not '${raw}'${near ? ` (did you mean '${near}'?)` : ''}`);
    }
    case 'flag':
      throw new Error('unreachable: flags have no value');
  }
}

/**
 * Parses `argv` (the arguments after the command name) against `spec`. 'help' when -h / --help is given (even
 * beside mistakes: help wins); otherwise the typed values, or a UsageError.
 */
export function parseCommand<C extends CommandSpec>(spec: C, argv: readonly string[]): Parsed<C> | 'help' {
  const all: Record<string, OptionSpec> = { ...spec.options, help: HELP };
  const config = Object.fromEntries(Object.entries(all).map(([n, o]) => [n, { type: o.kind === 'flag' ? ('boolean' as const) : ('string' as const), ...(o.short ? { short: o.short } : {}) }]));
  // strict: false, and the checks below: parseArgs's own messages are long and suggest nothing.
  const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return 'help';
  const values: Record<string, string | number | boolean | undefined> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const o = all[t.name];
    if (o === undefined) {
      const near = closest(t.name, Object.keys(all));
      throw new UsageError(`unknown option ${t.rawName}${near ? ` (did you mean --${near}?)` : ''}`);
    }
    if (o.kind === 'flag') {
      if (t.inlineValue) throw new UsageError(`--${t.name} takes no value (got '${t.rawName}=${t.value}')`);
      values[t.name] = true;
    } else {
      if (t.value === undefined) throw new UsageError(`--${t.name} needs a value (${optionLabel(t.name, o).trim()})`);
      // `--config --json` is a forgotten value far more often than a file named --json (--config=--json says so)
      if (!t.inlineValue && t.value.startsWith('--')) throw new UsageError(`--${t.name} needs a value (${optionLabel(t.name, o).trim()}), not the option ${t.value}`);
      values[t.name] = convert(t.name, o, t.value);
    }
  }
  for (const [n, o] of Object.entries(spec.options)) {
    if (o.kind === 'flag') values[n] ??= false;
    else if (o.required && values[n] === undefined) throw new UsageError(`missing ${optionLabel(n, o).trim()}`);
  }
  const p = spec.positionals ?? { min: 0, max: 0, name: '' };
  if (positionals.length > p.max) throw new UsageError(p.max === 0 ? `unexpected argument '${positionals[0]}'` : `too many arguments: ${positionals.slice(p.max).map((s) => `'${s}'`).join(' ')}`);
  if (positionals.length < p.min) throw new UsageError(`missing ${p.name}`);
  delete values.help;
  return { values: values as OptionValues<C>, positionals };
}

/**
 * Runs a command: -h / --help prints its usage (exit 0), a usage error is one line on stderr (exit 2), anything
 * else is `body`'s. A UsageError thrown by `body` (a connection that does not exist, ...) is reported the same way.
 */
export async function runCommand<C extends CommandSpec>(spec: C, argv: readonly string[], body: (args: Parsed<C>) => Promise<number> | number): Promise<number> {
  try {
    const parsed = parseCommand(spec, argv);
    if (parsed === 'help') {
      process.stdout.write(usage(spec));
      return 0;
    }
    return await body(parsed);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${spec.name}: ${e.message} (try '${spec.name} --help')\n`);
    return 2;
  }
}
