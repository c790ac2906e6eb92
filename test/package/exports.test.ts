// The package's entry points, imported by name through the package's self-reference (package.json
// "exports"), as an application that depends on ikev1-engine would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(require.resolve('ikev1-engine/package.json'), 'utf8')) as { exports: Record<string, unknown> };

const LAYERS: Record<string, string[]> = {
  'ikev1-engine/isakmp': ['parseMessage', 'encodeMessage', 'PayloadType', 'tv', 'writeIpv4'],
  'ikev1-engine/crypto': ['defaultCrypto', 'nativeCrypto', 'nodeCrypto', 'dhGroupInfo'],
  'ikev1-engine/esp': ['createEspSa', 'EspStatus', 'layoutSealBatch', 'nativeEsp'],
  'ikev1-engine/ike': ['IkeError', 'Phase1', 'parseIkeProposal', 'CookieGenerator'],
  'ikev1-engine/gateway': ['Gateway', 'parseConfig', 'loadConfig', 'ControlServer'],
  'ikev1-engine/load': ['LoadTester', 'formatResult'],
};

test('each layer entry point resolves by name and carries its API', async () => {
  for (const [specifier, names] of Object.entries(LAYERS)) {
    const m = (await import(specifier)) as Record<string, unknown>;
    for (const n of names) assert.ok(n in m, `${specifier} lacks ${n}`);
  }
  assert.deepEqual(Object.keys(pkg.exports).sort(), ['.', './package.json', ...Object.keys(LAYERS).map((s) => s.replace('ikev1-engine', '.'))].sort());
});

test('the root entry point has what an embedder needs and not the internals', async () => {
  const m = (await import('ikev1-engine')) as Record<string, unknown>;
  for (const n of ['Gateway', 'parseConfig', 'loadConfig', 'ConfigError', 'parseMessage', 'encodeMessage', 'PayloadType', 'NotifyType', 'LoadTester', 'defaultCrypto', 'nodeCrypto', 'nativeCrypto', 'createEspSa', 'EspStatus', 'IkeError']) {
    assert.ok(n in m, `root lacks ${n}`);
  }
  for (const n of ['tv', 'tlv', 'writeIpv4', 'Phase1', 'CookieGenerator', 'hash1', 'nativeAddon', 'nativeTestAddon', 'UdpSocket', 'codecError']) {
    assert.ok(!(n in m), `root exports the internal ${n}`);
  }
  const gateway = (await import('ikev1-engine/gateway')) as Record<string, unknown>;
  assert.equal(m.Gateway, gateway.Gateway, 'one Gateway class whichever entry point it comes from');
});
