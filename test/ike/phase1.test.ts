import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { parseIkeProposal, type IkeProposal } from '../../ts/ike/index.js';
import { ExchangeType, Flags, parseMessage } from '../../ts/isakmp/index.js';
import { policy, runPhase1, type Channel } from './pair.js';

const providers: CryptoProvider[] = [nativeCrypto, nodeCrypto].filter((p): p is CryptoProvider => p !== null);

function props(s: string, allowWeak = false): IkeProposal[] {
  const r = parseIkeProposal(s, { allowWeak });
  assert.ok(r.ok, (r as { error?: string }).error);
  return r.value;
}

const idA = { kind: 'ipv4', address: '10.99.0.1' } as const;
const idB = { kind: 'ipv4', address: '10.99.0.2' } as const;

function both(mode: 'main' | 'aggressive', ike: string, over: { i?: object; r?: object } = {}) {
  const p = props(ike, true);
  return {
    i: policy({ mode, proposals: p, localId: idA, remoteId: idB, ...over.i }),
    r: policy({ mode, proposals: p, localId: idB, remoteId: idA, allowAggressivePsk: true, ...over.r }),
  };
}

function assertSameKeys(i: any, r: any) {
  assert.ok(i.sa, `initiator failed: ${i.error?.message}`);
  assert.ok(r.sa, `responder failed: ${r.error?.message}`);
  for (const k of ['skeyidD', 'skeyidA', 'skeyidE', 'encryptionKey', 'lastIv', 'cookieI', 'cookieR'] as const) {
    assert.deepEqual(i.sa[k], r.sa[k], k);
  }
  assert.equal(i.sa.initiator, true);
  assert.equal(r.sa.initiator, false);
}

for (const crypto of providers) {
  for (const mode of ['main', 'aggressive'] as const) {
    for (const ike of [
      'aes128-sha1-modp2048',
      'aes256-sha256-modp2048',
      'aes192-sha384-modp3072',
      'aes256-sha512-ecp384',
      'aes128-sha256-ecp256',
      '3des-sha1-modp1024',
      '3des-md5-modp1024',
      'aes256-sha1-ecp521',
      'des-sha1-modp1536',
    ]) {
      test(`${crypto.name}: ${mode} mode ${ike} establishes with the same keys on both sides`, async () => {
        const { i, r } = both(mode, ike);
        const res = await runPhase1(crypto, i, [r]);
        assertSameKeys(res.initiator, res.responder);
        assert.equal(res.initiator.sa!.algorithms, ike);
        assert.deepEqual(res.responder.sa!.remoteId, idA);
        assert.deepEqual(res.initiator.sa!.remoteId, idB);
        assert.equal(res.wire.length, mode === 'main' ? 6 : 3);
      });
    }
  }
}

const crypto = providers[0]!;

test('the Main Mode wire: messages 1-4 clear, 5-6 encrypted, exchange type 2, cookies kept', async () => {
  const { i, r } = both('main', 'aes128-sha1-modp2048');
  const res = await runPhase1(crypto, i, [r]);
  const parsed = res.wire.map((w) => parseMessage(w.bytes));
  parsed.forEach((p, k) => {
    assert.ok(p.ok);
    assert.equal(p.value.header.exchangeType, ExchangeType.IDENTITY_PROTECTION);
    assert.equal((p.value.header.flags & Flags.ENCRYPTION) !== 0, k >= 4, `message ${k + 1}`);
  });
});

test('wrong pre-shared key: both sides fail with "pre-shared key mismatch", no SA', async () => {
  for (const mode of ['main', 'aggressive'] as const) {
    const { i, r } = both(mode, 'aes128-sha1-modp2048', { r: { psk: Buffer.from('another key') } });
    const res = await runPhase1(crypto, i, [r]);
    assert.equal(res.initiator.sa, undefined);
    assert.equal(res.responder.sa, undefined);
    const err = mode === 'main' ? res.responder.error : res.initiator.error;
    assert.equal(err?.kind, 'PSK_MISMATCH', `${mode}: ${err?.message}`);
    assert.match(err!.message, /pre-shared key mismatch/);
  }
});

test('no common proposal: NO_PROPOSAL_CHOSEN naming both lists, the initiator hears the notify', async () => {
  const i = policy({ proposals: props('aes256-sha256-modp2048'), localId: idA });
  const r = policy({ proposals: props('aes128-sha1-ecp256'), localId: idB });
  const res = await runPhase1(crypto, i, [r]);
  assert.equal(res.responder.error?.kind, 'NO_PROPOSAL_CHOSEN');
  assert.match(res.responder.error!.message, /peer offered \[aes256-sha256-modp2048\], we accept \[aes128-sha1-ecp256\]/);
  assert.equal(res.initiator.error?.kind, 'PEER_NOTIFY');
  assert.match(res.initiator.error!.message, /NO_PROPOSAL_CHOSEN/);
});

test('responder picks by its own priority or by the initiator order', async () => {
  const offer = props('aes128-sha1-modp2048-ecp256');
  const ours = props('aes256-sha256-ecp384-ecp256-modp2048'.replace('aes256-sha256-', 'aes128-sha1-'));
  for (const [order, want] of [['responder', 'aes128-sha1-ecp256'], ['initiator', 'aes128-sha1-modp2048']] as const) {
    const res = await runPhase1(crypto, policy({ proposals: offer, localId: idA }), [policy({ proposals: ours, localId: idB, selection: order })]);
    assert.equal(res.responder.sa?.algorithms, want, order);
  }
});

test('lifetime: both sides use the shorter of the offer and their own', async () => {
  const i = policy({ proposals: props('aes128-sha1-modp2048').map((p) => ({ ...p, lifetimeSeconds: 7200 })), localId: idA });
  const r = policy({ proposals: props('aes128-sha1-modp2048').map((p) => ({ ...p, lifetimeSeconds: 3600 })), localId: idB });
  const res = await runPhase1(crypto, i, [r]);
  assert.equal(res.responder.sa?.proposal.lifetimeSeconds, 3600);
  assert.equal(res.initiator.sa?.proposal.lifetimeSeconds, 7200 /* we never learn the responder's shorter limit; see README */);
});

test('aggressive mode PSK is refused unless the connection allows it, naming the setting', async () => {
  const { i, r } = both('aggressive', 'aes128-sha1-modp2048', { r: { allowAggressivePsk: false } });
  const res = await runPhase1(crypto, i, [r]);
  assert.equal(res.responder.error?.kind, 'POLICY');
  assert.match(res.responder.error!.message, /allowAggressivePsk/);
  assert.equal(res.initiator.sa, undefined);
});

test('aggressive mode with several DH groups is a configuration error', async () => {
  const i = policy({ mode: 'aggressive', proposals: props('aes128-sha1-modp2048-ecp256'), localId: idA });
  await assert.rejects(runPhase1(crypto, i, []).then((r) => { if (r.initiator.error) throw r.initiator.error; }), /only one DH group/);
});

test('wrong identity: AUTHENTICATION_FAILED names both identities', async () => {
  const { i, r } = both('main', 'aes128-sha1-modp2048', { r: { remoteId: { kind: 'fqdn', value: 'someone.else' } } });
  const res = await runPhase1(crypto, i, [r]);
  assert.equal(res.responder.error?.kind, 'AUTHENTICATION_FAILED');
  assert.match(res.responder.error!.message, /10\.99\.0\.1.*someone\.else/);
});

test('a silent peer: TIMEOUT after the retransmissions, with the count and time', async () => {
  const i = policy({ proposals: props('aes128-sha1-modp2048'), localId: idA, retransmit: { tries: 3, timeoutMs: 1000, factor: 2 } });
  const res = await runPhase1(crypto, i, [], () => []);
  assert.equal(res.initiator.error?.kind, 'TIMEOUT');
  assert.match(res.initiator.error!.message, /peer unreachable.*3 retransmissions \(15 s\)/);
  assert.equal(res.wire.length, 4);
});

test('loss and duplication: retransmissions complete the exchange with the same keys', async () => {
  for (const mode of ['main', 'aggressive'] as const) {
    for (let seed = 1; seed <= 12; seed++) {
      let x = seed;
      const rnd = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
      const lossy: Channel = (b) => {
        const v = rnd();
        if (v < 0.25) return [];
        if (v < 0.4) return [b, b];
        return [b];
      };
      const { i, r } = both(mode, 'aes128-sha256-ecp256');
      const res = await runPhase1(crypto, i, [r], lossy);
      if (res.initiator.error?.kind === 'TIMEOUT' || res.responder.error?.kind === 'TIMEOUT') continue; // possible with 25% loss
      assert.equal(res.initiator.error, undefined, `${mode} seed ${seed}: ${res.initiator.error?.message}`);
      assert.equal(res.responder.error, undefined, `${mode} seed ${seed}: ${res.responder.error?.message}`);
      assertSameKeys(res.initiator, res.responder);
    }
  }
});

test('corrupted and garbage datagrams at every step are ignored or fail cleanly, never throw', async () => {
  for (const mode of ['main', 'aggressive'] as const) {
    for (let target = 0; target < 6; target++) {
      let n = 0;
      const corrupt: Channel = (b) => {
        if (n++ !== target) return [b];
        const bad = Buffer.from(b);
        bad[Math.min(bad.length - 1, 30 + target * 7)]! ^= 0x55;
        return [bad, Buffer.from('garbage'), b.subarray(0, 20)];
      };
      const { i, r } = both(mode, 'aes128-sha1-modp2048');
      const res = await runPhase1(crypto, i, [r], corrupt);
      // Either both sides agree, or a side failed with a typed error (never a crash, never differing keys).
      if (res.initiator.sa && res.responder.sa) assertSameKeys(res.initiator, res.responder);
      for (const s of [res.initiator, res.responder]) if (s.error) assert.ok(s.error.kind, 'typed error');
    }
  }
});

test('forced encapsulation: reported as forced (not a NAT) on the forcing side, the peer sees a NAT, both float to the NAT-T port', async () => {
  for (const mode of ['main', 'aggressive'] as const) {
    const { i, r } = both(mode, 'aes128-sha1-modp2048', { i: { forceEncap: true } });
    const res = await runPhase1(crypto, i, [r]);
    assertSameKeys(res.initiator, res.responder);
    // Forced is not a NAT (issue 19 point 8): no NAT is claimed on the forcing side, the flag says why it floats.
    assert.deepEqual(res.initiator.sa!.nat, { version: 'rfc3947', localBehindNat: false, remoteBehindNat: false, encapForced: true }, mode);
    assert.deepEqual(res.responder.sa!.nat, { version: 'rfc3947', localBehindNat: false, remoteBehindNat: true }, mode);
  }
  const { i, r } = both('main', 'aes128-sha1-modp2048');
  const res = await runPhase1(crypto, i, [r]);
  assert.deepEqual(res.initiator.sa!.nat, { version: 'rfc3947', localBehindNat: false, remoteBehindNat: false });
  const off = both('main', 'aes128-sha1-modp2048', { i: { natt: false } });
  const res2 = await runPhase1(crypto, off.i, [off.r]);
  assert.equal(res2.responder.sa!.nat.version, null, 'no NAT-T vendor ID from the initiator: no NAT-D');
});

test('a duplicate after completion is answered from the cache, never processed again', async () => {
  const { CookieGenerator, Phase1 } = await import('../../ts/ike/index.js');
  const { A, B } = await import('./pair.js');
  const { i, r } = both('main', 'aes128-sha1-modp2048');
  const envI = { crypto, cookies: new CookieGenerator(crypto), local: A, remote: B };
  const envR = { crypto, cookies: new CookieGenerator(crypto), local: B, remote: A };
  let now = 5000;
  const { phase1: ini, out: o1 } = await Phase1.initiate(envI, i, now);
  const { phase1: res, out: o2 } = await Phase1.respond(envR, [r], o1.send[0]!, now);
  assert.ok(res);
  const o3 = await ini.handle(o2.send[0]!, ++now);
  const o4 = await res.handle(o3.send[0]!, ++now);
  const o5 = await ini.handle(o4.send[0]!, ++now);
  const o6 = await res.handle(o5.send[0]!, ++now);
  assert.ok(o6.established, 'responder established at message 5');
  const done = await ini.handle(o6.send[0]!, ++now);
  assert.ok(done.established, 'initiator established at message 6');
  // message 5 again (message 6 lost): the same message 6, no second "established"
  const again = await res.handle(o5.send[0]!, ++now);
  assert.equal(again.established, undefined);
  assert.deepEqual(again.send, o6.send);
  // message 3 replayed long after: the cached message 4 is not what it gets (a later step), nothing changes
  const old = await res.handle(o3.send[0]!, ++now);
  assert.equal(old.established, undefined);
  assert.deepEqual(old.send, []);
  // message 6 again at the initiator: ignored
  const dup = await ini.handle(o6.send[0]!, ++now);
  assert.equal(dup.established, undefined);
  assert.equal(dup.failed, undefined);
  assert.deepEqual(dup.send, []);
});

// DH on the thread pool (asyncDh) and in line take different paths through makeKeyPair / deriveKeys.
for (const asyncDh of [false, true]) {
  test(`main mode with asyncDh=${asyncDh}: same keys on both sides; a bad KE value (0) fails as INVALID_KE once retransmitted`, async () => {
    const crypto = providers[0]!;
    const { i, r } = both('main', 'aes128-sha1-modp2048', { i: { asyncDh }, r: { asyncDh } });
    const ok = await runPhase1(crypto, i, [r]);
    assertSameKeys(ok.initiator, ok.responder);
    // Message 3 with its KE data zeroed: the responder ignores it (it may be a forgery) until the same bytes
    // come again, the initiator's retransmission; then the exchange fails with the DH error.
    const zeroKe: Channel = (b, from) => {
      const m = parseMessage(b);
      if (from === 'i' && m.ok && 'payloads' in m.value && m.value.payloads[0]?.type === 4) {
        const ke = m.value.payloads[0];
        const copy = Buffer.from(b);
        copy.fill(0, ke.raw!.byteOffset - b.byteOffset + 4, ke.raw!.byteOffset - b.byteOffset + ke.raw!.length);
        return [copy];
      }
      return [b];
    };
    const bad = await runPhase1(crypto, i, [r], zeroKe);
    assert.equal(bad.responder.error?.kind, 'INVALID_KE', bad.responder.error?.message);
    assert.equal(bad.initiator.sa, undefined);
  });
}
