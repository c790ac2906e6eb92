// The real vpnc 0.5.3 (Debian's package; the Cisco VPN client replacement of shared/CLIENTS.md) against our
// remote-access server with the TUN data plane, in network namespaces: Aggressive Mode with a group key (ID_KEY_ID),
// XAUTH, Mode-Config, Quick Mode, then ESP both ways between vpnc's own user-space ESP and our data plane: with
// no NAT (plain ESP, and ESP in UDP forced by vpnc), through a MASQUERADE router (NAT-T: NAT-D, the float to
// 4500, ESP in UDP), and with hybrid authentication.
// vpnc configures its TUN device through a script; ours (written here) only sets the address and the route
// to our side and records what vpnc handed it, so nothing outside the namespace (resolv.conf) is touched.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NatTopology, NetnsPair, iptablesAvailable, interopSkipReason, netnsAvailable, sleep, stopChild, type Availability } from './harness/index.js';
import { controlRequest } from '../../ts/gateway/index.js';
import { userFileLine } from '../../ts/ike/index.js';
import { OurGateway, pingThrough, type GatewayHost, type OurEvent, type Pinger } from './ours.js';
import { makePki } from '../ike/pki.js';

function vpncAvailable(): Availability {
  const r = spawnSync('vpnc', ['--version'], { encoding: 'utf8', timeout: 5000 });
  const v = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0] ?? '';
  return r.error || !v.startsWith('vpnc version') ? { ok: false, why: 'vpnc missing (package vpnc; scripts/install-interop-deps.sh)' } : { ok: true, why: v };
}

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? vpncAvailable() : netns);
const skipNat = skip || interopSkipReason(iptablesAvailable());
const GROUP = 'vpnc-group';
const PSK = 'vpnc-group-secret';
const POOL = '10.99.70.0/24';
const DNS = '10.99.1.53';

let pair: NetnsPair;
let dir: string;
before(async () => {
  if (skip) return;
  pair = await NetnsPair.create({ prefix: 'ikvpnc' });
  dir = mkdtempSync(path.join(os.tmpdir(), 'ike-vpnc-'));
});
after(async () => {
  await pair?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Where the two run: our server's namespace, address and inner address, and vpnc's namespace and address. */
interface Site {
  host: GatewayHost & Pinger<string> & { spawn(ns: string, cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess };
  server: { side: string; addr: string; inner: string };
  client: { side: string; addr: string };
}
const direct = (): Site => ({ host: pair, server: { side: 'a', addr: pair.a.addr, inner: pair.a.inner }, client: { side: 'b', addr: pair.b.addr } });

const raEvents = (gw: OurGateway, type: string): OurEvent[] => gw.events.filter((e) => e.event === 'remote-access' && e.type === type);

/** Our remote-access server; `cert`: hybrid authentication (HybridInitRSA: our certificate, the client's XAUTH). */
async function ourServer(site: Site, cert?: { cert: string; key: string; ca: string[]; sendChain?: boolean }): Promise<OurGateway> {
  const gw = new OurGateway(site.host, site.server.side, {
    listen: { address: site.server.addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      vpnc: {
        remote: '%any',
        mode: 'aggressive',
        ...(cert ? { auth: cert, remoteAuth: 'xauth' } : { auth: { psk: PSK, allowAggressivePsk: true }, localId: '@vpn.example.com' }),
        // vpnc sends the group name as ID_KEY_ID: '@#' + its bytes in hex
        remoteId: '@#' + Buffer.from(GROUP).toString('hex'),
        ike: ['aes256-sha1-modp2048', 'aes128-sha1-modp2048'],
        esp: ['aes256-sha1', 'aes128-sha1'],
        localTs: `${site.server.inner}/32`,
        xauth: { users: 'users', maxAttempts: 1 },
        modeConfig: { pool: POOL, dns: [DNS], banner: 'authorised users only', mode: 'pull' },
        retransmit: { tries: 3, timeout: '1s', factor: 1.5 },
      },
    },
  });
  // a cheap scrypt cost: the format is the one `ike passwd` writes
  writeFileSync(path.join(gw.dir, 'users'), `${await userFileLine('alice', 'alice pw', { N: 1024, r: 8, p: 1 })}\n`);
  return gw.start();
}

/**
 * Runs vpnc (as alice, DH 14, PFS as the server says) with `args`, until its script was called with
 * reason=connect: what vpnc handed the script (INTERNAL_IP4_*, CISCO_*), and how to stop it.
 */
async function connectVpnc(site: Site, name: string, args: string): Promise<{ handed: Record<string, string>; stop: () => Promise<void> }> {
  const env = path.join(dir, `env-${name}`);
  const script = path.join(dir, `script-${name}`);
  // the TUN device up with the address it got, a route to our side, its environment kept
  writeFileSync(script, [
    '#!/bin/sh',
    `env | grep -E '^(reason|TUNDEV|INTERNAL_IP4_|CISCO_|VPNGATEWAY)' | sort > ${env}.$reason`,
    'if [ "$reason" = connect ]; then',
    '  ip link set dev "$TUNDEV" up mtu 1400',
    '  ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"',
    `  ip route replace ${site.server.inner}/32 dev "$TUNDEV" src "$INTERNAL_IP4_ADDRESS"`,
    'fi',
    'exit 0',
    '',
  ].join('\n'));
  chmodSync(script, 0o755);
  const log = path.join(dir, `vpnc-${name}.log`);
  const vpnc = site.host.spawn(site.client.side, 'sh', ['-c', `exec vpnc --no-detach --non-inter --gateway ${site.server.addr} --id ${GROUP} --username alice --password 'alice pw' --dh dh14 --pfs server --script ${script} --ifname vpnc-${name} --local-addr ${site.client.addr} --debug 1 ${args} > ${log} 2>&1`]);
  const stop = () => stopChild(vpnc, 'SIGTERM', 3000).then(() => undefined);
  for (let i = 0; i < 100 && !existsSync(`${env}.connect`); i++) await sleep(100);
  if (!existsSync(`${env}.connect`)) {
    await stop();
    throw new Error(`vpnc did not connect:\n${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
  }
  const lines = readFileSync(`${env}.connect`, 'utf8').trim().split('\n');
  return { handed: Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])), stop };
}

/** Our child's counters saw the pings both ways, its encapsulation as expected; no error event. */
async function checkCarried(gw: OurGateway, udp: boolean): Promise<void> {
  const status = (await controlRequest(gw.controlPath, { cmd: 'status' })).status;
  const child = status.sas[0]!.children[0]!;
  assert.ok(child.in.packets >= 6 && child.out.packets >= 6, `our counters ${JSON.stringify(child)}`);
  assert.equal(child.encapsulation, udp, JSON.stringify(child));
  assert.equal(gw.events.filter((e) => e.event === 'error').length, 0, JSON.stringify(gw.events));
}

// natt: no NAT here, so plain ESP (vpnc's raw socket, our data plane's); force-natt: ESP in UDP 4500 all the same
for (const natt of ['natt', 'force-natt'] as const) {
  test(`vpnc (the real client), --natt-mode ${natt}: Aggressive Mode with a group key, XAUTH, Mode-Config, then pings both ways through its ESP and our data plane`, { skip, timeout: 60_000 }, async () => {
    const site = direct();
    const gw = await ourServer(site);
    let vpnc: Awaited<ReturnType<typeof connectVpnc>> | undefined;
    try {
      vpnc = await connectVpnc(site, natt, `--secret ${PSK} --natt-mode ${natt}`);
      assert.equal(vpnc.handed.INTERNAL_IP4_ADDRESS, '10.99.70.1', JSON.stringify(vpnc.handed));
      assert.equal(vpnc.handed.INTERNAL_IP4_DNS, DNS);
      assert.equal(vpnc.handed.CISCO_BANNER, 'authorised users only');
      assert.deepEqual(raEvents(gw, 'xauthOk').map((e) => e.user), ['alice']);
      const up = await gw.waitFor((e) => e.event === 'child-up' || e.event === 'error', 15_000);
      assert.equal(up.event, 'child-up', JSON.stringify(gw.events));
      assert.equal(up.remoteTs, '10.99.70.1');
      await pingThrough(site.host, site.client.side, site.server.inner, '10.99.70.1');
      await pingThrough(site.host, site.server.side, '10.99.70.1', site.server.inner);
      await checkCarried(gw, natt === 'force-natt');
    } finally {
      await vpnc?.stop();
      await gw.stop();
    }
  });
}

test('vpnc behind a MASQUERADE router: NAT detected, IKE floats to 4500, ESP in UDP through the NAT, pings both ways', { skip: skipNat, timeout: 60_000 }, async () => {
  const topo = await NatTopology.create({ prefix: 'ikvnat' });
  const site: Site = { host: topo, server: { side: 'b', addr: topo.b.addr, inner: topo.b.inner }, client: { side: 'a', addr: topo.a.addr } };
  let gw: OurGateway | undefined;
  let vpnc: Awaited<ReturnType<typeof connectVpnc>> | undefined;
  try {
    gw = await ourServer(site);
    vpnc = await connectVpnc(site, 'nat', `--secret ${PSK} --natt-mode natt`);
    const up1 = await gw.waitFor((e) => e.event === 'phase1-up', 5000);
    assert.deepEqual([up1.natLocal, up1.natRemote], [false, true], JSON.stringify(up1));
    const up = await gw.waitFor((e) => e.event === 'child-up' || e.event === 'error', 15_000);
    assert.equal(up.event, 'child-up', JSON.stringify(gw.events));
    await pingThrough(topo, 'a', topo.b.inner, String(up.remoteTs));
    await pingThrough(topo, 'b', String(up.remoteTs), topo.b.inner);
    const sa = (await controlRequest(gw.controlPath, { cmd: 'status' })).status.sas[0]!;
    assert.equal(sa.nat.natt, true, 'IKE on the NAT-T port');
    assert.equal(sa.local.port, 4500);
    assert.match(`${sa.remote.address}:${sa.remote.port}`, new RegExp(`^${topo.publicAddr.replace(/\./g, '\\.')}:41\\d{3}$`), 'the router\'s address and a mapped port');
    await checkCarried(gw, true);
  } finally {
    await vpnc?.stop();
    await gw?.stop();
    await topo.destroy();
  }
});

// vpnc takes the last CERT payload as the server's certificate and checks it directly against its --ca-file
// (crypto-gnutls.c): a chain sent leaf first (as strongSwan expects it) fails there ("hash doesn't conform to
// PKCS#1 padding", the intermediate's key tried on our signature). So the connection sends its certificate alone
// (sendChain: false) and vpnc's CA file holds the intermediate too.
test('vpnc --auth-mode hybrid: our certificate (sendChain false) against its CA file, its XAUTH login, then pings both ways', { skip, timeout: 60_000 }, async () => {
  const pki = makePki(path.join(dir, 'pki'), 'rsa2048');
  const gwCert = pki.issue('vpn.example.com', { san: ['DNS:vpn.example.com'] });
  const site = direct();
  const gw = await ourServer(site, { cert: gwCert.chainFile, key: gwCert.keyFile, ca: [pki.rootFile], sendChain: false });
  const caFile = path.join(dir, 'vpnc-ca.pem');
  writeFileSync(caFile, readFileSync(pki.rootFile, 'utf8') + readFileSync(pki.intermediateFile, 'utf8'));
  let vpnc: Awaited<ReturnType<typeof connectVpnc>> | undefined;
  try {
    vpnc = await connectVpnc(site, 'hybrid', `--secret unused --auth-mode hybrid --ca-file ${caFile}`);
    assert.equal(gw.events.find((e) => e.event === 'phase1-up')?.mode, 'aggressive', JSON.stringify(gw.events));
    assert.deepEqual(raEvents(gw, 'xauthOk').map((e) => e.user), ['alice']);
    const up = await gw.waitFor((e) => e.event === 'child-up' || e.event === 'error', 15_000);
    assert.equal(up.event, 'child-up', JSON.stringify(gw.events));
    await pingThrough(site.host, site.client.side, site.server.inner, String(up.remoteTs));
    await pingThrough(site.host, site.server.side, String(up.remoteTs), site.server.inner);
    await checkCarried(gw, false);
  } finally {
    await vpnc?.stop();
    await gw.stop();
  }
});
