// The phase 1 lifetime as responder (issue 19 point 5): the shorter of the offer and ours is used, and when ours
// is the shorter one the peer is told with RESPONDER-LIFETIME for the ISAKMP SA (RFC 2407 4.6.3.1: protocol
// ISAKMP, SPI = CKY-I | CKY-R, data = Life Type / Life Duration), in an Informational right after phase 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IkeAttr, LifeType, NotifyType, ProtocolId, parseMessage } from '../../ts/isakmp/index.js';
import { IsakmpSaContext, parseIkeProposal, readInformational } from '../../ts/ike/index.js';
import { crypto } from './remote-access-pair.js';
import { policy, runPhase1 } from './pair.js';

async function phase1(initiatorSeconds: number, responderSeconds: number, mode: 'main' | 'aggressive') {
  const offer = parseIkeProposal('aes128-sha256-modp2048', { lifetimeSeconds: initiatorSeconds });
  const ours = parseIkeProposal('aes128-sha256-modp2048', { lifetimeSeconds: responderSeconds });
  assert.ok(offer.ok && ours.ok);
  const res = await runPhase1(
    crypto,
    policy({ mode, proposals: offer.value, localId: { kind: 'ipv4', address: '10.99.0.1' }, remoteId: { kind: 'ipv4', address: '10.99.0.2' } }),
    [policy({ mode, proposals: ours.value, localId: { kind: 'ipv4', address: '10.99.0.2' }, remoteId: { kind: 'ipv4', address: '10.99.0.1' }, allowAggressivePsk: true })],
  );
  assert.ok(res.initiator.sa && res.responder.sa, res.initiator.error?.message ?? res.responder.error?.message);
  return { i: res.initiator.sa, r: res.responder.sa };
}

for (const mode of ['main', 'aggressive'] as const) {
  test(`phase 1 (${mode}): a responder with the shorter lifetime uses it and sends RESPONDER-LIFETIME for the ISAKMP SA`, async () => {
    const { i, r } = await phase1(28_800, 3_600, mode);
    assert.equal(r.proposal.lifetimeSeconds, 3_600);
    assert.equal(r.proposal.offeredLifetimeSeconds, 28_800);
    const out = await new IsakmpSaContext(crypto, r, { children: [] }).establish(r, 0);
    // sent a moment after the last phase 1 message (Phase2Output.later), not with it
    assert.equal(out.send.length, 0);
    assert.equal(out.later?.length, 1);
    const m = parseMessage(out.later![0]!);
    assert.ok(m.ok && 'encrypted' in m.value);
    // the initiator reads it with its own keys: authenticated, a status notify (not an error)
    const rd = readInformational(crypto, i, m.value.header, m.value.encrypted);
    assert.ok(rd.ok, rd.ok ? '' : rd.reason);
    const n = rd.events.find((e) => e.type === 'notify');
    assert.ok(n && n.type === 'notify', JSON.stringify(rd.events));
    assert.equal(n.notifyType, NotifyType.RESPONDER_LIFETIME);
    assert.equal(n.protocolId, ProtocolId.ISAKMP);
    assert.deepEqual(n.spi, Buffer.concat([i.cookieI, i.cookieR]));
    assert.equal(n.error, false);
    assert.deepEqual(n.data, Buffer.from([0x80, IkeAttr.LIFE_TYPE, 0, LifeType.SECONDS, 0x80, IkeAttr.LIFE_DURATION, 3_600 >> 8, 3_600 & 0xff]));
    // the initiator sends nothing of the kind
    const fromI = await new IsakmpSaContext(crypto, i, { children: [] }).establish(i, 0);
    assert.deepEqual([fromI.send, fromI.later ?? []], [[], []]);
  });
}

test('phase 1: no RESPONDER-LIFETIME when the offer is not longer than ours', async () => {
  for (const [offer, ours] of [[3_600, 3_600], [600, 3_600]] as const) {
    const { r } = await phase1(offer, ours, 'main');
    assert.equal(r.proposal.lifetimeSeconds, offer);
    assert.equal(r.proposal.offeredLifetimeSeconds, undefined);
    assert.deepEqual((await new IsakmpSaContext(crypto, r, { children: [] }).establish(r, 0)).send, []);
  }
});
