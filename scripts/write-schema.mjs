#!/usr/bin/env node
// Writes config.schema.json (the configuration file's JSON Schema, for editors) from ts/gateway/config/schema.ts
// as compiled in dist/. `npm run schema`; test/gateway/config-schema.test.ts fails when the file is stale.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { schemaDocument } = await import(path.join(root, 'dist', 'ts', 'gateway', 'config', 'schema.js'));
writeFileSync(path.join(root, 'config.schema.json'), schemaDocument());
process.stdout.write('config.schema.json\n');
