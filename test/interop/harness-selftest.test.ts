// The harness checks itself: strongSwan against strongSwan in two fresh namespaces, Main Mode
// (aes128-sha1-modp2048) + Quick Mode with user-space ESP (kernel-libipsec, so ESP in UDP 4500),
// a ping through the tunnel, both daemons' SAs and logged keys compared, tshark decoding the
// capture with those keys, and nothing left behind afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsPair, netnsAvailable, StrongSwanPeer, charonAvailable, Capture, tsharkAvailable, tsharkDecode, tsharkKeysFromCharon, readPcap, classifyUdp, isAlive, interopSkipReason } from './harness/index.js';

// skipped (with the reason) only when the machine cannot do it; under .ci/run (IKE_INTEROP_REQUIRED=1) never
const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const haveTshark = !skip && (tsharkAvailable().ok || process.env.IKE_INTEROP_REQUIRED === '1');

test('strongSwan <-> strongSwan: Main Mode + Quick Mode, ESP in UDP through the tunnel, keys agree, clean teardown', { skip, timeout: 60_000 }, async (t) => {
  const t0 = performance.now();
  const pair = await NetnsPair.create();
  const names = [pair.a.ns, pair.b.ns];
  let pids: number[] = [];
  try {
    assert.deepEqual(NetnsPair.listNamespaces().filter((n) => names.includes(n)).sort(), names.sort());
    // a Node.js process inside namespace b sees only that namespace's addresses; IPC passes through
    const child = pair.spawnNode('b', ['-e', `
      const os = require('node:os');
      const addrs = Object.values(os.networkInterfaces()).flat().filter((a) => a.family === 'IPv4').map((a) => a.address);
      process.send({ addrs }, () => process.disconnect());`], { ipc: true });
    const msg = await new Promise<{ addrs: string[] }>((res, rej) => {
      child.once('message', (m) => res(m as { addrs: string[] }));
      child.once('exit', (code) => rej(new Error(`node in namespace exited ${code}`)));
    });
    assert.deepEqual(msg.addrs.sort(), ['10.99.0.2', '10.99.2.1', '127.0.0.1']);

    const init = new StrongSwanPeer(pair, 'a', { ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1' });
    const resp = new StrongSwanPeer(pair, 'b', { ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1' });
    const cap = haveTshark ? await Capture.start(pair, 'a') : undefined;
    await Promise.all([init.start(), resp.start()]);
    pids = pair.pids();
    assert.ok(pids.length >= 2, 'both charons run');

    const r = await init.initiate(undefined, 15);
    assert.ok(r.ok, `initiate failed:\n${r.output}\n${init.logTail(30)}`);

    const ping = await pair.ping('a', pair.b.inner, { src: pair.a.inner, count: 2 });
    assert.equal(ping.code, 0, `ping through the tunnel failed: ${ping.stdout}${ping.stderr}`);

    const [sa, sb] = await Promise.all([init.listSas(), resp.listSas()]);
    assert.equal(sa.length, 1);
    assert.equal(sb.length, 1);
    const ia = sa[0]!, ib = sb[0]!;
    for (const s of [ia, ib]) {
      assert.equal(s.state, 'ESTABLISHED');
      assert.equal(s.version, 1);
      assert.equal(s.encrAlg, 'AES_CBC');
      assert.equal(s.encrKeysize, 128);
      assert.equal(s.integAlg, 'HMAC_SHA1_96');
      assert.equal(s.dhGroup, 'MODP_2048');
      assert.equal(s.children.length, 1);
      assert.equal(s.children[0]!.state, 'INSTALLED');
      assert.equal(s.children[0]!.protocol, 'ESP');
      assert.ok(s.children[0]!.encap, 'kernel-libipsec runs ESP in UDP');
    }
    assert.ok(ia.initiator && !ib.initiator);
    assert.equal(ia.cookieI, ib.cookieI);
    assert.equal(ia.cookieR, ib.cookieR);
    assert.equal(ia.children[0]!.spiIn, ib.children[0]!.spiOut);
    assert.equal(ia.children[0]!.spiOut, ib.children[0]!.spiIn);
    assert.ok(ia.children[0]!.packetsOut >= 2, 'the pings went through the CHILD_SA');
    assert.deepEqual(ia.children[0]!.localTs, ['10.99.1.1/32']);
    assert.deepEqual(ia.children[0]!.remoteTs, ['10.99.2.1/32']);

    const [ka, kb] = await Promise.all([init.keys(), resp.keys()]);
    assert.equal(ka.length, 1);
    assert.equal(kb.length, 1);
    const a = ka[0]!, b = kb[0]!;
    assert.equal(a.cookieI, ia.cookieI, 'cookie from the log = cookie from vici');
    assert.equal(a.cookieR, ia.cookieR);
    assert.equal(b.cookieI, ia.cookieI);
    for (const f of ['dhSecret', 'skeyid', 'skeyidD', 'skeyidA', 'skeyidE', 'ka', 'initialIv'] as const) {
      assert.ok(a[f] && /^[0-9a-f]+$/.test(a[f]!), `${f} logged`);
      assert.equal(a[f], b[f], `${f} differs between initiator and responder`);
    }
    assert.equal(a.ka!.length, 32, 'AES-128 Ka');
    assert.equal(a.children.length, 1);
    assert.equal(b.children.length, 1);
    const ca = a.children[0]!, cb = b.children[0]!;
    for (const f of ['spiI', 'spiR', 'encI', 'encR', 'integI', 'integR'] as const) {
      assert.ok(ca[f], `${f} logged`);
      assert.equal(ca[f], cb[f], `CHILD_SA ${f} differs`);
    }
    // crossed: what the initiator sends with is what the responder receives with
    assert.equal(ca.spiI, ia.children[0]!.spiOut);
    const outA = ca.sas.find((s) => s.direction === 'out')!;
    const inB = cb.sas.find((s) => s.direction === 'in')!;
    assert.equal(outA.spi, inB.spi);
    assert.equal(outA.encKey, inB.encKey);
    assert.equal(outA.integKey, inB.integKey);
    assert.equal(outA.encKey.length, 32);
    assert.equal(outA.integKey.length, 40);

    if (cap) {
      const file = await cap.stop(400);
      const udp = readPcap(file).map(classifyUdp);
      assert.ok(udp.filter((d) => d.kind === 'ike').length >= 9, 'MM 6 + QM 3 captured');
      assert.ok(udp.some((d) => d.kind === 'ike' && d.nonEspMarker), 'IKE floated to 4500');
      assert.ok(udp.filter((d) => d.kind === 'esp').length >= 4, 'ESP in UDP captured');
      const dec = await tsharkDecode(file, tsharkKeysFromCharon(ka), { verbose: true });
      assert.ok(dec.ok, dec.stderr);
      assert.deepEqual(dec.malformed, []);
      assert.match(dec.text, /Internet Control Message Protocol/, 'ESP decrypted to ICMP');
      assert.match(dec.text, /Payload: Hash \(8\)/, 'encrypted IKE messages decrypted');
    }

    await Promise.all([init.stop(2500), resp.stop(2500)]);
    assert.ok(!init.running && !resp.running);
    t.diagnostic(`charon start ${init.startMs.toFixed(0)}/${resp.startMs.toFixed(0)} ms, MM+QM ${r.ms.toFixed(0)} ms, stop ${init.stopMs.toFixed(0)}/${resp.stopMs.toFixed(0)} ms`);
  } finally {
    await pair.destroy();
  }
  assert.deepEqual(NetnsPair.listNamespaces().filter((n) => names.includes(n)), [], 'namespaces deleted');
  for (const pid of pids) assert.ok(!isAlive(pid), `process ${pid} still alive`);
  assert.ok(!pair.exists());
  const ms = performance.now() - t0;
  t.diagnostic(`whole self test ${ms.toFixed(0)} ms`);
  assert.ok(ms < 30_000, `self test took ${ms.toFixed(0)} ms`);
});

test('a peer whose configuration charon rejects fails start() and leaves nothing running', { skip, timeout: 30_000 }, async () => {
  const pair = await NetnsPair.create();
  try {
    const bad = new StrongSwanPeer(pair, 'a', { ike: 'aes128-nosuchhash-modp2048' });
    await assert.rejects(bad.start(), /did not start: swanctl --load-all failed/);
    assert.equal(bad.running, false);
    assert.deepEqual(pair.pids(), [], 'charon was stopped again');
    // the namespace is still usable afterwards
    const good = new StrongSwanPeer(pair, 'a');
    await good.start();
    assert.ok(good.running);
    assert.deepEqual(await good.listSas(), []);
    await good.stop(500);
  } finally {
    await pair.destroy();
  }
  assert.equal(pair.exists(), false);
});
