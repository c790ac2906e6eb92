// Traffic selectors (IDci / IDcr) and a property test of the Quick Mode machines against mutated messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nativeCrypto, nodeCrypto } from '../../ts/crypto/index.js';
import { IdType } from '../../ts/isakmp/index.js';
import {
  IsakmpSaContext,
  parseEspProposal,
  sameTs,
  trafficSelector,
  tsContains,
  tsFromIdPayload,
  tsIdPayload,
  tsToString,
  type IsakmpSa,
} from '../../ts/ike/index.js';
import { child, phase1Pair } from './quick-mode-pair.js';

const T = (s: string, proto = 0, port = 0) => {
  const t = trafficSelector(s, proto, port);
  assert.ok(t, s);
  return t;
};

test('trafficSelector: /32 is one address (IPV4_ADDR), subnets and ranges keep their ID types, bad input is null', () => {
  assert.equal(tsIdPayload(T('10.1.1.1/32')).idType, IdType.IPV4_ADDR);
  assert.equal(tsIdPayload(T('10.1.1.1')).idType, IdType.IPV4_ADDR);
  assert.equal(tsIdPayload(T('10.1.0.0/16')).idType, IdType.IPV4_ADDR_SUBNET);
  assert.equal(tsIdPayload(T('10.1.0.1-10.1.0.9')).idType, IdType.IPV4_ADDR_RANGE);
  assert.equal(tsIdPayload(T('2001:db8::/32')).idType, IdType.IPV6_ADDR_SUBNET);
  assert.equal(tsIdPayload(T('2001:db8::1/128')).idType, IdType.IPV6_ADDR);
  assert.equal(tsIdPayload(T('2001:db8::1-2001:db8::9')).idType, IdType.IPV6_ADDR_RANGE);
  for (const bad of ['10.1.1', '10.1.1.1/33', '10.1.0.9-10.1.0.1', 'host.example', '', '2001:db8::/129']) assert.equal(trafficSelector(bad), null, bad);
  assert.equal(trafficSelector('10.0.0.0/8', 256), null);
  assert.equal(trafficSelector('10.0.0.0/8', 6, 70000), null);
  assert.equal(tsToString(T('10.1.0.0/16', 17, 500)), '10.1.0.0/16[17/500]');
  for (const s of ['10.1.1.1', '10.1.0.0/16', '10.1.0.1-10.1.0.9', '2001:db8::/32']) {
    const p = tsIdPayload(T(s, 6, 80));
    assert.ok(sameTs(tsFromIdPayload(p)!, T(s, 6, 80)), s);
  }
  assert.equal(tsFromIdPayload({ type: 5, idType: IdType.FQDN, protocolId: 0, port: 0, data: Buffer.from('x') }), null);
  assert.equal(tsFromIdPayload({ type: 5, idType: IdType.IPV4_ADDR_SUBNET, protocolId: 0, port: 0, data: Buffer.from('0a000000ff00ff00', 'hex') }), null, 'non-contiguous mask');
});

test('tsContains: addresses, ranges across subnets, IPv6, protocol and port', () => {
  assert.ok(tsContains(T('10.0.0.0/8'), T('10.1.2.3')));
  assert.ok(tsContains(T('10.0.0.0/8'), T('10.255.0.0-10.255.255.255')));
  assert.ok(!tsContains(T('10.0.0.0/8'), T('10.255.0.0-11.0.0.0')));
  assert.ok(tsContains(T('10.1.0.0-10.1.0.255'), T('10.1.0.0/24')));
  assert.ok(!tsContains(T('10.1.0.0/24'), T('10.1.0.0/23')));
  assert.ok(!tsContains(T('10.0.0.0/8'), T('2001:db8::1')));
  assert.ok(tsContains(T('2001:db8::/32'), T('2001:db8:1::/48')));
  assert.ok(!tsContains(T('2001:db8::/32'), T('2001:db9::/48')));
  assert.ok(tsContains(T('0.0.0.0/0'), T('192.168.1.1', 6, 443)));
  assert.ok(!tsContains(T('0.0.0.0/0', 17), T('192.168.1.1', 6)));
  assert.ok(!tsContains(T('0.0.0.0/0', 6, 80), T('192.168.1.1', 6, 443)));
  assert.ok(!tsContains(T('0.0.0.0/0', 6, 80), T('192.168.1.1', 6, 0)), 'a port-specific policy does not contain "any port"');
  assert.ok(tsContains(T('0.0.0.0/0', 6, 80), T('192.168.1.1', 6, 80)));
});

test('Quick Mode with IPv6 subnet selectors over an IPv4 ISAKMP SA', async () => {
  const crypto = nativeCrypto ?? nodeCrypto;
  const sas = await phase1Pair(crypto);
  const ci = new IsakmpSaContext(crypto, sas.i, { children: [] });
  const cr = new IsakmpSaContext(crypto, sas.r, { children: [child('v6', 'aes256gcm16', { localTs: T('2001:db8:2::/48'), remoteTs: T('2001:db8:1::/48') })] });
  const { out } = await ci.initiate(child('v6', 'aes256gcm16', { localTs: T('2001:db8:1::/64'), remoteTs: T('2001:db8:2::5') }), 0);
  const r2 = await cr.handle(out.send[0]!, 0);
  const r3 = await ci.handle(r2.send[0]!, 0);
  const r4 = await cr.handle(r3.send[0]!, 0);
  const a = r3.events.find((e) => e.type === 'childSa');
  const b = r4.events.find((e) => e.type === 'childSa');
  assert.ok(a?.type === 'childSa' && b?.type === 'childSa');
  assert.equal(tsToString(b.child.remoteTs), '2001:db8:1::/64');
  assert.equal(tsToString(b.child.localTs), '2001:db8:2::5');
});

test('property: mutated copies of every Quick Mode message never throw and never stop the genuine exchange', async () => {
  const crypto = nativeCrypto ?? nodeCrypto;
  const sas: { i: IsakmpSa; r: IsakmpSa } = await phase1Pair(crypto);
  const proposals = parseEspProposal('aes128-sha1-modp2048');
  assert.ok(proposals.ok);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'set')), { minLength: 1, maxLength: 6 }),
      async (edits) => {
        const ci = new IsakmpSaContext(crypto, sas.i, { children: [] });
        const cr = new IsakmpSaContext(crypto, sas.r, { children: [{ name: 'c', proposals: proposals.value }] });
        const mutate = (m: Buffer): Buffer => {
          let b = Buffer.from(m);
          for (const [pos, v, op] of edits) {
            const k = pos % b.length;
            if (op === 'flip') b[k]! ^= v || 1;
            else if (op === 'set') b[k] = v;
            else b = b.subarray(0, k);
          }
          return b;
        };
        const { out } = await ci.initiate({ name: 'c', proposals: proposals.value }, 0);
        const qm1 = out.send[0]!;
        // A mutant may be dropped, refused (the header is not covered by HASH: e.g. the commit bit), or even
        // accepted as the genuine message (minor version 1); the exchange must complete exactly once anyway.
        const isQm = (b: Buffer) => b[18] === 32;
        const m1 = await cr.handle(mutate(qm1), 0);
        const r2 = await cr.handle(qm1, 0);
        const qm2 = r2.send.find(isQm) ?? m1.send.find(isQm);
        assert.ok(qm2, 'the genuine QM1 is answered');
        const m2 = await ci.handle(mutate(qm2), 0);
        const r3 = await ci.handle(qm2, 0);
        const childrenI = [...m2.events, ...r3.events].filter((e) => e.type === 'childSa');
        assert.equal(childrenI.length, 1);
        const qm3 = r3.send.find(isQm) ?? m2.send.find(isQm);
        assert.ok(qm3);
        const m3 = await cr.handle(mutate(qm3), 0);
        const r4 = await cr.handle(qm3, 0);
        assert.equal([...m3.events, ...r4.events].filter((e) => e.type === 'childSa').length, 1);
        return true;
      },
    ),
    { numRuns: 150 },
  );
});
