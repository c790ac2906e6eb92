import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModeCfgAttr, tlv } from '../../ts/isakmp/index.js';
import {
  AddressPool,
  AddressPoolExhausted,
  IsakmpSaContext,
  RemoteAccessClient,
  RemoteAccessServer,
  decodeSplitInclude,
  encodeSplitInclude,
  hostSelector,
  modeCfgAttributes,
  parseSubnet,
  readModeCfgAttributes,
  trafficSelector,
  tsToString,
  type ModeCfgServerConfig,
  type RemoteAccessClientOptions,
} from '../../ts/ike/index.js';
import { Pump, crypto, xauthPhase1 } from './remote-access-pair.js';
import { child } from './quick-mode-pair.js';

const RETRANSMIT = { tries: 2, timeoutMs: 1000, factor: 2 };
const XAUTH = { verify: async (u: string, p: string) => u === 'alice' && p === 'pw' };

async function session(modeConfig: ModeCfgServerConfig, client: RemoteAccessClientOptions, cookieSuffix = '') {
  const { i, r } = await xauthPhase1();
  const s = new RemoteAccessServer(crypto, r, { peer: '10.99.0.1', retransmit: RETRANSMIT, xauth: XAUTH, modeConfig, owner: `sa${cookieSuffix}` });
  const c = new RemoteAccessClient(crypto, i, { retransmit: RETRANSMIT, xauth: { user: 'alice', password: 'pw' }, ...client });
  const pump = new Pump(c, s);
  pump.take('c', c.start(pump.now));
  pump.take('s', s.start(pump.now));
  await pump.run();
  return { s, c, pump };
}

const FULL: Omit<ModeCfgServerConfig, 'pool'> = {
  netmask: '255.255.255.0',
  dns: ['10.1.0.53', '10.1.0.54'],
  nbns: ['10.1.0.137'],
  splitInclude: [parseSubnet('10.1.0.0/16'), parseSubnet('192.168.50.0/24')],
  banner: 'Authorised users only',
};

test('modecfg: pull after XAUTH gives address, netmask, DNS, NBNS, split include and banner', async () => {
  const pool = new AddressPool('10.8.0.0/24');
  const { s, c, pump } = await session({ pool, ...FULL }, { modeConfig: 'pull' });
  assert.ok(c.authenticated && s.authenticated);
  assert.equal(s.assigned, '10.8.0.1');
  assert.deepEqual(c.config, {
    address: '10.8.0.1',
    netmask: '255.255.255.0',
    dns: ['10.1.0.53', '10.1.0.54'],
    nbns: ['10.1.0.137'],
    splitInclude: [
      { address: '10.1.0.0', prefix: 16 },
      { address: '192.168.50.0', prefix: 24 },
    ],
    banner: 'Authorised users only',
  });
  // XAUTH (4 messages) then REQUEST / REPLY from the client side.
  assert.deepEqual(pump.wire.map((w) => w.from), ['s', 'c', 's', 'c', 'c', 's']);
  assert.ok(pump.c.events.some((e) => e.type === 'modeCfg'));
  assert.equal(pool.inUse, 1);
  s.close();
  assert.equal(pool.inUse, 0, 'released when the SA goes');
  s.close();
  assert.equal(pool.inUse, 0);
});

test('modecfg: the REPLY carries only what was asked for', async () => {
  const pool = new AddressPool('10.8.0.0/24');
  const { c } = await session({ pool, ...FULL }, { modeConfig: 'pull', request: [ModeCfgAttr.INTERNAL_IP4_ADDRESS, ModeCfgAttr.INTERNAL_IP4_DNS] });
  assert.deepEqual(c.config, { address: '10.8.0.1', dns: ['10.1.0.53', '10.1.0.54'], nbns: [], splitInclude: [] });
});

test('modecfg: push (server SET after XAUTH, client ACK)', async () => {
  const pool = new AddressPool('10.8.0.10-10.8.0.12');
  const { s, c, pump } = await session({ pool, ...FULL, mode: 'push' }, { modeConfig: 'push' });
  assert.equal(c.config?.address, '10.8.0.10');
  assert.equal(c.config?.banner, 'Authorised users only');
  assert.deepEqual(pump.wire.map((w) => w.from), ['s', 'c', 's', 'c', 's', 'c']);
  // The server got its ACK: nothing left to retransmit.
  assert.equal(s.timer, null);
  assert.equal(pump.s.dropped.length, 0);
});

test('modecfg: pull survives loss and duplication (retransmissions answered from the cache)', async () => {
  const pool = new AddressPool('10.8.0.0/24');
  const { i, r } = await xauthPhase1();
  const s = new RemoteAccessServer(crypto, r, { peer: '10.99.0.1', retransmit: RETRANSMIT, xauth: XAUTH, modeConfig: { pool, ...FULL } });
  const c = new RemoteAccessClient(crypto, i, { retransmit: RETRANSMIT, xauth: { user: 'alice', password: 'pw' } });
  const pump = new Pump(c, s);
  let n = 0;
  // Lose every third datagram, duplicate every other one.
  pump.channel = (b) => {
    n++;
    if (n % 3 === 0) return [];
    return n % 2 === 0 ? [b, b] : [b];
  };
  pump.take('s', s.start(pump.now));
  await pump.run();
  assert.ok(s.authenticated && c.authenticated);
  assert.equal(c.config?.address, '10.8.0.1');
  assert.equal(pool.inUse, 1, 'one address, however many copies');
  assert.deepEqual(pump.s.events.filter((e) => e.type === 'xauthOk').length, 1);
});

test('modecfg: pool exhaustion gives a clear error and an empty REPLY; release makes room', async () => {
  const pool = new AddressPool('10.8.0.0/30');
  assert.equal(pool.size, 2);
  const a = await session({ pool }, { modeConfig: 'pull' }, 'a');
  const b = await session({ pool }, { modeConfig: 'pull' }, 'b');
  assert.deepEqual([a.c.config?.address, b.c.config?.address], ['10.8.0.1', '10.8.0.2']);
  const x = await session({ pool }, { modeConfig: 'pull' }, 'c');
  assert.equal(x.c.config?.address, undefined);
  assert.ok(x.pump.s.events.some((e) => e.type === 'modeCfgFailed' && e.reason === 'address pool 10.8.0.0/30 is exhausted (2 in use)'));
  a.s.close();
  const y = await session({ pool }, { modeConfig: 'pull' }, 'd');
  assert.equal(y.c.config?.address, '10.8.0.1');
});

test('modecfg: AddressPool never hands out an address twice, and says so when exhausted', () => {
  const p = new AddressPool('10.8.0.0/24');
  assert.equal(p.size, 254);
  const seen = new Set<string>();
  for (let k = 0; k < 254; k++) seen.add(p.allocate(`o${k}`));
  assert.equal(seen.size, 254);
  assert.ok(!seen.has('10.8.0.0') && !seen.has('10.8.0.255'));
  assert.equal(p.allocate('o7'), p.addressOf('o7'), 'the same owner keeps its address');
  assert.throws(() => p.allocate('late'), (e: unknown) => e instanceof AddressPoolExhausted && e.message === 'address pool 10.8.0.0/24 is exhausted (254 in use)');
  assert.equal(p.release('o5'), true);
  assert.equal(p.release('o5'), false);
  assert.equal(p.allocate('late'), '10.8.0.6');
  assert.throws(() => new AddressPool('10.8.0.1/24'), RangeError);
  assert.throws(() => new AddressPool('10.8.0.9-10.8.0.1'), RangeError);
  assert.throws(() => new AddressPool('banana'), RangeError);
  assert.equal(new AddressPool('10.9.0.5/32').allocate('x'), '10.9.0.5');
});

test('modecfg: UNITY_SPLIT_INCLUDE is 14 bytes per network (address, mask, 6 zero bytes)', () => {
  const b = encodeSplitInclude([parseSubnet('10.1.0.0/16'), parseSubnet('0.0.0.0/0')]);
  assert.equal(b.toString('hex'), '0a010000ffff0000000000000000' + '0000000000000000000000000000');
  assert.deepEqual(decodeSplitInclude(b), [
    { address: '10.1.0.0', prefix: 16 },
    { address: '0.0.0.0', prefix: 0 },
  ]);
  assert.equal(decodeSplitInclude(b.subarray(0, 13)), null);
  assert.equal(decodeSplitInclude(Buffer.from('0a010000ff00ff00000000000000', 'hex')), null, 'non-contiguous mask');
  // Malformed attribute values are skipped, not fatal.
  const r = readModeCfgAttributes([tlv(ModeCfgAttr.INTERNAL_IP4_ADDRESS, Buffer.from([1, 2, 3])), tlv(ModeCfgAttr.INTERNAL_IP4_DNS, Buffer.from([8, 8, 8, 8])), tlv(99, Buffer.alloc(0))]);
  assert.deepEqual(r.config, { dns: ['8.8.8.8'], nbns: [], splitInclude: [] });
  assert.deepEqual(r.ignored, [ModeCfgAttr.INTERNAL_IP4_ADDRESS, 99]);
  assert.equal(modeCfgAttributes({ dns: [], nbns: [], splitInclude: [] }).length, 0);
});

test('modecfg: then Quick Mode with the assigned address as the client traffic selector', async () => {
  const { i, r } = await xauthPhase1();
  const pool = new AddressPool('10.8.0.0/24');
  const cctx = new IsakmpSaContext(crypto, i, { children: [] });
  // The server's child is filled in once the address is known: it accepts exactly assigned/32.
  const serverChildren: ReturnType<typeof child>[] = [];
  const sctx = new IsakmpSaContext(crypto, r, { children: serverChildren });
  const s = new RemoteAccessServer(crypto, r, { peer: '10.99.0.1', retransmit: RETRANSMIT, xauth: XAUTH, modeConfig: { pool, splitInclude: [parseSubnet('10.1.0.0/16')] }, newMessageId: () => sctx.newMessageId() });
  const c = new RemoteAccessClient(crypto, i, { retransmit: RETRANSMIT, xauth: { user: 'alice', password: 'pw' }, newMessageId: () => cctx.newMessageId() });
  const pump = new Pump(c, s);
  pump.take('s', s.start(pump.now));
  await pump.run();
  assert.ok(s.authenticated, 'the gateway checks this before accepting Quick Mode');
  const assigned = c.config?.address;
  assert.equal(assigned, '10.8.0.1');
  const split = c.config!.splitInclude[0]!;
  serverChildren.push(child('ra', 'aes128-sha256', { localTs: trafficSelector(`${split.address}/${split.prefix}`)!, remoteTs: hostSelector(s.assigned!) }));

  const { out } = await cctx.initiate(child('ra', 'aes128-sha256', { localTs: hostSelector(assigned!), remoteTs: trafficSelector(`${split.address}/${split.prefix}`)! }), pump.now);
  let toServer = out.send;
  const childrenUp: string[] = [];
  for (let round = 0; round < 3 && toServer.length > 0; round++) {
    const toClient: Buffer[] = [];
    for (const m of toServer) {
      const o = await sctx.handle(m, pump.now);
      toClient.push(...o.send);
      for (const e of o.events) if (e.type === 'childSa') childrenUp.push(`r ${tsToString(e.child.localTs)} ${tsToString(e.child.remoteTs)}`);
    }
    toServer = [];
    for (const m of toClient) {
      const o = await cctx.handle(m, pump.now);
      toServer.push(...o.send);
      for (const e of o.events) if (e.type === 'childSa') childrenUp.push(`i ${tsToString(e.child.localTs)} ${tsToString(e.child.remoteTs)}`);
    }
  }
  assert.deepEqual(childrenUp.sort(), ['i 10.8.0.1 10.1.0.0/16', 'r 10.1.0.0/16 10.8.0.1']);

  // Another address than the assigned one is refused by the server's child.
  const other = await cctx.initiate(child('ra', 'aes128-sha256', { localTs: hostSelector('10.8.0.77'), remoteTs: trafficSelector('10.1.0.0/16')! }), pump.now);
  const refused = await sctx.handle(other.out.send[0]!, pump.now);
  assert.ok(!refused.events.some((e) => e.type === 'childSa'));
  assert.ok(refused.events.some((e) => e.type === 'childFailed'), JSON.stringify(refused.dropped));
});

test('address pool: the prefixes a route to it needs cover exactly its addresses', () => {
  assert.deepEqual(new AddressPool('10.8.0.0/24').prefixes(), ['10.8.0.0/24']);
  assert.deepEqual(new AddressPool('10.8.0.10-10.8.0.20').prefixes(), ['10.8.0.10/31', '10.8.0.12/30', '10.8.0.16/30', '10.8.0.20/32']);
  assert.deepEqual(new AddressPool('10.8.0.0-10.8.1.255').prefixes(), ['10.8.0.0/23']);
  assert.deepEqual(new AddressPool('10.8.0.7-10.8.0.7').prefixes(), ['10.8.0.7/32']);
  // every address of a random range in exactly one prefix, none outside
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  for (let i = 0; i < 50; i++) {
    const first = 0x0a080000 + Math.floor(Math.random() * 5000);
    const last = first + Math.floor(Math.random() * 3000);
    const ip = (v: number) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
    const covered: number[] = [];
    for (const p of new AddressPool(`${ip(first)}-${ip(last)}`).prefixes()) {
      const [a, bits] = p.split('/') as [string, string];
      const base = n(a);
      assert.equal(base % 2 ** (32 - Number(bits)), 0, `${p} aligned`);
      for (let k = 0; k < 2 ** (32 - Number(bits)); k++) covered.push(base + k);
    }
    assert.deepEqual(covered, Array.from({ length: last - first + 1 }, (_, k) => first + k));
  }
});
