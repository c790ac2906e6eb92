// The real vpnc 0.5.3 (Debian's package; the Cisco VPN client replacement of shared/CLIENTS.md) against our
// remote-access server with the TUN data plane, in network namespaces: Aggressive Mode with a group key (ID_KEY_ID),
// XAUTH, Mode-Config, Quick Mode, then ESP both ways between vpnc's own user-space ESP and our data plane.
// vpnc configures its TUN device through a script; ours (written here) only sets the address and the route
// to our side and records what vpnc handed it, so nothing outside the namespace (resolv.conf) is touched.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NetnsPair, interopSkipReason, netnsAvailable, sleep, stopChild, type Availability } from './harness/index.js';
import { controlRequest } from '../../ts/gateway/index.js';
import { userFileLine } from '../../ts/ike/index.js';
import { OurGateway, pingThrough, type OurEvent } from './ours.js';
import { makePki } from '../ike/pki.js';

function vpncAvailable(): Availability {
  const r = spawnSync('vpnc', ['--version'], { encoding: 'utf8', timeout: 5000 });
  const v = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0] ?? '';
  return r.error || !v.startsWith('vpnc version') ? { ok: false, why: 'vpnc missing (package vpnc; scripts/install-interop-deps.sh)' } : { ok: true, why: v };
}

const netns = netnsAvailable();
const skip = interopSkipReason(netns, netns.ok ? vpncAvailable() : netns);
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

const raEvents = (gw: OurGateway, type: string): OurEvent[] => gw.events.filter((e) => e.event === 'remote-access' && e.type === type);

/** vpnc's configuration script: the TUN device up with the address it got, a route to our side, its environment kept. */
function vpncScript(env: string, route: string): string {
  const file = path.join(dir, 'vpnc-script');
  writeFileSync(
    file,
    [
      '#!/bin/sh',
      `env | grep -E '^(reason|TUNDEV|INTERNAL_IP4_|CISCO_|VPNGATEWAY)' | sort > ${env}.$reason`,
      'case "$reason" in',
      '  connect)',
      '    ip link set dev "$TUNDEV" up mtu 1400',
      '    ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"',
      `    ip route replace ${route} dev "$TUNDEV" src "$INTERNAL_IP4_ADDRESS"`,
      '    ;;',
      'esac',
      'exit 0',
      '',
    ].join('\n'),
  );
  chmodSync(file, 0o755);
  return file;
}

/** Our remote-access server; `cert`: hybrid authentication (HybridInitRSA: our certificate, the client's XAUTH). */
async function ourServer(dhGroup: string, cert?: { cert: string; key: string; ca: string[]; sendChain?: boolean }): Promise<OurGateway> {
  const gw = new OurGateway(pair, 'a', {
    listen: { address: pair.a.addr, port: 500, nattPort: 4500 },
    dataplane: { tun: 'ike0' },
    connections: {
      vpnc: {
        remote: '%any',
        mode: 'aggressive',
        ...(cert ? { auth: cert, remoteAuth: 'xauth' } : { auth: { psk: PSK, allowAggressivePsk: true }, localId: '@vpn.example.com' }),
        // vpnc sends the group name as ID_KEY_ID: '@#' + its bytes in hex
        remoteId: '@#' + Buffer.from(GROUP).toString('hex'),
        ike: [`aes256-sha1-${dhGroup}`, `aes128-sha1-${dhGroup}`],
        esp: ['aes256-sha1', 'aes128-sha1'],
        localTs: `${pair.a.inner}/32`,
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

// natt: no NAT here, so plain ESP (vpnc's raw socket, our data plane's); force-natt: ESP in UDP 4500 all the same
for (const natt of ['natt', 'force-natt'] as const) {
  test(`vpnc (the real client), --natt-mode ${natt}: Aggressive Mode with a group key, XAUTH, Mode-Config, then pings both ways through its ESP and our data plane`, { skip, timeout: 60_000 }, async () => {
    const gw = await ourServer('modp2048');
    const env = path.join(dir, `env-${natt}`);
    const script = vpncScript(env, `${pair.a.inner}/32`);
    const log = path.join(dir, 'vpnc.log');
    const vpnc = pair.spawn('b', 'sh', ['-c', `exec vpnc --no-detach --non-inter --gateway ${pair.a.addr} --id ${GROUP} --secret ${PSK} --username alice --password 'alice pw' --dh dh14 --pfs server --natt-mode ${natt} --script ${script} --ifname vpnc0 --local-addr ${pair.b.addr} --debug 1 > ${log} 2>&1`]);
    try {
      for (let i = 0; i < 100 && !existsSync(`${env}.connect`); i++) await sleep(100);
      const vpncLog = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
      assert.ok(existsSync(`${env}.connect`), `vpnc did not connect:\n${vpncLog()}\nours: ${JSON.stringify(gw.events)}`);
      const handed = Object.fromEntries(readFileSync(`${env}.connect`, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      assert.equal(handed.INTERNAL_IP4_ADDRESS, '10.99.70.1', JSON.stringify(handed));
      assert.equal(handed.INTERNAL_IP4_DNS, DNS);
      assert.equal(handed.CISCO_BANNER, 'authorised users only');
      assert.deepEqual(raEvents(gw, 'xauthOk').map((e) => e.user), ['alice']);
      const up = await gw.waitFor((e) => e.event === 'child-up' || e.event === 'error', 15_000);
      assert.equal(up.event, 'child-up', JSON.stringify(gw.events));
      assert.equal(up.remoteTs, '10.99.70.1');
      // vpnc's own ESP (no NAT here: plain ESP on a raw socket) and our data plane, both directions
      await pingThrough(pair, 'b', pair.a.inner, '10.99.70.1');
      await pingThrough(pair, 'a', '10.99.70.1', pair.a.inner);
      const status = (await controlRequest(gw.controlPath, { cmd: 'status' })).status;
      const child = status.sas[0]!.children[0]!;
      assert.ok(child.in.packets >= 6 && child.out.packets >= 6, `our counters ${JSON.stringify(child)}`);
      assert.equal(child.encapsulation, natt === 'force-natt', JSON.stringify(child));
      assert.equal(gw.events.filter((e) => e.event === 'error').length, 0, JSON.stringify(gw.events));
    } finally {
      await stopChild(vpnc, 'SIGTERM', 3000);
      await gw.stop();
    }
  });
}

// vpnc takes the last CERT payload as the server's certificate and checks it directly against its --ca-file
// (crypto-gnutls.c): a chain sent leaf first (as strongSwan expects it) fails there ("hash doesn't conform to
// PKCS#1 padding", the intermediate's key tried on our signature). So the connection sends its certificate alone
// (sendChain: false) and vpnc's CA file holds the intermediate too.
test('vpnc --auth-mode hybrid: our certificate (sendChain false) against its CA file, its XAUTH login, then pings both ways', { skip, timeout: 60_000 }, async () => {
  const pki = makePki(path.join(dir, 'pki'), 'rsa2048');
  const gwCert = pki.issue('vpn.example.com', { san: ['DNS:vpn.example.com'] });
  const gw = await ourServer('modp2048', { cert: gwCert.chainFile, key: gwCert.keyFile, ca: [pki.rootFile], sendChain: false });
  const caFile = path.join(dir, 'vpnc-ca.pem');
  writeFileSync(caFile, readFileSync(pki.rootFile, 'utf8') + readFileSync(pki.intermediateFile, 'utf8'));
  const env = path.join(dir, 'env-hybrid');
  const script = vpncScript(env, `${pair.a.inner}/32`);
  const log = path.join(dir, 'vpnc-hybrid.log');
  const vpnc = pair.spawn('b', 'sh', ['-c', `exec vpnc --no-detach --non-inter --gateway ${pair.a.addr} --id ${GROUP} --secret unused --auth-mode hybrid --ca-file ${caFile} --username alice --password 'alice pw' --dh dh14 --pfs server --script ${script} --ifname vpnc1 --local-addr ${pair.b.addr} --debug 1 > ${log} 2>&1`]);
  try {
    for (let i = 0; i < 100 && !existsSync(`${env}.connect`); i++) await sleep(100);
    const vpncLog = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
    assert.ok(existsSync(`${env}.connect`), `vpnc did not connect:\n${vpncLog()}\nours: ${JSON.stringify(gw.events)}`);
    const up1 = gw.events.find((e) => e.event === 'phase1-up');
    assert.equal(up1?.mode, 'aggressive', JSON.stringify(gw.events));
    assert.deepEqual(raEvents(gw, 'xauthOk').map((e) => e.user), ['alice']);
    const up = await gw.waitFor((e) => e.event === 'child-up' || e.event === 'error', 15_000);
    assert.equal(up.event, 'child-up', JSON.stringify(gw.events));
    await pingThrough(pair, 'b', pair.a.inner, String(up.remoteTs));
    await pingThrough(pair, 'a', String(up.remoteTs), pair.a.inner);
  } finally {
    await stopChild(vpnc, 'SIGTERM', 3000);
    await gw.stop();
  }
});
