import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ikeOffer, ikeProposalFromTransform, ikeProposalName, parseIkeProposal, selectIkeProposal } from '../../ts/ike/index.js';

test('strongSwan IKE keywords: combinations, names, weak algorithms refused unless allowed', () => {
  const r = parseIkeProposal('aes128-aes256-sha256-modp2048-ecp256');
  assert.ok(r.ok);
  assert.deepEqual(r.value.map(ikeProposalName), ['aes128-sha256-modp2048', 'aes128-sha256-ecp256', 'aes256-sha256-modp2048', 'aes256-sha256-ecp256']);
  for (const weak of ['3des-sha1-modp1024', 'des-sha1-modp2048', 'aes128-md5-modp2048', 'aes128-sha1-modp768']) {
    const w = parseIkeProposal(weak);
    assert.equal(w.ok, false, weak);
    assert.match((w as { error: string }).error, /weak.*allowWeak/);
    assert.ok(parseIkeProposal(weak, { allowWeak: true }).ok, weak);
  }
});

test('unknown keywords are errors, including names of Object.prototype', () => {
  for (const bad of ['aes129-sha1-modp2048', 'constructor-sha1-modp2048', 'aes128-toString-modp2048', 'aes128-sha1-__proto__', 'aes128-sha1', 'sha1-modp2048']) {
    const r = parseIkeProposal(bad);
    assert.equal(r.ok, false, bad);
  }
});

test('transform round trip and selection by responder priority', () => {
  const ours = parseIkeProposal('aes256-sha256-ecp256-modp2048');
  const offer = parseIkeProposal('aes128-sha1-aes256-sha256-modp2048');
  assert.ok(ours.ok && offer.ok);
  const sa = ikeOffer(offer.value);
  for (const [k, t] of sa.transforms.entries()) {
    const back = ikeProposalFromTransform(t);
    assert.ok(back.ok);
    assert.deepEqual(back.value, offer.value[k]);
  }
  const choice = selectIkeProposal([sa], ours.value, 'responder');
  assert.equal(choice && ikeProposalName(choice.value), 'aes256-sha256-modp2048');
  assert.equal(selectIkeProposal([sa], parseIkeProposal('aes192-sha1-modp2048').ok ? (parseIkeProposal('aes192-sha1-modp2048') as any).value : [], 'responder'), null);
});
