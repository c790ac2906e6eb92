// The gateway config: JSON -> normalised GatewayConfig, or one line per problem naming the key path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import fc from 'fast-check';
import {
  ConfigError,
  DEFAULT_ESP_PROPOSALS,
  DEFAULT_IKE_PROPOSALS,
  loadConfig,
  parseConfig,
  type ConnectionConfig,
  type GatewayConfig,
} from '../../ts/gateway/config.js';
import { AuthAlgorithm, EspTransformId } from '../../ts/isakmp/index.js';

const PSK = 'correct horse battery staple';
type Obj = Record<string, unknown>;

/** A valid config with connection 'site-a' patched (undefined deletes a key). */
function config(patch: Obj = {}, top: Obj = {}): Obj {
  const conn: Obj = { remote: '10.99.0.1', auth: { psk: PSK } };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete conn[k];
    else conn[k] = v;
  }
  return { listen: { address: '10.99.0.2' }, connections: { 'site-a': conn }, ...top };
}

function parse(json: unknown, env: Record<string, string> = {}, baseDir = '/nonexistent') {
  const r = parseConfig(json, { baseDir, env });
  for (const line of r.ok ? r.warnings : [...r.errors, ...r.warnings]) {
    assert.ok(!line.includes('\n'), `one line: ${line}`);
    assert.ok(!line.includes(PSK) && !line.includes('horse'), `PSK leaked: ${line}`);
  }
  return r;
}
function ok(json: unknown, env?: Record<string, string>, baseDir?: string): GatewayConfig {
  const r = parse(json, env, baseDir);
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.config;
}
function conn(patch: Obj = {}, env?: Record<string, string>, baseDir?: string): ConnectionConfig {
  return ok(config(patch), env, baseDir).connections[0]!;
}
/** The config must fail with exactly one error line; returns it. */
function oneError(json: unknown, env?: Record<string, string>, baseDir?: string): string {
  const r = parse(json, env, baseDir);
  assert.ok(!r.ok, 'should fail');
  assert.equal(r.errors.length, 1, r.errors.join('\n'));
  return r.errors[0]!;
}

test('the documented example normalises as described', () => {
  const c = ok({
    listen: { address: '10.99.0.2', port: 500, nattPort: 4500 },
    connections: {
      'site-a': {
        remote: '10.99.0.1', mode: 'main', auth: { psk: PSK },
        localId: '10.99.0.2', remoteId: '10.99.0.1',
        ike: ['aes128-sha1-modp2048'], esp: ['aes128gcm16'], pfs: true,
        localTs: '10.1.0.0/24', remoteTs: '10.2.0.0/24',
        lifetime: { ike: '8h', esp: '1h' }, dpd: { delay: '30s' },
        encap: false, initiate: true,
      },
    },
  });
  assert.deepEqual(c.listen, { address: '10.99.0.2', port: 500, nattPort: 4500 });
  assert.deepEqual(c.warnings, []);
  const s = c.connections[0]!;
  assert.equal(s.name, 'site-a');
  assert.equal(s.remote, '10.99.0.1');
  assert.equal(s.local, '10.99.0.2');
  assert.equal(s.mode, 'main');
  assert.deepEqual(s.auth.psk, Buffer.from(PSK));
  assert.deepEqual(s.localId, { kind: 'ipv4', address: '10.99.0.2' });
  assert.deepEqual(s.remoteId, { kind: 'ipv4', address: '10.99.0.1' });
  assert.deepEqual(s.ike, [{ encryption: 'aes-128-cbc', hash: 'sha1', group: 14, authMethod: 1, lifetimeSeconds: 28800 }]);
  assert.deepEqual(s.esp, [{ algorithm: 'aes128gcm16', encryption: { transformId: EspTransformId.ESP_AES_GCM_16, keyBits: 128 }, integrity: null, esn: false }]);
  assert.equal(s.pfs, true);
  assert.deepEqual(s.localTs, [{ kind: 'ipv4-subnet', subnet: '10.1.0.0/24' }]);
  assert.deepEqual(s.remoteTs, [{ kind: 'ipv4-subnet', subnet: '10.2.0.0/24' }]);
  assert.deepEqual(s.lifetime, { ikeSeconds: 28800, espSeconds: 3600 });
  assert.deepEqual(s.dpd, { delaySeconds: 30, timeoutSeconds: 150, action: 'clear' });
  assert.equal(s.encap, false);
  assert.equal(s.initiate, true);
});

test('defaults: listen, mode, ports, identities, proposals, selectors, timers', () => {
  const g = ok({ connections: { peer: { remote: '10.99.0.1', auth: { psk: PSK } } } });
  assert.deepEqual(g.listen, { address: '0.0.0.0', port: 500, nattPort: 4500 });
  const c = g.connections[0]!;
  assert.equal(c.remotePort, 500);
  assert.equal(c.mode, 'main');
  assert.equal(c.local, null);
  assert.equal(c.localId, 'address'); // listen on 0.0.0.0: our identity is the SA's address
  assert.deepEqual(c.remoteId, { kind: 'ipv4', address: '10.99.0.1' });
  assert.equal(c.ike.length, DEFAULT_IKE_PROPOSALS.length);
  assert.equal(c.esp.length, DEFAULT_ESP_PROPOSALS.length);
  assert.equal(c.pfs, false);
  assert.equal(c.localTs, 'dynamic');
  assert.equal(c.remoteTs, 'dynamic');
  assert.deepEqual(c.lifetime, { ikeSeconds: 8 * 3600, espSeconds: 3600 });
  assert.deepEqual(c.dpd, { delaySeconds: 0, timeoutSeconds: 150, action: 'clear' });
  assert.deepEqual(c.retransmit, { tries: 5, timeoutSeconds: 4, factor: 1.8 });
  assert.equal(c.selection, 'responder');
  assert.equal(c.encap, false);
  assert.equal(c.initiate, false);
  assert.equal(c.keylog, false);
  assert.equal(c.auth.allowAggressivePsk, false);
  const any = ok({ connections: { r: { remote: '%any', auth: { psk: PSK } } } }).connections[0]!;
  assert.equal(any.remote, '%any');
  assert.equal(any.remoteId, 'any');
});

test('IPv6 addresses are accepted and written in canonical form', () => {
  const g = ok({
    listen: { address: '2001:DB8:0:0::2' },
    connections: { v6: { remote: '2001:db8::1', auth: { psk: PSK }, localTs: '2001:db8:1::/48', remoteTs: ['2001:db8:2::5', '2001:db8:3::1-2001:db8:3::9'] } },
  });
  assert.equal(g.listen.address, '2001:db8::2');
  const c = g.connections[0]!;
  assert.deepEqual(c.localId, { kind: 'ipv6', address: '2001:db8::2' });
  assert.deepEqual(c.remoteId, { kind: 'ipv6', address: '2001:db8::1' });
  assert.deepEqual(c.localTs, [{ kind: 'ipv6-subnet', subnet: '2001:db8:1::/48' }]);
  assert.deepEqual(c.remoteTs, [{ kind: 'ipv6', address: '2001:db8:2::5' }, { kind: 'ipv6-range', start: '2001:db8:3::1', end: '2001:db8:3::9' }]);
  assert.equal(oneError(config({ remote: '2001:db8::1' })), 'connections.site-a.remote: is IPv6 but our address 10.99.0.2 is IPv4');
});

test('each missing required key is one line saying what to put there', () => {
  assert.equal(oneError({ listen: {} }), 'connections: missing (an object of named connections, e.g. { "site-a": { "remote": "10.99.0.1", ... } })');
  assert.equal(oneError({ connections: {} }), 'connections: is empty; define at least one connection');
  assert.equal(oneError(config({ remote: undefined })), `connections.site-a.remote: missing (the peer's address, e.g. "10.99.0.1", or "%any" for a responder)`);
  assert.match(oneError(config({ auth: undefined })), /^connections\.site-a\.auth: missing \(a pre-shared key: an object with one of "psk" .*"pskEnv" .*"pskFile"/);
  assert.match(oneError(config({ auth: {} })), /^connections\.site-a\.auth: no pre-shared key: set one of "psk"/);
  assert.match(oneError(config({ auth: { allowAggressivePsk: true } })), /^connections\.site-a\.auth: no pre-shared key/);
});

test('wrong types name the expected type and show the value', () => {
  const cases: Array<[unknown, string]> = [
    [config({}, { listen: { port: '500x' } }), 'listen.port: must be an integer 1-65535, got "500x"'],
    [config({}, { listen: { nattPort: 70000 } }), 'listen.nattPort: must be an integer 1-65535, got 70000'],
    [config({}, { listen: { address: 'localhost' } }), 'listen.address: must be an IPv4 or IPv6 address (0.0.0.0 or :: for any), got "localhost"'],
    [config({}, { listen: { nattPort: 500 } }), 'listen.nattPort: must differ from listen.port (both 500)'],
    [config({}, { listen: 'any' }), 'listen: must be an object, got "any"'],
    [config({}, { connections: [] }), 'connections: must be an object, got an array'],
    [config({ remote: 10, initiate: true }), 'connections.site-a.remote: must be a string, got 10'],
    [config({ remote: 'gw.example.com', initiate: true }), `connections.site-a.remote: must be the peer's IPv4 or IPv6 address or "%any" (hostnames are not resolved), got "gw.example.com"`],
    [config({ remotePort: 0 }), 'connections.site-a.remotePort: must be an integer 1-65535, got 0'],
    [config({ mode: 'agressive' }), `connections.site-a.mode: must be one of 'main', 'aggressive', got "agressive" (did you mean 'aggressive'?)`],
    [config({ encap: 'yes' }), 'connections.site-a.encap: must be true or false, got "yes"'],
    [config({ initiate: 1 }), 'connections.site-a.initiate: must be true or false, got 1'],
    [config({ keylog: null }), 'connections.site-a.keylog: must be true or false, got null'],
    [config({ ike: 5 }), 'connections.site-a.ike: must be a string or an array of strings, got 5'],
    [config({ esp: [] }), 'connections.site-a.esp: must not be empty'],
    [config({ esp: ['aes128gcm16', 7] }), 'connections.site-a.esp[1]: must be a string, got 7'],
    [config({ localTs: { net: '10.0.0.0/8' } }), 'connections.site-a.localTs: must be a string or an array of strings, got an object'],
    [config({ lifetime: '8h' }), 'connections.site-a.lifetime: must be an object, got "8h"'],
    [config({ lifetime: { espKilobytes: -1 } }), 'connections.site-a.lifetime.espKilobytes: must be an integer 1-4294967295, got -1'],
    [config({ dpd: { action: 'clr' } }), `connections.site-a.dpd.action: must be one of 'clear', 'restart', got "clr" (did you mean 'clear'?)`],
    [config({ retransmit: { factor: 0.5 } }), 'connections.site-a.retransmit.factor: must be a number 1-10, got 0.5'],
    [config({ retransmit: { tries: 2.5 } }), 'connections.site-a.retransmit.tries: must be an integer 0-100, got 2.5'],
    [config({ selection: 'peer' }), `connections.site-a.selection: must be one of 'responder', 'initiator', got "peer"`],
    [config({ pfs: 'yes' }), `connections.site-a.pfs: unknown DH group 'yes'; one of modp768, modp1024, modp1536, modp2048, modp3072, modp4096, modp6144, modp8192, ecp256, ecp384, ecp521`],
    [config({ pfs: 1 }), 'connections.site-a.pfs: must be true, false or a DH group like "modp2048", got 1'],
    [config({ allowWeak: 'true' }), 'connections.site-a.allowWeak: must be true or false, got "true"'],
    [config({ localId: '' }), 'connections.site-a.localId: must not be empty'],
    [{ connections: { 'site-a': 'x' } }, 'connections.site-a: must be an object, got "x"'],
    [{ connections: { 'bad name': { remote: '10.0.0.1', auth: { psk: PSK } } } }, 'connections.bad name: connection names use letters, digits, ., _ and - (at most 64, starting with a letter or digit)'],
    [[], '(top level): must be an object, got an array'],
  ];
  for (const [json, line] of cases) assert.equal(oneError(json), line);
});

test('unknown keys are errors, with "did you mean" when a known key is close; _comment is allowed anywhere', () => {
  assert.match(oneError(config({ remoet: '10.0.0.1' })), /^connections\.site-a\.remoet: unknown key \(did you mean 'remote'\?\); known keys: remote, remotePort,/);
  assert.match(oneError(config({}, { listens: {} })), /^listens: unknown key \(did you mean 'listen'\?\)/);
  assert.match(oneError(config({ auth: { psk: PSK, allowAgressivePsk: true } })), /auth\.allowAgressivePsk: unknown key \(did you mean 'allowAggressivePsk'\?\)/);
  assert.match(oneError(config({ lifetime: { ikee: '1h' } })), /lifetime\.ikee: unknown key \(did you mean 'ike'\?\)/);
  assert.match(oneError(config({ frobnicate: true })), /^connections\.site-a\.frobnicate: unknown key; known keys:/);
  const commented = { _comment: 'top', listen: { _comment: ['a', 'b'] }, connections: { _comment: 'list', x: { _comment: 1, remote: '10.0.0.1', auth: { _comment: 'k', psk: PSK }, lifetime: { _comment: '', ike: '1h' }, dpd: { _comment: 0 }, retransmit: { _comment: null } } } };
  assert.equal(ok(commented).connections.length, 1);
});

test('proposal keywords: unknown, weak, null, allowWeak / allowNull', () => {
  assert.equal(oneError(config({ ike: ['aes129-sha1-modp2048'] })), "connections.site-a.ike[0]: unknown keyword 'aes129' in IKE proposal 'aes129-sha1-modp2048'");
  assert.equal(oneError(config({ ike: 'aes128-sha1' })), "connections.site-a.ike: IKE proposal 'aes128-sha1' names no DH group (e.g. modp2048)");
  assert.equal(oneError(config({ esp: ['aes128gcm16', 'aes128-shaa1'] })), "connections.site-a.esp[1]: unknown keyword 'shaa1' in ESP proposal 'aes128-shaa1'");
  assert.match(oneError(config({ ike: ['aes128-md5-modp1024'] })), /^connections\.site-a\.ike\[0\]: .*weak algorithm\(s\) md5, modp1024; set allowWeak/);
  assert.equal(conn({ ike: ['aes128-md5-modp1024'], allowWeak: true }).ike[0]!.group, 2);
  assert.match(oneError(config({ esp: 'null-sha1' })), /^connections\.site-a\.esp: .*null encryption/);
  assert.equal(conn({ esp: 'null-sha1', allowNull: true }).esp[0]!.encryption.transformId, EspTransformId.ESP_NULL);
  // Several strings flatten, in order; the IKE lifetime goes into every phase 1 proposal.
  const c = conn({ ike: ['aes256-sha256-modp2048', 'aes128-aes256-sha1-ecp256'], esp: ['aes128-sha256', 'aes256gcm16'], lifetime: { ike: '1h' } });
  assert.deepEqual(c.ike.map((p) => [p.encryption, p.hash, p.group, p.lifetimeSeconds]), [
    ['aes-256-cbc', 'sha256', 14, 3600],
    ['aes-128-cbc', 'sha1', 19, 3600],
    ['aes-256-cbc', 'sha1', 19, 3600],
  ]);
  assert.deepEqual(c.esp.map((p) => p.algorithm), ['aes128-sha256', 'aes256gcm16']);
  assert.equal(c.esp[0]!.integrity?.authAlgorithm, AuthAlgorithm.HMAC_SHA2_256);
});

test('sha256_96: HMAC-SHA-256 proposals get the 96-bit child SAs, the same on the wire; a warning when none uses SHA-256', () => {
  const plain = conn({ esp: ['aes128-sha256', 'aes256gcm16', '3des-sha256', 'aes128-sha1'], allowWeak: true });
  const c = conn({ esp: ['aes128-sha256', 'aes256gcm16', '3des-sha256', 'aes128-sha1'], allowWeak: true, sha256_96: true });
  assert.deepEqual(c.esp.map((p) => p.algorithm), ['aes128-sha256_96', 'aes256gcm16', '3des-sha256_96', 'aes128-sha1']);
  // what Quick Mode sends and matches is unchanged: IKEv1 cannot say the ICV length
  assert.deepEqual(c.esp.map(({ algorithm: _, ...wire }) => wire), plain.esp.map(({ algorithm: _, ...wire }) => wire));
  assert.deepEqual(conn({ sha256_96: false }).esp, conn().esp);
  const none = parse(config({ esp: ['aes128gcm16'], sha256_96: true }));
  assert.ok(none.ok);
  assert.deepEqual(none.warnings, ['connections.site-a.sha256_96: no esp proposal uses HMAC-SHA-256 (e.g. aes128-sha256): it changes nothing']);
  const bad = parse(config({ sha256_96: 'yes' }));
  assert.ok(!bad.ok && bad.errors.some((e) => e.startsWith('connections.site-a.sha256_96: ')), JSON.stringify(bad));
});

test('traffic selectors: CIDR, address, range, lists; bad ones say what is wrong', () => {
  const c = conn({ localTs: ['10.1.0.0/24', '10.1.0.7', '10.1.0.8/32', '10.1.1.10-10.1.1.20', '10.1.2.1-10.1.2.1', '0.0.0.0/0'], remoteTs: '%dynamic' });
  assert.deepEqual(c.localTs, [
    { kind: 'ipv4-subnet', subnet: '10.1.0.0/24' },
    { kind: 'ipv4', address: '10.1.0.7' },
    { kind: 'ipv4', address: '10.1.0.8' },
    { kind: 'ipv4-range', start: '10.1.1.10', end: '10.1.1.20' },
    { kind: 'ipv4', address: '10.1.2.1' },
    { kind: 'ipv4-subnet', subnet: '0.0.0.0/0' },
  ]);
  assert.equal(c.remoteTs, 'dynamic');
  const bad: Array<[string, string]> = [
    ['10.1.0.0/33', "prefix length 33 is over 32 in '10.1.0.0/33'"],
    ['10.1.0.1/24', "host bits are set in '10.1.0.1/24': the network address is 10.1.0.0/24"],
    ['2001:db8::1/64', "host bits are set in '2001:db8::1/64': the network address is 2001:db8::/64"],
    ['2001:db8::/129', "prefix length 129 is over 128 in '2001:db8::/129'"],
    ['10.1.0.0/x', "prefix length 'x' in '10.1.0.0/x' is not a number 0-32"],
    ['10.1.0.256/24', "'10.1.0.256' is not an IPv4 or IPv6 address"],
    ['lan', "'lan' is not an IPv4 or IPv6 address"],
    ['10.0.0.9-10.0.0.1', "range '10.0.0.9-10.0.0.1' starts after it ends"],
    ['10.0.0.1-2001:db8::1', "range '10.0.0.1-2001:db8::1' mixes IPv4 and IPv6"],
  ];
  for (const [ts, problem] of bad) assert.equal(oneError(config({ remoteTs: [ts] })), `connections.site-a.remoteTs[0]: ${problem}`);
  assert.equal(oneError(config({ localTs: '10.1.0.0/24', remoteTs: '2001:db8::/32' })), 'connections.site-a.remoteTs: no selector of the same IP version as localTs (IPv4), so no Quick Mode could carry them');
});

test('durations: s, m, h, d, bare seconds; bad ones are one line', () => {
  const c = conn({ lifetime: { ike: '1d', esp: '15m', espKilobytes: 1000000 }, dpd: { delay: 30, timeout: '2m', action: 'restart' }, retransmit: { tries: 3, timeout: '0.5s', factor: 2 } });
  assert.deepEqual(c.lifetime, { ikeSeconds: 86400, espSeconds: 900, espKilobytes: 1000000 });
  assert.deepEqual(c.dpd, { delaySeconds: 30, timeoutSeconds: 120, action: 'restart' });
  assert.deepEqual(c.retransmit, { tries: 3, timeoutSeconds: 0.5, factor: 2 });
  assert.equal(conn({ lifetime: { esp: '7200' } }).lifetime.espSeconds, 7200);
  assert.equal(conn({ dpd: { delay: '0s' } }).dpd.delaySeconds, 0);
  const hint = "must be a duration like '30s', '15m', '8h', '1d' or a number of seconds";
  assert.equal(oneError(config({ lifetime: { ike: '8x' } })), `connections.site-a.lifetime.ike: ${hint}, got "8x"`);
  assert.equal(oneError(config({ lifetime: { esp: -5 } })), `connections.site-a.lifetime.esp: ${hint}, got -5`);
  assert.equal(oneError(config({ dpd: { delay: true } })), `connections.site-a.dpd.delay: ${hint}, got boolean`);
  assert.equal(oneError(config({ lifetime: { esp: '1.5s' } })), 'connections.site-a.lifetime.esp: must be whole seconds, got 1.5s');
  assert.equal(oneError(config({ lifetime: { ike: '30s' } })), 'connections.site-a.lifetime.ike: must be at least 60s and at most 4294967295s, got "30s"');
  assert.equal(oneError(config({ retransmit: { timeout: 0 } })), 'connections.site-a.retransmit.timeout: must be at least 0.001s and at most 4294967295s, got 0');
});

test('PSK sources: literal, hex, environment, file; exactly one', () => {
  assert.deepEqual(conn({ auth: { psk: '0x00ff10' } }).auth.psk, Buffer.from([0, 0xff, 0x10]));
  assert.deepEqual(conn({ auth: { psk: '0X0A0b' } }).auth.psk, Buffer.from([0x0a, 0x0b]));
  const e = conn({ auth: { pskEnv: 'SITE_A_PSK' } }, { SITE_A_PSK: PSK });
  assert.deepEqual(e.auth.psk, Buffer.from(PSK));
  assert.equal(e.auth.source, 'pskEnv SITE_A_PSK');
  assert.deepEqual(conn({ auth: { pskEnv: 'K' } }, { K: '0xabcd' }).auth.psk, Buffer.from([0xab, 0xcd]));

  const dir = mkdtempSync(path.join(tmpdir(), 'ike-config-'));
  try {
    writeFileSync(path.join(dir, 'a.psk'), `${PSK}\n`);
    writeFileSync(path.join(dir, 'b.psk'), `${PSK}\r\n`);
    writeFileSync(path.join(dir, 'c.psk'), `${PSK}\n\n`); // only one newline is stripped
    const f = conn({ auth: { pskFile: 'a.psk' } }, {}, dir);
    assert.deepEqual(f.auth.psk, Buffer.from(PSK));
    assert.equal(f.auth.source, `pskFile ${path.join(dir, 'a.psk')}`);
    assert.deepEqual(conn({ auth: { pskFile: 'b.psk' } }, {}, dir).auth.psk, Buffer.from(PSK));
    assert.deepEqual(conn({ auth: { pskFile: path.join(dir, 'c.psk') } }, {}, '/elsewhere').auth.psk, Buffer.from(`${PSK}\n`));
    assert.equal(oneError(config({ auth: { pskFile: 'missing.psk' } }), {}, dir), `connections.site-a.auth.pskFile: cannot read ${path.join(dir, 'missing.psk')} (ENOENT)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  assert.equal(oneError(config({ auth: { pskEnv: 'NOPE' } })), 'connections.site-a.auth.pskEnv: environment variable NOPE is not set');
  assert.equal(oneError(config({ auth: { pskEnv: 'constructor' } })), 'connections.site-a.auth.pskEnv: environment variable constructor is not set');
  assert.equal(oneError(config({ auth: { pskEnv: '$HOME' } })), 'connections.site-a.auth.pskEnv: must be the name of an environment variable (letters, digits, _), got "$HOME"');
  assert.deepEqual(parseConfig(config({ auth: { pskEnv: 'PATH' } }), { baseDir: '.', env: process.env }).ok, true);
  assert.equal(oneError(config({ auth: { psk: PSK, pskEnv: 'X' } })), 'connections.site-a.auth: set only one of psk, pskEnv, pskFile (got psk and pskEnv)');
  assert.equal(oneError(config({ auth: { psk: PSK, pskEnv: 'X', pskFile: 'y' } })), 'connections.site-a.auth: set only one of psk, pskEnv, pskFile (got psk and pskEnv and pskFile)');
  assert.equal(oneError(config({ auth: { psk: '0x' + 'horse' } })), "connections.site-a.auth.psk: the pre-shared key starts with '0x' but the rest is not an even number of hex digits");
  assert.equal(oneError(config({ auth: { psk: '0xabc' } })), "connections.site-a.auth.psk: the pre-shared key starts with '0x' but the rest is not an even number of hex digits");
  assert.equal(oneError(config({ auth: { psk: 12345678 } })), 'connections.site-a.auth.psk: must be a string, got a number');
  assert.equal(oneError(config({ auth: { psk: '' } })), 'connections.site-a.auth.psk: must not be empty');
  assert.equal(oneError(config({ auth: { pskEnv: 'E' } }), { E: '0xhorse' }), "connections.site-a.auth.pskEnv: the pre-shared key starts with '0x' but the rest is not an even number of hex digits");
});

test('the PSK is never printed: not in errors (checked for every parse here), nor when the config is logged', () => {
  const c = ok(config());
  for (const shown of [JSON.stringify(c), inspect(c, { depth: 10 }), inspect(c.connections[0]!.auth)]) {
    assert.ok(!shown.includes(PSK), shown);
    assert.ok(!shown.includes(Buffer.from(PSK).toString('hex')));
    assert.match(shown, /redacted, 28 bytes/);
  }
  assert.deepEqual(c.connections[0]!.auth.psk, Buffer.from(PSK)); // still there for the code that needs it
  // A PSK in a wrong place or with a problem: the key must not show in the error.
  const r = parse(config({ auth: { psk: [PSK] } }));
  assert.ok(!r.ok && r.errors[0] === 'connections.site-a.auth.psk: must be a string, got an array');
});

test('identities: strongSwan notation', () => {
  const cases: Array<[string, unknown]> = [
    ['10.99.0.2', { kind: 'ipv4', address: '10.99.0.2' }],
    ['2001:db8::2', { kind: 'ipv6', address: '2001:db8::2' }],
    ['@vpn.example.com', { kind: 'fqdn', value: 'vpn.example.com' }],
    ['@not a hostname', { kind: 'fqdn', value: 'not a hostname' }], // '@' takes the rest literally
    ['vpn.example.com', { kind: 'fqdn', value: 'vpn.example.com' }],
    ['gw1', { kind: 'fqdn', value: 'gw1' }],
    ['admin@example.com', { kind: 'user-fqdn', value: 'admin@example.com' }],
    ['@#0a0B', { kind: 'key-id', data: Buffer.from([0x0a, 0x0b]) }],
  ];
  for (const [text, id] of cases) {
    assert.deepEqual(conn({ localId: text }).localId, id, text);
    assert.deepEqual(conn({ remoteId: text }).remoteId, id, text);
  }
  assert.equal(conn({ remoteId: '%any' }).remoteId, 'any');
  assert.equal(oneError(config({ remoteId: '@#0a0' })), "connections.site-a.remoteId: key ID '@#0a0' must be '@#' followed by an even number of hex digits");
  assert.equal(oneError(config({ localId: '@' })), "connections.site-a.localId: '@' must be followed by a name, e.g. '@vpn.example.com'");
  assert.equal(oneError(config({ localId: 'user@' })), "connections.site-a.localId: 'user@' is not a valid 'user@host' identity");
  // a distinguished name (certificate connections): DER of the name, RDNs in the order written
  assert.equal((conn({ localId: 'C=CH, O=Example' }).localId as { kind: string }).kind, 'der-dn');
  assert.match(oneError(config({ localId: 'C=CH, XX=Example' })), /connections\.site-a\.localId: 'XX=Example' in distinguished name 'C=CH, XX=Example' is not KEY=value with a known key/);
  assert.equal(oneError(config({ localId: '%any' })), "connections.site-a.localId: '%any' is not an IP address, hostname, '@name', 'user@host' or '@#hex' key ID");
  // `local` sets our address (and so the default localId) when listening on any address.
  const g = ok({ connections: { x: { remote: '10.99.0.1', local: '10.99.0.2', auth: { psk: PSK } } } });
  assert.deepEqual(g.connections[0]!.localId, { kind: 'ipv4', address: '10.99.0.2' });
  assert.equal(oneError(config({ local: '10.99.0.3' })), 'connections.site-a.local: 10.99.0.3 is not listen.address 10.99.0.2; the gateway sends from the address it listens on');
});

test('PFS: true, false, a group keyword, or implied by the ESP proposals', () => {
  assert.equal(conn({ esp: ['aes128gcm16'], pfs: true }).esp[0]!.pfsGroup, undefined); // true: the IKE group at run time
  const g = conn({ esp: ['aes128gcm16', 'aes128-sha256-ecp256'], pfs: 'modp3072' });
  assert.equal(g.pfs, true);
  assert.deepEqual(g.esp.map((e) => e.pfsGroup), [15, 19]); // a group in the proposal wins
  const implied = conn({ esp: ['aes128gcm16-modp2048'] });
  assert.equal(implied.pfs, true);
  assert.equal(conn({ esp: 'aes128gcm16' }).pfs, false);
  assert.match(oneError(config({ esp: ['aes128gcm16-modp2048'], pfs: false })), /^connections\.site-a\.pfs: is false but an esp proposal names a DH group/);
  assert.match(oneError(config({ esp: ['aes128gcm16-modp2048', 'aes128-sha1'] })), /^connections\.site-a\.pfs: missing, and some esp proposals name a DH group while others do not/);
  assert.equal(oneError(config({ pfs: 'modp1024' })), 'connections.site-a.pfs: modp1024 is a weak DH group; set allowWeak to use it');
  assert.equal(oneError(config({ pfs: 'modp2084' })).split(';')[0], "connections.site-a.pfs: unknown DH group 'modp2084' (did you mean 'modp2048'?)");
});

test('cross checks: aggressive mode, initiate to %any, duplicate peers', () => {
  const agg = (extra: Obj) => config({ mode: 'aggressive', auth: { psk: PSK, allowAggressivePsk: true }, ...extra });
  assert.equal(
    oneError(agg({ ike: ['aes128-sha256-modp2048', 'aes128-sha256-ecp256'] })),
    'connections.site-a.ike: aggressive mode can offer only one DH group: the KE payload goes in the first message, before the peer chooses; got modp2048, ecp256',
  );
  assert.match(oneError(config({ mode: 'aggressive' })), /^connections\.site-a\.mode: aggressive mode with a pre-shared key .* offline dictionary attack on the key; set auth\.allowAggressivePsk: true/);
  const r = parse(agg({ ike: ['aes128-aes256-sha256-modp2048'] }));
  assert.ok(r.ok);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /^connections\.site-a\.mode: .*offline dictionary attack/);
  assert.equal(oneError({ connections: { r: { remote: '%any', initiate: true, auth: { psk: PSK } } } }), `connections.r.initiate: cannot initiate to remote "%any"; give the peer's address or set initiate: false`);

  const dup = parse({ connections: { a: { remote: '10.0.0.1', auth: { psk: PSK } }, b: { remote: '10.0.0.1', auth: { psk: 'other key' } }, c: { remote: '10.0.0.1', remoteId: '@c', auth: { psk: PSK } } } });
  assert.ok(dup.ok);
  assert.deepEqual(dup.warnings, ['connections.b: same remote and identities as connections.a; only the first will be used']);
  assert.deepEqual(dup.config.connections.map((c) => c.name), ['a', 'b', 'c']);
  const any = parse({ connections: { a: { remote: '%any', remoteId: '@a', auth: { psk: PSK } }, b: { remote: '%any', remoteId: '@b', auth: { psk: PSK } } } });
  assert.ok(any.ok);
  assert.match(any.warnings.join('\n'), /^connections\.b: main mode picks the PSK by the peer's address before its ID is known/);
  const k = parse(config({ keylog: true }));
  assert.ok(k.ok && k.warnings[0] === 'connections.site-a.keylog: session keys will be written to the key log; use for debugging only');
});

test('dataplane.workers: 1 to 64 native workers, one per core by default; anything else is one clear error', () => {
  assert.equal(ok(config({}, { dataplane: {} })).dataplane?.workers, Math.min(64, availableParallelism()));
  assert.equal(ok(config({}, { dataplane: { workers: 1 } })).dataplane?.workers, 1);
  assert.equal(ok(config({}, { dataplane: { workers: 64 } })).dataplane?.workers, 64);
  assert.equal(oneError(config({}, { dataplane: { workers: 0 } })), 'dataplane.workers: must be an integer 1-64, got 0');
  assert.equal(oneError(config({}, { dataplane: { workers: 65 } })), 'dataplane.workers: must be an integer 1-64, got 65');
  assert.equal(oneError(config({}, { dataplane: { workers: 1.5 } })), 'dataplane.workers: must be an integer 1-64, got 1.5');
  assert.equal(oneError(config({}, { dataplane: { workers: '2' } })), 'dataplane.workers: must be an integer 1-64, got "2"');
  assert.match(oneError(config({}, { dataplane: { worker: 2 } })), /^dataplane\.worker: unknown key \(did you mean 'workers'\?\)/);
});

test('every problem of a file is reported at once, one line each', () => {
  const r = parse({
    listen: { port: '500x', adress: '10.0.0.1' },
    connections: {
      a: { ike: ['aes129-sha1-modp2048'], auth: { psk: PSK, pskFile: 'k' }, localTs: '10.1.0.0/33', lifetime: { ike: '8x' } },
      b: { remote: '10.0.0.2', auth: { psk: PSK }, mode: 'fast', dpd: { action: 'clr' } },
    },
  });
  assert.ok(!r.ok);
  assert.deepEqual(r.errors, [
    "listen.adress: unknown key (did you mean 'address'?); known keys: address, port, nattPort",
    'listen.port: must be an integer 1-65535, got "500x"',
    `connections.a.remote: missing (the peer's address, e.g. "10.99.0.1", or "%any" for a responder)`,
    'connections.a.auth: set only one of psk, pskEnv, pskFile (got psk and pskFile)',
    `connections.a.lifetime.ike: must be a duration like '30s', '15m', '8h', '1d' or a number of seconds, got "8x"`,
    "connections.a.ike[0]: unknown keyword 'aes129' in IKE proposal 'aes129-sha1-modp2048'",
    "connections.a.localTs: prefix length 33 is over 32 in '10.1.0.0/33'",
    `connections.b.mode: must be one of 'main', 'aggressive', got "fast"`,
    `connections.b.dpd.action: must be one of 'clear', 'restart', got "clr" (did you mean 'clear'?)`,
  ]);
  const e = new ConfigError(r.errors);
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'ConfigError');
  assert.equal(e.message, r.errors.join('\n'));
  assert.deepEqual(e.errors, r.errors);
});

test('loadConfig: reads a file, resolves pskFile beside it, throws ConfigError with the lines', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ike-config-'));
  try {
    writeFileSync(path.join(dir, 'peer.psk'), '0x0102\n');
    writeFileSync(path.join(dir, 'good.json'), JSON.stringify({ connections: { p: { remote: '10.0.0.1', auth: { pskFile: 'peer.psk' } } } }));
    const g = await loadConfig(path.join(dir, 'good.json'), {});
    assert.deepEqual(g.connections[0]!.auth.psk, Buffer.from([1, 2]));

    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ connections: { p: { remote: '10.0.0.1', auth: { pskEnv: 'MISSING' } } }, listen: { port: 0 } }));
    await assert.rejects(loadConfig(path.join(dir, 'bad.json'), {}), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.errors, ['listen.port: must be an integer 1-65535, got 0', 'connections.p.auth.pskEnv: environment variable MISSING is not set']);
      return true;
    });
    writeFileSync(path.join(dir, 'syntax.json'), '{ "connections": { , } }');
    await assert.rejects(loadConfig(path.join(dir, 'syntax.json'), {}), (e: unknown) => {
      assert.ok(e instanceof ConfigError && e.errors.length === 1);
      assert.match(e.errors[0]!, /syntax\.json:1:20: not valid JSON: /);
      assert.ok(!e.errors[0]!.includes('\n'));
      return true;
    });
    await assert.rejects(loadConfig(path.join(dir, 'nope.json'), {}), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, `${path.join(dir, 'nope.json')}: cannot read the config file (ENOENT)`);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parseConfig never throws: random JSON, and known keys with random values (fast-check)', () => {
  const keys = ['remote', 'remotePort', 'local', 'mode', 'auth', 'localId', 'remoteId', 'ike', 'esp', 'pfs', 'localTs', 'remoteTs', 'lifetime', 'dpd', 'encap', 'initiate', 'retransmit', 'selection', 'keylog', 'allowWeak', 'allowNull', 'psk', 'pskEnv', 'ike', 'delay', 'action', 'tries', 'address', 'port', 'constructor', '__proto__', '_comment'];
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom('%any', '10.0.0.1', '::', '10.1.0.0/24', '8h', 'aes128gcm16', 'aes128-sha1-modp2048', 'modp2048', 'aggressive', '@#0a', 'x@'),
  );
  const conn = fc.dictionary(fc.constantFrom(...keys), fc.oneof(value, fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 4 })), { maxKeys: 10 });
  const doc = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    fc.record({ listen: fc.oneof(value, fc.dictionary(fc.constantFrom(...keys), value)), connections: fc.dictionary(fc.string({ maxLength: 8 }), conn, { maxKeys: 3 }) }, { requiredKeys: [] }),
  );
  fc.assert(
    fc.property(doc, (json) => {
      const r = parseConfig(json, { baseDir: '/nonexistent', env: {} });
      for (const line of r.ok ? r.warnings : r.errors) assert.ok(!line.includes('\n'), line);
      if (!r.ok) assert.ok(r.errors.length > 0);
    }),
    { numRuns: 2000 },
  );
});
