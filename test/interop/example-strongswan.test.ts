// The README's newcomer path, verbatim: examples/site-to-site-strongswan.json as our gateway (`ike gateway`
// with its TUN data plane) and examples/site-to-site-strongswan.swanctl.conf loaded into a real charon, in two
// namespaces with exactly the example's addresses (NetnsPair: 10.99.0.1 / 10.99.0.2, inner 10.99.1.1 and
// 10.99.2.1). The tunnel comes up as the example says (our side initiates, PFS, AES-256-GCM), strongSwan
// lists its CHILD_SA, and ping goes through both ways.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable } from './harness/index.js';
import { OurGateway, pingThrough } from './ours.js';

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples');
const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);

/** strongSwan with the example's swanctl.conf instead of the harness's generated one. */
class ExampleStrongSwan extends StrongSwanPeer {
  override swanctlConf(): string {
    return readFileSync(path.join(examples, 'site-to-site-strongswan.swanctl.conf'), 'utf8');
  }
}

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikex' });
});
after(async () => {
  await pair?.destroy();
});

test('examples/site-to-site-strongswan: the tunnel comes up against charon and carries ping both ways', { skip, timeout: 90_000 }, async () => {
  assert.equal(pair.a.addr, '10.99.0.1');
  assert.equal(pair.b.addr, '10.99.0.2');
  const ss = new ExampleStrongSwan(pair, 'b', { conn: 'to-ours', kernel: 'libipsec' });
  await ss.start();
  const gw = new OurGateway(pair, 'a', JSON.parse(readFileSync(path.join(examples, 'site-to-site-strongswan.json'), 'utf8')) as object);
  try {
    await gw.start();
    const up = await gw.waitFor((e) => e.event === 'child-up', 20_000);
    assert.equal(up.proposal, 'aes256gcm16-modp2048');
    assert.equal(up.localTs, '10.99.1.0/24');
    const sas = await ss.listSas();
    assert.equal(sas.length, 1);
    for (const [from, to, src] of [['a', '10.99.2.1', '10.99.1.1'], ['b', '10.99.1.1', '10.99.2.1']] as const) {
      await pingThrough(pair, from, to, src);
    }
  } finally {
    await gw.stop();
    await ss.stop();
  }
});
