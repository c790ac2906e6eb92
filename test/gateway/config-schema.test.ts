// The configuration schema (ts/gateway/config/schema.ts, config.schema.json) and the parser (parseConfig) in
// step: the same keys at every level, every example in examples/ valid under the schema and loadable by the
// parser, the JSON file current, and the TypeScript type catching a misspelt key at compile time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { CONFIG_KEYS, defineConfig, GatewayConfigSchema, parseConfig } from '../../ts/gateway/config.js';
import { schemaDocument } from '../../ts/gateway/config/schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

type Node = { properties?: Record<string, Node>; patternProperties?: Record<string, Node>; anyOf?: Node[] };
const keys = (n: Node | undefined) => Object.keys(n?.properties ?? {}).filter((k) => k !== '_comment').sort();
const props = (n: Node, k: string): Node => n.properties![k]!;

test('the schema has the keys the parser knows, level by level', () => {
  const top = GatewayConfigSchema as unknown as Node;
  const connection = Object.values(props(top, 'connections').patternProperties!)[0]!;
  const levels: Record<string, Node> = {
    top,
    listen: props(top, 'listen'),
    dataplane: props(top, 'dataplane'),
    metrics: props(top, 'metrics'),
    connection,
    auth: props(connection, 'auth'),
    lifetime: props(connection, 'lifetime'),
    dpd: props(connection, 'dpd'),
    retransmit: props(connection, 'retransmit'),
    xauth: props(connection, 'xauth'),
    modeConfig: props(connection, 'modeConfig'),
  };
  assert.deepEqual(Object.keys(levels).sort(), Object.keys(CONFIG_KEYS).sort(), 'a level of the parser without a schema (or the other way)');
  for (const [level, node] of Object.entries(levels)) assert.deepEqual(keys(node), [...CONFIG_KEYS[level]!].sort(), `keys of ${level}`);
});

test('every example is valid under the schema and loads', () => {
  const dir = path.join(root, 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const text = readFileSync(path.join(dir, f), 'utf8');
    const json = JSON.parse(text) as unknown;
    const errors = [...Value.Errors(GatewayConfigSchema, json)].map((e) => `${e.path}: ${e.message}`);
    assert.deepEqual(errors, [], f);
    // every environment variable an example names is set (to a sample key)
    const env = Object.fromEntries([...text.matchAll(/"(?:pskEnv|passwordEnv)"\s*:\s*"([^"]+)"/g)].map((m) => [m[1]!, 'a sample key of twenty bytes']));
    const r = parseConfig(json, { baseDir: dir, env });
    assert.ok(r.ok, `${f}: ${r.ok ? '' : r.errors.join('; ')}`);
  }
});

test('the schema rejects what the parser rejects for shape: unknown keys, wrong enum values', () => {
  const good = { connections: { a: { remote: '10.0.0.1', auth: { psk: 'k' } } } };
  assert.ok(Value.Check(GatewayConfigSchema, good));
  assert.ok(!Value.Check(GatewayConfigSchema, { connections: { a: { remote: '10.0.0.1', auth: { psk: 'k' }, remoet: 'x' } } }));
  assert.ok(!Value.Check(GatewayConfigSchema, { connections: { a: { remote: '10.0.0.1', auth: { psk: 'k' }, mode: 'agressive' } } }));
  assert.ok(!Value.Check(GatewayConfigSchema, { connections: { a: { remote: '10.0.0.1', auth: { psk: 'k' }, lifetime: { esp: '1 hour' } } } }));
  assert.ok(parseConfig({ $schema: './config.schema.json', ...good }, { baseDir: '.', env: {} }).ok, 'an editor\'s $schema key is allowed');
});

test('config.schema.json is current (npm run schema writes it)', () => {
  assert.equal(readFileSync(path.join(root, 'config.schema.json'), 'utf8'), schemaDocument(), 'stale: run npm run schema');
});

test('TypeScript sees the shape: a misspelt key or mode does not compile', () => {
  const c = defineConfig({ listen: { port: 500 }, connections: { a: { remote: '10.0.0.1', auth: { psk: 'k' }, mode: 'main', lifetime: { esp: '1h' } } } });
  // @ts-expect-error a misspelt key
  defineConfig({ connections: { a: { remoet: '10.0.0.1', auth: { psk: 'k' } } } });
  // @ts-expect-error not a mode
  defineConfig({ connections: { a: { remote: '10.0.0.1', auth: { psk: 'k' }, mode: 'agressive' } } });
  assert.ok(parseConfig(c, { baseDir: '.', env: {} }).ok);
});
