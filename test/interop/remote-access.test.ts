// Remote access (XAUTH + Mode-Config over the Transaction exchange) against a real strongSwan 5.9: strongSwan
// as the server (xauth-generic checking a swanctl secret, a swanctl pool) with our gateway as the client, and
// our gateway as the server (scrypt user file, our pool) with strongSwan as the client (aggressive mode, group
// key ID, `vips = 0.0.0.0`). Both ends' views are checked: our events and strongSwan's `--list-sas`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { NetnsPair, StrongSwanPeer, charonAvailable, interopSkipReason, netnsAvailable, sleep, type IkeSaInfo } from './harness/index.js';
import { controlRequest } from '../../ts/gateway/index.js';
import { OurGateway, pingThrough, type OurEvent } from './ours.js';
import { userFileLine } from '../../ts/ike/index.js';

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? charonAvailable() : netns);
const PSK = 'interop-remote-access-group-key';
const POOL = '10.99.50.0/24';
const DNS = '10.99.0.53';

let pair: NetnsPair;
before(async () => {
  if (!skip) pair = await NetnsPair.create({ prefix: 'ikra' });
});
after(async () => {
  await pair?.destroy();
});

const raEvents = (ours: OurGateway, type: string): OurEvent[] => ours.events.filter((e) => e.event === 'remote-access' && e.type === type);

async function installedChild(ss: StrongSwanPeer, tries = 30): Promise<{ sa: IkeSaInfo; child: IkeSaInfo['children'][number] } | undefined> {
  for (let i = 0; i < tries; i++) {
    for (const sa of await ss.listSas()) {
      const child = sa.children.find((c) => c.state === 'INSTALLED');
      if (child) return { sa, child };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** The pings went through strongSwan's CHILD_SA: at least 3 packets each way on its counters. */
async function assertCarried(ss: StrongSwanPeer): Promise<void> {
  const counted = await installedChild(ss);
  assert.ok(counted && counted.child.packetsIn >= 3 && counted.child.packetsOut >= 3, `strongSwan counters: ${JSON.stringify(counted?.child)}`);
}

test('strongSwan interop: strongSwan is the XAUTH / Mode-Config server, our gateway the client', { skip, timeout: 30_000 }, async () => {
  const ss = new StrongSwanPeer(pair, 'b', {
    mode: 'main',
    ike: 'aes128-sha256-modp2048',
    esp: 'aes128-sha1',
    psk: PSK,
    kernel: 'libipsec',
    retransmitTries: 3,
    retransmitTimeout: 1,
    localTs: `${pair.b.inner}/32`,
    // the client's side of the CHILD_SA is the address it got from the pool
    remoteTs: 'dynamic',
    authRounds: { 'remote-xauth': { auth: 'xauth' } },
    pools: { p: { addrs: POOL, dns: DNS } },
    extraSecrets: { 'xauth-alice': { id: 'alice', secret: 'alice pw' } },
    extraConn: { pools: 'p' },
  });
  await ss.start();
  const ours = new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      office: {
        remote: pair.b.addr,
        auth: { psk: PSK },
        ike: ['aes128-sha256-modp2048'],
        esp: ['aes128-sha1'],
        remoteTs: `${pair.b.inner}/32`,
        xauth: { user: 'alice', password: 'alice pw' },
        modeConfig: { client: 'pull' },
        initiate: true,
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
      },
    },
  });
  try {
    await ours.start();
    const up = await ours.waitFor((e) => e.event === 'child-up' || e.event === 'error', 20_000);
    assert.equal(up.event, 'child-up', `${JSON.stringify(up)}\n${ss.logTail(40)}`);
    assert.equal(raEvents(ours, 'xauthOk').length, 1, JSON.stringify(ours.events));
    const cfg = raEvents(ours, 'modeCfg')[0];
    assert.ok(cfg, JSON.stringify(ours.events));
    const address = (cfg.config as { address?: string }).address;
    assert.equal(address, '10.99.50.1', 'the first address of strongSwan pool');
    assert.deepEqual((cfg.config as { dns?: string[] }).dns, [DNS]);
    assert.match(ss.log(), /assigning virtual IP 10\.99\.50\.1 to peer 'alice'/);
    assert.equal(up.localTs, address);
    assert.equal(up.remoteTs, pair.b.inner);
    const found = await installedChild(ss);
    assert.ok(found, `strongSwan has no INSTALLED CHILD_SA: ${JSON.stringify(await ss.listSas())}`);
    assert.deepEqual(found.sa.raw['remote-vips'], [address]);
    assert.equal(found.child.spiIn, up.spiOut);
    assert.equal(found.child.spiOut, up.spiIn);
    assert.deepEqual(found.child.localTs, [`${pair.b.inner}/32`]);
    assert.deepEqual(found.child.remoteTs, [`${address}/32`]);
    assert.equal(ours.events.filter((e) => e.event === 'error').length, 0, JSON.stringify(ours.events));
    // The gateway put the virtual IP on its TUN device and made it the source of the route to the server's
    // selector: the host's own ping, with no -I, leaves from it, through our data plane and strongSwan's libipsec.
    const vip = address.replace(/\./g, '\\.'); // as a regular expression
    const addr = await pair.run('a', 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'ike0']);
    assert.match(addr.stdout, new RegExp(`inet ${vip}/32 `), addr.stdout);
    const route = await pair.run('a', 'ip', ['-4', 'route', 'get', pair.b.inner]);
    assert.match(route.stdout, new RegExp(`dev ike0 src ${vip} `), route.stdout);
    await pingThrough(pair, 'a', pair.b.inner);
    await assertCarried(ss);
    // Its ISAKMP SA gone, the address leaves the host and the route stays, without it as source.
    await controlRequest(ours.controlPath, { cmd: 'terminate', name: 'office' });
    let after = '';
    for (let i = 0; i < 50; i++) {
      after = (await pair.run('a', 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'ike0'])).stdout;
      if (!after.includes(address)) break;
      await sleep(100);
    }
    assert.ok(!after.includes(address), after);
    const back = await pair.run('a', 'ip', ['-4', 'route', 'show', `${pair.b.inner}/32`]);
    assert.match(back.stdout, /dev ike0/, back.stdout);
    assert.doesNotMatch(back.stdout, new RegExp(vip), back.stdout);
  } finally {
    await ours.stop();
    await ss.stop(1000);
  }
});

const GROUP = 'group1';

/** Our gateway as the remote-access server (examples/remote-access-server.json shape) on side a. */
async function ourServer(mode: 'pull' | 'push' = 'pull'): Promise<OurGateway> {
  const config = {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    // the TUN data plane carries the clients' traffic: the pool is routed into it
    dataplane: { tun: 'ike0' },
    connections: {
      'road-warriors': {
        remote: '%any',
        mode: 'aggressive',
        auth: { psk: PSK, allowAggressivePsk: true },
        localId: '@vpn.example.com',
        // strongSwan's keyid:group1 is an ID_KEY_ID: '@#' + its bytes in hex
        remoteId: '@#' + Buffer.from(GROUP).toString('hex'),
        ike: ['aes128-sha256-modp2048'],
        esp: ['aes128-sha1'],
        localTs: `${pair.a.inner}/32`,
        xauth: { users: 'users', maxAttempts: 1 },
        modeConfig: { pool: POOL, dns: [DNS], mode },
        initiate: false,
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
      },
    },
  };
  const ours = new OurGateway(pair, 'a', config);
  // a cheap scrypt cost: the format is the one `ike passwd` writes
  writeFileSync(path.join(ours.dir, 'users'), `${await userFileLine('alice', 'alice pw', { N: 1024, r: 8, p: 1 })}\n`);
  return ours.start();
}

function strongSwanClient(password: string, mode: 'pull' | 'push' = 'pull'): StrongSwanPeer {
  return new StrongSwanPeer(pair, 'b', {
    mode: 'aggressive',
    ike: 'aes128-sha256-modp2048',
    esp: 'aes128-sha1',
    psk: PSK,
    kernel: 'libipsec',
    retransmitTries: 3,
    retransmitTimeout: 1,
    localId: `keyid:${GROUP}`,
    remoteId: '@vpn.example.com',
    localTs: 'dynamic',
    remoteTs: `${pair.a.inner}/32`,
    authRounds: { 'local-xauth': { auth: 'xauth', xauth_id: 'alice' } },
    extraSecrets: { 'xauth-alice': { id: 'alice', secret: password } },
    // swanctl's `pull = no` makes the IKEv1 client wait for the server's Mode-Config SET (push)
    extraConn: { vips: '0.0.0.0', pull: mode === 'pull' ? 'yes' : 'no' },
  });
}

for (const mode of ['pull', 'push'] as const) test(`strongSwan interop: our gateway is the XAUTH / Mode-Config server (${mode}), strongSwan the client (aggressive mode, key ID)`, { skip, timeout: 30_000 }, async () => {
  const ours = await ourServer(mode);
  const ss = strongSwanClient('alice pw', mode);
  try {
    await ss.start();
    const r = await ss.initiate(undefined, 15);
    assert.ok(r.ok, `strongSwan initiate failed:\n${r.output}\n${ss.logTail(40)}\nours: ${JSON.stringify(ours.events)}`);
    const found = await installedChild(ss);
    assert.ok(found, `strongSwan has no INSTALLED CHILD_SA: ${JSON.stringify(await ss.listSas())}`);
    assert.deepEqual(found.sa.raw['local-vips'], ['10.99.50.1']);
    assert.deepEqual(found.child.localTs, ['10.99.50.1/32']);
    assert.deepEqual(found.child.remoteTs, [`${pair.a.inner}/32`]);
    const up = await ours.waitFor((e) => e.event === 'child-up', 10_000);
    assert.equal(up.remoteTs, '10.99.50.1');
    assert.equal(up.spiIn, found.child.spiOut);
    assert.deepEqual(raEvents(ours, 'xauthOk').map((e) => e.user), ['alice']);
    assert.equal((raEvents(ours, 'modeCfg')[0]?.config as { address?: string } | undefined)?.address, '10.99.50.1');
    // strongSwan's client asks only for an address (no DNS handler plugin loaded), and logs XAUTH from its side
    assert.match(ss.log(), /XAuth authentication of 'alice' \(myself\) successful/);
    assert.match(ss.log(), mode === 'pull' ? /parsed TRANSACTION response \d+ \[ HASH CPRP\(ADDR\) \]/ : /parsed TRANSACTION request \d+ \[ HASH CPS\(ADDR/);
    assert.match(ss.log(), /installing new virtual IP 10\.99\.50\.1/);
    // traffic: our side routes the pool into its TUN device, so the replies to the client's virtual IP go back
    // through the SA; strongSwan sends from its virtual IP (its own route's source)
    const route = await pair.run('a', 'ip', ['-4', 'route', 'get', '10.99.50.1']);
    assert.match(route.stdout, /dev ike0/, route.stdout);
    await pingThrough(pair, 'b', pair.a.inner, '10.99.50.1');
    await assertCarried(ss);
    assert.equal(ours.events.filter((e) => e.event === 'error').length, 0, JSON.stringify(ours.events));
  } finally {
    await ss.stop(1000);
    await ours.stop();
  }
});

test('strongSwan interop: a wrong XAUTH password from strongSwan fails on our server, no SA on strongSwan', { skip, timeout: 30_000 }, async () => {
  const ours = await ourServer();
  const ss = strongSwanClient('not the password');
  try {
    await ss.start();
    const r = await ss.initiate(undefined, 10);
    assert.equal(r.ok, false, r.output);
    const err = await ours.waitFor((e) => e.event === 'error', 10_000);
    assert.equal(err.kind, 'AUTHENTICATION_FAILED', JSON.stringify(err));
    assert.match(String(err.message), /XAUTH.*alice/);
    assert.ok(await ss.waitForLog(/XAuth authentication of 'alice' \(myself\) failed/, 5000), ss.logTail(30));
    assert.equal(raEvents(ours, 'xauthOk').length, 0);
    assert.equal(raEvents(ours, 'modeCfg').length, 0);
    assert.equal(ours.events.filter((e) => e.event === 'child-up').length, 0);
    const sas = await ss.listSas();
    assert.equal(sas.flatMap((s) => s.children).length, 0, JSON.stringify(sas));
    assert.ok(!sas.some((s) => s.state === 'ESTABLISHED' && s.raw['local-vips']), JSON.stringify(sas));
  } finally {
    await ss.stop(1000);
    await ours.stop();
  }
});
