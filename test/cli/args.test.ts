// The one argument parser of the `ike` commands and benchmark scripts (ts/cli/args.ts): typed values, durations
// with units, choices with "did you mean", unknown options, missing values, positionals, required options, help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { command, parseCommand, usage, UsageError } from '../../ts/cli/args.js';

const SPEC = command({
  name: 'ike thing',
  summary: 'Does a thing.',
  options: {
    config: { kind: 'string', value: 'FILE', required: true, help: 'the file' },
    count: { kind: 'integer', min: 1, max: 1000, help: 'how many' },
    rate: { kind: 'number', min: 0.5, help: 'per second' },
    duration: { kind: 'duration', min: 0.1, help: 'how long' },
    mode: { kind: 'choice', choices: ['main', 'aggressive'], help: 'exchange' },
    json: { kind: 'flag', short: 'j', help: 'JSON' },
  },
});

const parse = (...argv: string[]) => {
  const r = parseCommand(SPEC, argv);
  assert.notEqual(r, 'help');
  return (r as Exclude<typeof r, 'help'>).values;
};
const refuse = (argv: string[], message: string | RegExp) =>
  assert.throws(() => parseCommand(SPEC, argv), (e: unknown) => e instanceof UsageError && (typeof message === 'string' ? e.message === message : message.test(e.message)));

test('args: values are typed; flags default to false, absent options to undefined; --name=value and short flags work', () => {
  assert.deepEqual(parse('--config', 'a.json'), { config: 'a.json', json: false });
  const v = parse('--config=a.json', '--count', '12', '--rate=2.5', '--duration', '2m', '--mode', 'aggressive', '-j');
  assert.deepEqual(v, { config: 'a.json', count: 12, rate: 2.5, duration: 120, mode: 'aggressive', json: true });
  // the type says so too: count is number | undefined, json boolean, config string
  const n: number | undefined = v.count;
  const b: boolean = v.json;
  const s: string = v.config;
  assert.equal(typeof n + typeof b + typeof s, 'numberbooleanstring');
});

test('args: durations take units (ms, s, m, h, d); a plain number is seconds', () => {
  for (const [text, seconds] of [['30s', 30], ['2m', 120], ['1h', 3600], ['1d', 86400], ['500ms', 0.5], ['1.5', 1.5], ['7', 7]] as const) {
    assert.equal(parse('--config', 'x', '--duration', text).duration, seconds, text);
  }
  refuse(['--config', 'x', '--duration', '1x'], "--duration must be a duration like 500ms, 30s, 2m, 1h or a number of seconds, not '1x'");
  refuse(['--config', 'x', '--duration', '50ms'], "--duration must be a duration in seconds >= 0.1, not '50ms'");
});

test('args: bad values, unknown options, missing values and stray arguments are one-line usage errors', () => {
  refuse(['--config', 'x', '--count', 'x'], "--count must be a whole number, not 'x'");
  refuse(['--config', 'x', '--count', '1.5'], "--count must be a whole number, not '1.5'");
  refuse(['--config', 'x', '--count', '0'], "--count must be a whole number 1-1000, not '0'");
  refuse(['--config', 'x', '--rate', 'NaN'], "--rate must be a number, not 'NaN'");
  refuse(['--config', 'x', '--rate', ''], "--rate must be a number, not ''");
  refuse(['--config', 'x', '--mode', 'agressive'], "--mode must be main or aggressive, not 'agressive' (did you mean 'aggressive'?)");
  refuse(['--config', 'x', '--durration', '5'], 'unknown option --durration (did you mean --duration?)');
  refuse(['--config', 'x', '-x'], 'unknown option -x');
  refuse(['--config', 'x', '--json=yes'], "--json takes no value (got '--json=yes')");
  refuse(['--config'], '--config needs a value (--config FILE)');
  refuse(['--config', '--json'], '--config needs a value (--config FILE), not the option --json');
  assert.equal(parse('--config=--json').config, '--json', 'inline, the value is taken as written');
  refuse([], 'missing --config FILE');
  refuse(['--config', 'x', 'extra'], "unexpected argument 'extra'");
});

test('args: -h / --help wins over everything else; the usage lists every option with its help', () => {
  assert.equal(parseCommand(SPEC, ['--bogus', '-h']), 'help');
  assert.equal(parseCommand(SPEC, ['--help']), 'help');
  const u = usage(SPEC);
  assert.match(u, /^usage: ike thing --config FILE \[options\]\n\nDoes a thing\.\n\noptions:\n/);
  for (const line of [/--count N +how many \(min 1, max 1000\)/, /--mode main\|aggressive +exchange/, /-j, --json +JSON/, /-h, --help +print this usage and exit/, /--duration DURATION +how long \[500ms, 30s, 2m, 1h; a plain number is seconds\]/]) {
    assert.match(u, line);
  }
  for (const l of u.split('\n')) assert.ok(l.length <= 100, `line over 100 columns: ${l}`);
});

test('args: positionals are counted', () => {
  const spec = command({ name: 'ike passwd', summary: 'x', options: {}, positionals: { min: 1, max: 1, name: 'USER' } });
  assert.deepEqual(parseCommand(spec, ['alice']), { values: {}, positionals: ['alice'] });
  assert.throws(() => parseCommand(spec, []), /^UsageError: missing USER$/);
  assert.throws(() => parseCommand(spec, ['a', 'b']), /too many arguments: 'b'/);
  assert.deepEqual(parseCommand(spec, ['--', '-dash-user']), { values: {}, positionals: ['-dash-user'] }, "'--' ends the options");
});
