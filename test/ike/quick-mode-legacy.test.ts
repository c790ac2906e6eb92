// Legacy ESP transforms that Windows L2TP/IPsec and older Android clients still offer: 3DES-CBC (RFC 2451) and
// HMAC-MD5-96 (RFC 2403, only with allowWeak). Negotiated by Quick Mode in both roles, then real ESP packets
// through the derived SAs on both crypto providers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import { createChildEspSas, trafficSelector, type ChildSa } from '../../ts/ike/index.js';
import { parseEspProposal } from '../../ts/ike/esp-proposals.js';
import { child, phase1Pair, Phase2Pair } from './quick-mode-pair.js';

const providers: CryptoProvider[] = [nativeCrypto, nodeCrypto].filter((p): p is CryptoProvider => p !== null);
const netA = trafficSelector('10.99.1.0/24', 0, 0)!;
const netB = trafficSelector('10.99.2.0/24', 0, 0)!;

function weak(text: string) {
  const r = parseEspProposal(text, { allowWeak: true });
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r.value;
}

function espBothWays(a: ChildSa, b: ChildSa): void {
  const sa = createChildEspSas(a);
  const sb = createChildEspSas(b);
  const inner = Buffer.from('4500001c0000000040010000' + '0a630101' + '0a630201' + '0800f7ff00000000', 'hex');
  for (const [from, to] of [[sa, sb], [sb, sa]] as const) {
    const pkt = from.outbound.seal(inner, 4);
    const r = to.inbound.open(pkt);
    assert.ok(r.ok, `open: ${!r.ok && r.reason}`);
    assert.deepEqual(r.payload, inner);
    // A flipped ICV bit is refused (the MD5 / SHA-1 ICV is checked, not just carried).
    pkt[pkt.length - 1]! ^= 1;
    assert.equal(to.inbound.open(pkt).ok, false);
  }
  for (const s of [sa, sb]) {
    s.inbound.destroy();
    s.outbound.destroy();
  }
}

for (const c of providers) {
  for (const alg of ['3des-sha1', '3des-md5', 'aes128-md5', '3des-sha256-modp2048']) {
    test(`${c.name}: Quick Mode ${alg} (legacy clients), both roles, ESP passes both ways`, async () => {
      const sas = await phase1Pair(c);
      for (const starter of ['i', 'r'] as const) {
        const p = child('legacy', 'aes128gcm16', { proposals: weak(alg), localTs: starter === 'i' ? netA : netB, remoteTs: starter === 'i' ? netB : netA });
        // The responder prefers AES but accepts the legacy transform, as a gateway for Windows clients would.
        const q = child('legacy', 'aes128gcm16', { proposals: weak(`aes256gcm16-aes256-sha256-${alg.split('-').slice(0, 2).join('-')}${alg.endsWith('modp2048') ? '-modp2048' : ''}`), localTs: starter === 'i' ? netB : netA, remoteTs: starter === 'i' ? netA : netB });
        const pair = new Phase2Pair(c, sas, starter === 'i' ? { i: [p], r: [q] } : { i: [q], r: [p] });
        await pair.initiate(p, starter);
        await pair.run();
        const [ci] = pair.children(starter);
        const [cr] = pair.children(starter === 'i' ? 'r' : 'i');
        assert.ok(ci && cr, `children: ${pair.failures('i').concat(pair.failures('r')).map((e) => e.message).join('; ')}`);
        assert.equal(ci.algorithm, alg.replace('-modp2048', ''));
        assert.equal(cr.algorithm, ci.algorithm);
        espBothWays(ci, cr);
      }
    });
  }
}
