// Parses every strongSwan capture fixture (test/fixtures/strongswan/*.json) when that directory exists.
// Format: { description, produced, messages: [{ index, from, exchangeType, hex, decryptedBodyHex?, firstPayload? }] }.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { encodeMessage, parseMessage, parsePayloads } from '../../ts/isakmp/index.js';
import type { ParsedMessage } from '../../ts/isakmp/index.js';
import { repoRoot } from './samples.js';

interface FixtureMessage {
  index: number;
  from: 'initiator' | 'responder';
  exchangeType: number;
  hex: string;
  decryptedBodyHex?: string;
  firstPayload?: number;
}
interface Fixture {
  description: string;
  produced?: string;
  messages: FixtureMessage[];
}

const dir = path.join(repoRoot, 'test/fixtures/strongswan');
const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];

if (files.length === 0) {
  test('strongSwan capture fixtures', { skip: `no *.json in ${path.relative(repoRoot, dir)} (produced on another branch; drop them in to run this test)` }, () => {});
}

for (const file of files) {
  test(`strongSwan fixture ${file}: every message parses`, () => {
    const fx = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Fixture;
    assert.ok(Array.isArray(fx.messages) && fx.messages.length > 0, 'fixture has messages');
    for (const m of fx.messages) {
      const where = `${file} message ${m.index} (${m.from})`;
      const bytes = Buffer.from(m.hex, 'hex');
      const r = parseMessage(bytes);
      if (!r.ok) assert.fail(`${where}: ${r.error.kind}: ${r.error.message}`);
      assert.equal(r.value.header.exchangeType, m.exchangeType, where);
      if ('encrypted' in r.value) {
        if (m.decryptedBodyHex === undefined) continue;
        const first = m.firstPayload ?? r.value.header.nextPayload;
        const pr = parsePayloads(first, Buffer.from(m.decryptedBodyHex, 'hex'), 28);
        if (!pr.ok) assert.fail(`${where} decrypted body: ${pr.error.kind}: ${pr.error.message}`);
        assert.ok(pr.value.length > 0, `${where}: decrypted body holds payloads`);
      } else {
        const parsed = r.value as ParsedMessage;
        const trimmed = bytes.subarray(0, parsed.header.length);
        const re = encodeMessage({ header: parsed.header, payloads: parsed.payloads });
        // strongSwan zeroes RESERVED octets, so the clear messages re-encode byte for byte.
        assert.ok(re.equals(trimmed), `${where}: re-encodes identically`);
      }
    }
  });
}
