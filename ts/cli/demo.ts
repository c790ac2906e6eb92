// `ike demo`: no set-up at all. Two gateways on loopback negotiate Main Mode and Quick Mode over real
// UDP sockets while the demo narrates every datagram, then ESP traffic is pushed through the child SA and
// the rates are printed. Everything here uses the public API a user would embed.
import dgram from 'node:dgram';
import { ExchangeType, Flags, describePayloads, parseMessage } from '../isakmp/index.js';
import { layoutSealBatch } from '../esp/index.js';
import { Gateway, parseConfig, type ChildUpEvent, type GatewayConfig, type Phase1UpEvent } from '../gateway/index.js';
import { demoPki, type DemoPki } from './demo-pki.js';

const out = (s = '') => process.stdout.write(s + '\n');

async function freePort(): Promise<number> {
  // two consecutive free UDP ports (IKE and NAT-T) on 127.0.0.1
  for (;;) {
    const s = dgram.createSocket('udp4');
    const port = await new Promise<number>((r) => s.bind(0, '127.0.0.1', () => r(s.address().port)));
    s.close();
    if (port < 65535) {
      const t = dgram.createSocket('udp4');
      const ok = await new Promise<boolean>((r) => {
        t.once('error', () => r(false));
        t.bind(port + 1, '127.0.0.1', () => r(true));
      });
      t.close();
      if (ok) return port;
    }
  }
}

/** `auth` of a demo gateway: the pre-shared key, or its certificate from the demo PKI. */
function demoAuth(pki: DemoPki | null, name: string, peer: string): { auth: object; ids: object } {
  if (pki === null) return { auth: { psk: 'demo pre-shared key (use a long random one)' }, ids: {} };
  const c = pki.cert(name);
  // each expects the other's subject DN, which only a certificate from the demo CA can prove
  return { auth: { cert: c.cert, key: c.key, ca: [pki.ca] }, ids: { localId: c.subject, remoteId: `O=ike demo, CN=${peer}.demo` } };
}

function config(name: string, port: number, peerPort: number, initiate: boolean, pki: DemoPki | null): GatewayConfig {
  const { auth, ids } = demoAuth(pki, name, initiate ? 'responder' : 'initiator');
  const r = parseConfig(
    {
      listen: { address: '127.0.0.1', port, nattPort: port + 1 },
      connections: {
        demo: {
          remote: '127.0.0.1',
          remotePort: peerPort,
          remoteNattPort: peerPort + 1,
          auth,
          localId: `@${name}.demo`,
          remoteId: `@${initiate ? 'responder' : 'initiator'}.demo`,
          ...ids,
          ike: ['aes128-sha256-modp2048'],
          esp: ['aes128gcm16'],
          pfs: true,
          localTs: initiate ? '10.1.0.0/24' : '10.2.0.0/24',
          remoteTs: initiate ? '10.2.0.0/24' : '10.1.0.0/24',
          initiate,
        },
      },
    },
    { baseDir: '.', env: {} },
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

// What RFC 2409 says each message carries, by exchange and by its place in the exchange.
const MAIN_MODE = [
  'SA offer: every proposal the initiator accepts (cipher, hash, DH group, auth method, lifetime) + vendor IDs',
  'SA choice: the one proposal the responder picked + vendor IDs',
  'KE (g^xi, the initiator\'s DH public value), Ni (nonce), NAT-D hashes',
  'KE (g^xr), Nr, NAT-D: both sides now compute g^xy and SKEYID, SKEYID_d/_a/_e',
  'encrypted: IDii (who the initiator is) + HASH_I (proof it knows the pre-shared key)',
  'encrypted: IDir + HASH_R: the ISAKMP SA is established',
];
// With certificates (RFC 2409 5.1): CERTREQ names the trusted CA, CERT carries the chain, SIG signs HASH_I / HASH_R.
const MAIN_MODE_CERT = [
  ...MAIN_MODE.slice(0, 2),
  'KE (g^xi), Ni, CERTREQ (the CA the initiator trusts), NAT-D',
  'KE (g^xr), Nr, CERTREQ, NAT-D: SKEYID = prf(Ni | Nr, g^xy), no shared secret needed',
  'encrypted: IDii (its certificate\'s subject DN) + CERT + SIG (HASH_I signed with its private key)',
  'encrypted: IDir + CERT + SIG: each side checked the other\'s chain to the CA, its identity and signature',
];
const QUICK_MODE = [
  'encrypted: HASH(1), SA (ESP proposal with the initiator\'s SPI), Ni, KE (PFS), IDci/IDcr (traffic selectors)',
  'encrypted: HASH(2), SA (chosen proposal with the responder\'s SPI), Nr, KE, IDs',
  'encrypted: HASH(3): proves liveness; both sides install two unidirectional ESP SAs',
];

/** Bytes of each inner packet, in memory and over UDP. */
const PACKET_SIZE = 1400;

export async function demo(args: readonly string[] = []): Promise<number> {
  const auth = args[0] === '--auth' ? args[1] : 'psk';
  if (auth !== 'psk' && auth !== 'cert') throw new Error('usage: ike demo [--auth psk|cert]');
  const pki = auth === 'cert' ? demoPki() : null;
  try {
    return await run(pki);
  } finally {
    pki?.remove();
  }
}

async function run(pki: DemoPki | null): Promise<number> {
  const [pi, pr] = await portPairs();
  const responder = new Gateway(config('responder', pr, pi, false, pki));
  const initiator = new Gateway(config('initiator', pi, pr, true, pki));
  out('ike demo: two gateways on 127.0.0.1, Main Mode + Quick Mode over real UDP, then ESP.');
  out(`  initiator  127.0.0.1:${pi} (NAT-T ${pi + 1})    responder  127.0.0.1:${pr} (NAT-T ${pr + 1})`);
  out(`  proposals  IKE aes128-sha256-modp2048, ESP aes128gcm16 with PFS (modp2048), ${pki ? 'ECDSA P-256 certificates from a throw-away demo CA (ECDSA_256)' : 'pre-shared key'}`);
  out();
  narrate(initiator, pki ? MAIN_MODE_CERT : MAIN_MODE);
  const { p1, ci, cr, ms } = await negotiate(initiator, responder);
  out();
  describeSas(p1, ci, cr, ms);
  out();
  espInMemory(ci, cr);
  await espOverUdp(initiator, responder);
  out();
  await initiator.stop();
  await responder.stop();
  out('stopped: the initiator sent Deletes for the child SA and the ISAKMP SA, both sides closed their sockets.');
  return 0;
}

/** IKE + NAT-T port pairs for the initiator and the responder, the four ports all different. */
async function portPairs(): Promise<[number, number]> {
  const pi = await freePort();
  let pr = await freePort();
  while (pr === pi || pr === pi + 1 || pr + 1 === pi) pr = await freePort();
  return [pi, pr];
}

/** Prints each ISAKMP message the initiator sends or receives, once (not its retransmissions), with what it carries. */
function narrate(initiator: Gateway, mainMode: readonly string[]): void {
  let mm = 0;
  let qm = 0;
  const seen = new Set<string>();
  initiator.on('datagram', (d) => {
    const p = parseMessage(d.bytes);
    if (!p.ok) return;
    const h = p.value.header;
    const key = d.bytes.toString('base64');
    if (seen.has(key)) return; // a retransmission
    seen.add(key);
    const arrow = d.direction === 'out' ? 'initiator -> responder' : 'responder -> initiator';
    const enc = (h.flags & Flags.ENCRYPTION) !== 0;
    const clear = 'payloads' in p.value ? describePayloads(p.value.payloads) : '';
    let what: string;
    if (h.exchangeType === ExchangeType.IDENTITY_PROTECTION) what = `Main Mode ${mm + 1}/6  ${mainMode[mm++] ?? ''}`;
    else if (h.exchangeType === ExchangeType.QUICK_MODE) what = `Quick Mode ${qm + 1}/3 ${QUICK_MODE[qm++] ?? ''}`;
    else what = `Informational (message ID ${h.messageId.toString(16)})${enc ? ', encrypted: a Delete or a notify' : ''}`;
    out(`  ${arrow}  ${String(d.bytes.length).padStart(4)} bytes  ${what}`);
    if (clear) out(`${' '.repeat(34)}payloads on the wire: ${clear}`);
  });
}

/** Starts both gateways and waits for the ISAKMP SA and both ends of the child SA (or the first error). */
async function negotiate(initiator: Gateway, responder: Gateway): Promise<{ p1: Phase1UpEvent; ci: ChildUpEvent; cr: ChildUpEvent; ms: number }> {
  const phase1 = new Promise<Phase1UpEvent>((r) => initiator.once('phase1-up', r));
  const childI = new Promise<ChildUpEvent>((r) => initiator.once('child-up', r));
  const childR = new Promise<ChildUpEvent>((r) => responder.once('child-up', r));
  const failed = new Promise<never>((_, rej) => {
    for (const g of [initiator, responder]) g.on('error', (e) => rej(new Error(`${e.kind}: ${e.message}`)));
  });
  const t0 = performance.now();
  await responder.start();
  await initiator.start();
  const [p1, ci, cr] = await Promise.race([Promise.all([phase1, childI, childR]), failed]);
  return { p1, ci, cr, ms: performance.now() - t0 };
}

/** The keys of the ISAKMP SA (RFC 2409 5: SKEYID_d, _a, _e) and the two directions of the child SA. */
function describeSas(p1: Phase1UpEvent, ci: ChildUpEvent, cr: ChildUpEvent, ms: number): void {
  out(`ISAKMP SA established (${p1.algorithms}), cookies ${p1.cookieI} / ${p1.cookieR}, peer authenticated as ${p1.remoteId}`);
  const sa = p1.sa;
  const hex = (b: Buffer) => `${b.subarray(0, 8).toString('hex')}... (${b.length} bytes)`;
  out(`  SKEYID_d ${hex(sa.skeyidD)}  for the ESP keys (KEYMAT)`);
  out(`  SKEYID_a ${hex(sa.skeyidA)}  for the HASH payloads of phase 2`);
  out(`  SKEYID_e ${hex(sa.skeyidE)}  -> Ka ${hex(sa.encryptionKey)} encrypts IKE messages`);
  out(`Child SA ${ci.proposal} ${ci.mode} ${ci.localTs} <=> ${ci.remoteTs}`);
  out(`  initiator sends with SPI ${ci.spiOut}, the responder with SPI ${cr.spiOut}; keys derived per direction from KEYMAT`);
  out(`  9 messages, two DH exchanges (phase 1 and PFS), ${ms.toFixed(1)} ms from start to both child SAs`);
}

/** ESP: the SAs the negotiation produced, in batches, in memory (the data path's own speed), for one second. */
function espInMemory(ci: ChildUpEvent, cr: ChildUpEvent): void {
  const size = PACKET_SIZE;
  const batch = 64;
  const lengths = new Uint32Array(batch).fill(size);
  const input = Buffer.alloc(size * batch, 0x45);
  const offsets = Uint32Array.from({ length: batch }, (_, i) => i * size);
  const nextHeaders = new Uint8Array(batch).fill(4);
  const sealed = Buffer.alloc(layoutSealBatch(ci.outbound, lengths, new Uint32Array(batch), 0));
  const outOffsets = new Uint32Array(batch);
  layoutSealBatch(ci.outbound, lengths, outOffsets, 0);
  const outLengths = new Uint32Array(batch);
  const status = new Uint8Array(batch);
  const opened = Buffer.alloc(sealed.length);
  const openOffsets = Uint32Array.from(outOffsets);
  const openLengths = new Uint32Array(batch);
  const openNh = new Uint8Array(batch);
  const openStatus = new Uint8Array(batch);
  let packets = 0;
  const t1 = performance.now();
  while (performance.now() - t1 < 1000) {
    ci.outbound.sealBatch(input, offsets, lengths, nextHeaders, sealed, outOffsets, outLengths, status);
    const n = cr.inbound.openBatch(sealed, outOffsets, outLengths, opened, openOffsets, openLengths, openNh, openStatus);
    if (n !== batch) throw new Error(`ESP open failed: status ${[...openStatus].join(',')}`);
    packets += batch;
  }
  const secs = (performance.now() - t1) / 1000;
  out(`ESP in memory: ${packets} packets of ${size} bytes sealed by the initiator and opened by the responder in ${secs.toFixed(2)} s`);
  out(`  ${((packets * size * 8) / secs / 1e9).toFixed(2)} Gbit/s seal+open on one core (${(packets / secs / 1000).toFixed(0)} kpps), batches of ${batch}`);
}

/** ESP over UDP on loopback (RFC 3948), one packet per send through the JavaScript path, a window at a time. */
async function espOverUdp(initiator: Gateway, responder: Gateway): Promise<void> {
  const size = PACKET_SIZE;
  let received = 0;
  responder.on('esp-packet', () => received++);
  const udpCount = 20_000;
  const window = 128; // packets in flight: a UDP socket buffer drops a burst larger than it holds
  const payload = Buffer.alloc(size, 0x45);
  const t2 = performance.now();
  const deadline = Date.now() + 5000;
  let sent = 0;
  let lost = 0; // written off after a stall: loopback UDP drops when a socket buffer fills
  let last = { received: 0, at: Date.now() };
  while (received + lost < udpCount && Date.now() < deadline) {
    while (sent < udpCount && sent - received - lost < window) {
      initiator.sendEsp('demo', payload, 4);
      sent++;
    }
    await new Promise((r) => setImmediate(r));
    if (received !== last.received) last = { received, at: Date.now() };
    else if (Date.now() - last.at > 20) lost = sent - received;
  }
  const secs2 = (performance.now() - t2) / 1000;
  out(`ESP over UDP on loopback (RFC 3948, JavaScript path): ${received}/${udpCount} packets arrived in ${secs2.toFixed(2)} s, ${(received / secs2 / 1000).toFixed(0)} kpps`);
  out('  (the TUN data plane moves packets natively, in batches; the JavaScript path is for hosts that carry traffic themselves)');
}
