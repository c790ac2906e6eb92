// Every example config in examples/ loads and validates, so the files users copy stay correct.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { loadConfig } from '../../ts/gateway/config.js';
import { defaultWorkers } from '../../ts/gateway/config/dataplane.js';

// Compiled to dist/test/gateway/: the sources' examples/ is three levels up.
const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples');
const env = { IKE_PSK_SITE_A: '0x' + 'ab'.repeat(32), IKE_PSK_L2TP: '0x' + 'cd'.repeat(32) };

test('every examples/*.json loads without errors', async () => {
  // git keeps no file modes: the sample key is made owner-only as the README tells users to
  chmodSync(path.join(dir, 'certs', 'gw.key'), 0o600);
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 3, `examples found: ${files.join(', ')}`);
  for (const f of files) await loadConfig(path.join(dir, f), env);
});

test('every examples/*.yaml loads, and the YAML twin of a JSON example gives the same config', async () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 1, `YAML examples found: ${files.join(', ')}`);
  for (const f of files) {
    const twin = path.join(dir, f.replace(/\.yaml$/, '.json'));
    const [y, j] = await Promise.all([loadConfig(path.join(dir, f), env), loadConfig(twin, env)]);
    assert.deepEqual(y, j, `${f} and its JSON twin`);
  }
});

test('the examples say what they claim', async () => {
  const s2s = (await loadConfig(path.join(dir, 'site-to-site-psk.json'), env)).connections[0]!;
  assert.equal(s2s.mode, 'main');
  assert.equal(s2s.pfs, true);
  assert.equal(s2s.initiate, true);
  assert.deepEqual(s2s.auth.psk, Buffer.from('ab'.repeat(32), 'hex'));

  const agg = await loadConfig(path.join(dir, 'aggressive-remote-peer.json'), {});
  const a = agg.connections[0]!;
  assert.equal(a.mode, 'aggressive');
  assert.equal(a.remote, '%any');
  assert.equal(a.auth.allowAggressivePsk, true);
  assert.equal(a.auth.psk?.length, 32); // hex in branch-router.psk
  assert.deepEqual(a.remoteId, { kind: 'fqdn', value: 'branch1.example.com' });
  assert.equal(new Set(a.ike.map((p) => p.group)).size, 1);
  // git keeps the sample key file 0644: then the loader also warns that others can read it
  const aggWarnings = agg.warnings.filter((w) => !/can be read or changed by group or others/.test(w));
  assert.equal(aggWarnings.length, 1, agg.warnings.join('\n'));
  assert.match(aggWarnings[0]!, /offline dictionary attack/);

  const l2tp = (await loadConfig(path.join(dir, 'l2tp-ipsec-server.json'), env)).connections[0]!;
  assert.equal(l2tp.type, 'transport');
  assert.deepEqual([l2tp.localTs, l2tp.remoteTs], ['dynamic', 'dynamic']);
  assert.deepEqual([l2tp.localProtoPort, l2tp.remoteProtoPort], [{ protocol: 17, port: 1701 }, { protocol: 17, port: 0 }]);

  const tun = await loadConfig(path.join(dir, 'tunnel-dataplane.json'), env);
  // workers: one per core unless the file says otherwise
  assert.deepEqual(tun.dataplane, { tun: 'ike0', mtu: 1400, offload: true, workers: defaultWorkers() });

  const natt = (await loadConfig(path.join(dir, 'nat-t-forced.json'), {})).connections[0]!;
  assert.equal(natt.encap, true);
  assert.equal(natt.esp[0]!.pfsGroup, 19);
});
