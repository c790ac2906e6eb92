// Produces test/fixtures/strongswan/*.json: real strongSwan-vs-strongSwan IKEv1 exchanges captured
// on the wire in two throw-away namespaces, with the keys strongSwan logged, and every encrypted
// message decrypted here with node:crypto (the IV chain of RFC 2409 appendix B), cross-checked
// against the IVs strongSwan logs and against tshark's own decryption.
//
//   npx tsc -p tsconfig.json && node dist/test/interop/tools/capture-strongswan-fixtures.js [--out DIR] [scenario ...]
//   (or scripts/capture-strongswan-fixtures.sh). Needs root, strongSwan and tshark.
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import os from 'node:os';
import { createDecipheriv, createHmac } from 'node:crypto';
import {
  NetnsPair, netnsAvailable, StrongSwanPeer, charonAvailable, Capture, tsharkAvailable, tsharkDecode,
  tsharkKeysFromCharon, readPcap, classifyUdp, sleep, type StrongSwanOptions, type CharonIkeKeys, type IkeSaInfo,
} from '../harness/index.js';
import {
  parseHeader, walkPayloads, IkeCbcChain, ikeCipher, ikeHash, HEADER_LEN, FLAG_ENCRYPTION, EXCHANGE_NAMES, PAYLOAD_NAMES,
  type RawPayload,
} from '../harness/ikewire.js';

interface Scenario {
  name: string;
  description: string;
  initiator: StrongSwanOptions;
  responder: StrongSwanOptions;
  /** what happens after the initial MM/AM + QM */
  ping?: boolean;
  dpd?: boolean;
  terminate?: boolean;
  /** initiate is expected to fail (kernel without ESP) */
  initiateMayFail?: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'main-mode-aes128-sha1-modp2048-pfs',
    description:
      'Main Mode (PSK, aes128-sha1-modp2048) + Quick Mode with PFS (ESP aes128-sha1-modp2048), NAT-T: kernel-libipsec makes ' +
      'strongSwan fake NAT detection, so from message 5 on IKE floats to UDP 4500 with the non-ESP marker and ESP is ' +
      'UDP-encapsulated. Then a ping through the tunnel (ESP in UDP), a DPD R-U-THERE / R-U-THERE-ACK, and the ' +
      'initiator deleting the IKE SA (Delete for the ESP SA, then for the ISAKMP SA).',
    initiator: { mode: 'main', ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1-modp2048', dpdDelay: 1 },
    responder: { mode: 'main', ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1-modp2048' },
    ping: true,
    dpd: true,
    terminate: true,
  },
  {
    name: 'aggressive-mode-aes128-sha1-modp2048',
    description:
      'Aggressive Mode (PSK, aes128-sha1-modp2048, IDs as IPv4 addresses) + Quick Mode without PFS (ESP aes128-sha1), ' +
      'NAT-T as above (kernel-libipsec), then the initiator deletes the IKE SA. strongSwan sends AM message 3 and ' +
      'Quick Mode message 1 back to back; the responder may ignore QM1 while phase 1 is incomplete, in which case the ' +
      'capture holds a retransmission of QM1 (flagged "retransmission").',
    initiator: { mode: 'aggressive', ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1' },
    responder: { mode: 'aggressive', ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1' },
    terminate: true,
  },
  {
    name: 'main-mode-three-proposals',
    description:
      'Main Mode where the initiator offers three IKE proposals (aes128-sha1-modp2048, aes256-sha256-ecp256, ' +
      '3des-md5-modp1024 — one ISAKMP proposal with three transforms) and the responder only accepts the second, so ' +
      'the exchange runs with AES-256, SHA-256 and ECP group 19. Quick Mode ESP aes256-sha256 (no PFS), NAT-T via ' +
      'kernel-libipsec, then the initiator deletes the IKE SA.',
    initiator: { mode: 'main', ike: 'aes128-sha1-modp2048,aes256-sha256-ecp256,3des-md5-modp1024', esp: 'aes256-sha256' },
    responder: { mode: 'main', ike: 'aes256-sha256-ecp256', esp: 'aes256-sha256' },
    terminate: true,
  },
  {
    name: 'main-mode-no-nat-port-500',
    description:
      'Main Mode (aes128-sha1-modp2048) + Quick Mode (ESP aes128-sha1, no PFS) with kernel-netlink only: no NAT is ' +
      'detected, so every message stays on UDP 500 without a non-ESP marker. The capturing machine\'s kernel has no ESP, ' +
      'so the initiator cannot install the CHILD_SA after Quick Mode message 2 and, instead of message 3, sends an ' +
      'Informational N(NO_PROPOSAL_CHOSEN) for the responder\'s SPI; then it deletes the IKE SA (Delete).',
    initiator: { mode: 'main', ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1', kernel: 'netlink' },
    responder: { mode: 'main', ike: 'aes128-sha1-modp2048', esp: 'aes128-sha1', kernel: 'netlink' },
    terminate: true,
    initiateMayFail: true,
  },
];

const hex = (b: Buffer | undefined) => (b ? b.toString('hex') : undefined);

interface FixtureMessage {
  index: number;
  /** frame number in the .pcapng (from 1, as Wireshark counts) */
  frame: number;
  from: 'initiator' | 'responder';
  srcPort: number;
  dstPort: number;
  nonEspMarker: boolean;
  exchangeType: number;
  exchangeTypeName: string;
  messageId: number;
  flags: number;
  encrypted: boolean;
  retransmission: boolean;
  firstPayload: number;
  firstPayloadName: string;
  /** payload types in order (of the decrypted body for encrypted messages) */
  payloads: string[];
  hex: string;
  ivHex?: string;
  decryptedBodyHex?: string;
}

function payloadSummary(first: number, data: Buffer): { list: RawPayload[] | null; names: string[] } {
  const list = walkPayloads(first, data);
  return { list, names: (list ?? []).map((p) => PAYLOAD_NAMES[p.type] ?? String(p.type)) };
}

/** SPI of the first proposal inside an IPsec DOI SA payload body. */
function saFirstSpi(saBody: Buffer): string | undefined {
  // DOI (4) | situation (4) | proposal: next(1) res(1) len(2) num(1) proto(1) spiSize(1) nTransforms(1) SPI
  if (saBody.length < 16) return undefined;
  const spiSize = saBody[14]!;
  return saBody.subarray(16, 16 + spiSize).toString('hex');
}

async function runScenario(sc: Scenario, outDir: string): Promise<{ file: string; summary: string }> {
  const pair = await NetnsPair.create({ prefix: 'ikefx' });
  try {
    const init = new StrongSwanPeer(pair, 'a', sc.initiator);
    const resp = new StrongSwanPeer(pair, 'b', sc.responder);
    const cap = await Capture.start(pair, 'a');
    await Promise.all([init.start(), resp.start()]);
    const r = await init.initiate(undefined, 15);
    if (!r.ok && !sc.initiateMayFail) throw new Error(`${sc.name}: initiate failed\n${r.output}\n${init.logTail(40)}`);
    // the responder's QM3 handling / deletes may still be in flight
    await sleep(300);
    let sas: IkeSaInfo[] = await init.listSas();
    if (sc.ping) {
      const p = await pair.ping('a', pair.b.inner, { src: pair.a.inner, count: 2 });
      if (p.code !== 0) throw new Error(`${sc.name}: ping through the tunnel failed`);
    }
    if (sc.dpd) {
      const mark = init.logMark();
      const req = await init.waitForLog(/generating INFORMATIONAL_V1 request \d+ \[ HASH N\(DPD\) \]/, 8000, mark);
      if (!req) throw new Error(`${sc.name}: no DPD request within 8 s`);
      const ack = await init.waitForLog(/parsed INFORMATIONAL_V1 request \d+ \[ HASH N\(DPD_ACK\) \]/, 5000, mark);
      if (!ack) throw new Error(`${sc.name}: no DPD ack`);
    }
    sas = sas.length ? sas : await init.listSas();
    if (sc.terminate && (await init.listSas()).length > 0) {
      const t = await init.terminateIke(10);
      if (!t.ok) throw new Error(`${sc.name}: terminate failed: ${t.output}`);
      await resp.waitForLog(/IKE_SA \S+ state change: \S+ => DESTROYING/, 3000);
    }
    const file = await cap.stop(600);
    const [keysI, keysR] = await Promise.all([init.keys(), resp.keys()]);
    const tsharkKeys = tsharkKeysFromCharon([...keysI, ...keysR]);
    const dec = await tsharkDecode(file, tsharkKeys, { verbose: true });
    // which frames tshark calls malformed (a retransmitted encrypted message is, see the README)
    const mf = await tsharkDecode(file, tsharkKeys, { filter: '_ws.malformed', extraArgs: ['-T', 'fields', '-e', 'frame.number'] });
    const malformedFrames = mf.text.split('\n').filter(Boolean).map(Number);
    await Promise.all([init.stop(3000), resp.stop(3000)]);
    return buildFixture(sc, outDir, file, keysI, keysR, sas, dec.malformed, malformedFrames, dec.text, init, resp);
  } finally {
    await pair.destroy();
  }
}

function buildFixture(
  sc: Scenario, outDir: string, pcapFile: string, keysI: CharonIkeKeys[], keysR: CharonIkeKeys[], sas: IkeSaInfo[],
  tsharkMalformed: string[], malformedFrames: number[], tsharkText: string, init: StrongSwanPeer, resp: StrongSwanPeer,
): { file: string; summary: string } {
  const ki = keysI[0];
  const kr = keysR[0];
  if (!ki || !kr || !ki.ka || !ki.cookieI) throw new Error(`${sc.name}: no phase 1 keys in the charon log`);
  for (const f of ['skeyid', 'skeyidD', 'skeyidA', 'skeyidE', 'ka', 'dhSecret', 'cookieI', 'cookieR'] as const) {
    if (ki[f] !== kr[f]) throw new Error(`${sc.name}: ${f} differs between initiator and responder`);
  }
  const ike = sas[0];
  const initiatorAddr = init.opts.local;
  const udp = readPcap(pcapFile).map(classifyUdp);
  const ikeMsgs = udp.filter((d) => d.kind === 'ike' && d.message.length >= HEADER_LEN);

  // g^xi / g^xr and the nonces come from the cleartext KE and NONCE payloads of phase 1
  let gxi: Buffer | undefined, gxr: Buffer | undefined, ni: Buffer | undefined, nr: Buffer | undefined;
  for (const d of ikeMsgs) {
    const h = parseHeader(d.message);
    if (h.flags & FLAG_ENCRYPTION || h.messageId !== 0) continue;
    const pl = walkPayloads(h.nextPayload, d.message.subarray(HEADER_LEN)) ?? [];
    const fromI = d.src === initiatorAddr;
    for (const p of pl) {
      if (p.type === 4) fromI ? (gxi ??= p.body) : (gxr ??= p.body);
      if (p.type === 10) fromI ? (ni ??= p.body) : (nr ??= p.body);
    }
  }
  if (!gxi || !gxr || !ni || !nr) throw new Error(`${sc.name}: KE/NONCE payloads of phase 1 not found in the capture`);
  const encrAlg = ike?.encrAlg ?? 'AES_CBC';
  const keyBits = ike?.encrKeysize ?? (encrAlg === '3DES_CBC' ? 192 : 128);
  const prfAlg = ike?.prfAlg ?? 'PRF_HMAC_SHA1';
  const cipher = ikeCipher(encrAlg, keyBits);
  const hash = ikeHash(prfAlg);
  const chain = new IkeCbcChain(cipher, Buffer.from(ki.ka, 'hex'), hash, gxi, gxr);
  const initialIv = chain.phase1Iv.toString('hex');
  if (ki.initialIv && ki.initialIv !== initialIv) throw new Error(`${sc.name}: hash(g^xi|g^xr) != strongSwan's initial IV`);

  const messages: FixtureMessage[] = [];
  const usedIvs = new Set<string>();
  const qm = new Map<number, { ni?: Buffer; nr?: Buffer; gxi?: Buffer; gxr?: Buffer; spiFromInitiator?: string; spiFromResponder?: string }>();
  const problems: string[] = [];
  for (const d of ikeMsgs) {
    const h = parseHeader(d.message);
    const from = d.src === initiatorAddr ? 'initiator' : 'responder';
    const encrypted = (h.flags & FLAG_ENCRYPTION) !== 0;
    let decrypted: ReturnType<IkeCbcChain['decrypt']> | undefined;
    let names: string[];
    if (encrypted) {
      decrypted = chain.decrypt(d.message);
      usedIvs.add(decrypted.iv.toString('hex'));
      const s = payloadSummary(h.nextPayload, decrypted.plain);
      if (!s.list) problems.push(`message ${messages.length}: decrypted body is not a payload chain`);
      names = s.names;
      if (h.exchangeType === 32 && s.list && !decrypted.retransmission) {
        const q = qm.get(h.messageId) ?? {};
        for (const p of s.list) {
          if (p.type === 10) from === 'initiator' ? (q.ni ??= p.body) : (q.nr ??= p.body);
          if (p.type === 4) from === 'initiator' ? (q.gxi ??= p.body) : (q.gxr ??= p.body);
          if (p.type === 1) from === 'initiator' ? (q.spiFromInitiator ??= saFirstSpi(p.body)) : (q.spiFromResponder ??= saFirstSpi(p.body));
        }
        qm.set(h.messageId, q);
      }
    } else {
      names = payloadSummary(h.nextPayload, d.message.subarray(HEADER_LEN)).names;
    }
    messages.push({
      index: messages.length,
      frame: d.index + 1,
      from,
      srcPort: d.srcPort,
      dstPort: d.dstPort,
      nonEspMarker: d.nonEspMarker,
      exchangeType: h.exchangeType,
      exchangeTypeName: EXCHANGE_NAMES[h.exchangeType] ?? String(h.exchangeType),
      messageId: h.messageId,
      flags: h.flags,
      encrypted,
      retransmission: decrypted?.retransmission ?? false,
      firstPayload: h.nextPayload,
      firstPayloadName: PAYLOAD_NAMES[h.nextPayload] ?? String(h.nextPayload),
      payloads: names,
      hex: d.message.toString('hex'),
      ivHex: hex(decrypted?.iv),
      decryptedBodyHex: hex(decrypted?.plain),
    });
  }
  // every IV strongSwan used to encrypt or decrypt must be one we used (or the state after the last message)
  const loggedIvs = [...ki.ivs, ...kr.ivs].map((v) => v.iv);
  const unmatched = loggedIvs.filter((iv) => !usedIvs.has(iv));
  // the IV after the very last message of an exchange is logged but never used: allow those
  const allowedTail = new Set(messages.filter((m) => m.encrypted).map((m) => m.hex.slice(-cipher.block * 2)));
  const reallyUnmatched = unmatched.filter((iv) => !allowedTail.has(iv));
  if (reallyUnmatched.length) problems.push(`IVs logged by strongSwan not reproduced: ${reallyUnmatched.join(' ')}`);

  // ESP in UDP (RFC 3948): decrypt and authenticate with the CHILD_SA keys strongSwan logged
  const espPackets = udp
    .filter((d) => d.kind === 'esp')
    .map((d, i) => {
      const spi = d.message.subarray(0, 4).toString('hex');
      const c = ki.children.find((x) => x.spiI === spi || x.spiR === spi);
      const mine = c?.spiI === spi ? 'I' : 'R';
      const opened = c ? openEsp(d.message, c.proposal ?? '', mine === 'I' ? c.encI : c.encR, mine === 'I' ? c.integI : c.integR) : undefined;
      if (!opened?.icvOk) problems.push(`ESP packet ${i} (SPI ${spi}) did not authenticate with the logged keys`);
      return {
        index: i,
        frame: d.index + 1,
        from: d.src === initiatorAddr ? 'initiator' : 'responder',
        srcPort: d.srcPort,
        dstPort: d.dstPort,
        spi,
        seq: d.message.readUInt32BE(4),
        hex: d.message.toString('hex'),
        ...opened,
      };
    });

  const children = ki.children.map((c) => {
    const spiI = c.spiI!;
    const q = [...qm.values()].find((v) => v.spiFromResponder === spiI || v.spiFromInitiator === c.spiR) ?? {};
    const mid = [...qm.entries()].find(([, v]) => v === q)?.[0];
    return {
      messageId: mid,
      proposal: c.proposal,
      spiI, spiR: c.spiR,
      ni: hex(q.ni), nr: hex(q.nr), gxi: hex(q.gxi), gxr: hex(q.gxr),
      dhSecret: c.dhSecret,
      encI: c.encI, encR: c.encR, integI: c.integI, integR: c.integR,
      sas: c.sas.map((s) => ({ direction: s.direction, spi: s.spi, src: s.src, dst: s.dst })),
    };
  });

  const debVersions = (spawnSync('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', 'strongswan-charon', 'libstrongswan', 'tshark'], { encoding: 'utf8' }).stdout || '')
    .trim().split('\n').filter(Boolean);
  const charonVersion = spawnSync('/usr/lib/ipsec/charon', ['--version'], { encoding: 'utf8' }).stdout.trim();
  const tsharkVersion = (spawnSync('tshark', ['--version'], { encoding: 'utf8' }).stdout || '').split('\n')[0];
  const decryptedByTshark = (tsharkText.match(/Decrypted Data|Payload: Hash \(8\)/g) ?? []).length;
  const fixture = {
    description: sc.description,
    produced: {
      date: new Date().toISOString(),
      strongSwan: charonVersion,
      debianPackages: debVersions,
      tshark: tsharkVersion,
      kernel: os.release(),
      command: `scripts/capture-strongswan-fixtures.sh ${sc.name}  (= npx tsc -p tsconfig.json && node dist/test/interop/tools/capture-strongswan-fixtures.js ${sc.name})`,
      capture: `${sc.name}.pcapng (dumpcap on the initiator's veth)`,
      initiator: { address: init.opts.local, config: init.swanctlConf().replace(/secret = 0x[0-9a-f]+/, 'secret = <psk>') },
      responder: { address: resp.opts.local, config: resp.swanctlConf().replace(/secret = 0x[0-9a-f]+/, 'secret = <psk>') },
    },
    ikeProposal: sc.initiator.ike,
    ikeProposalResponder: sc.responder.ike,
    espProposal: sc.initiator.esp,
    mode: sc.initiator.mode,
    negotiated: ike
      ? { encrAlg: ike.encrAlg, encrKeysize: ike.encrKeysize, integAlg: ike.integAlg, prfAlg: ike.prfAlg, dhGroup: ike.dhGroup, ikeProposal: ki.proposal }
      : { ikeProposal: ki.proposal },
    psk: init.opts.psk,
    ids: { initiator: init.opts.localId ?? init.opts.local, responder: resp.opts.localId ?? resp.opts.local },
    keys: {
      cookieI: ki.cookieI, cookieR: ki.cookieR,
      gxi: hex(gxi), gxr: hex(gxr), ni: hex(ni), nr: hex(nr),
      gxy: ki.dhSecret,
      skeyid: ki.skeyid, skeyidD: ki.skeyidD, skeyidA: ki.skeyidA, skeyidE: ki.skeyidE,
      ka: ki.ka,
      initialIv,
      children,
    },
    messages,
    espPackets,
    checks: {
      keysEqualOnBothSides: true,
      initialIvMatchesStrongSwan: ki.initialIv === initialIv,
      strongSwanIvsReproduced: reallyUnmatched.length === 0,
      decryptionProblems: problems,
      tsharkMalformed,
      tsharkMalformedFrames: malformedFrames,
      tsharkDecryptedMarkers: decryptedByTshark,
    },
  };
  mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `${sc.name}.json`);
  // the capture itself, for tshark / Wireshark (decrypt with the keys above)
  copyFileSync(pcapFile, path.join(outDir, `${sc.name}.pcapng`));
  chmodSync(path.join(outDir, `${sc.name}.pcapng`), 0o644);
  writeFileSync(out, JSON.stringify(fixture, null, 2) + '\n');
  const summary =
    `${sc.name}: ${messages.length} IKE messages (${messages.filter((m) => m.encrypted).length} encrypted, ` +
    `${messages.filter((m) => m.retransmission).length} retransmitted), ${espPackets.length} ESP, ` +
    `problems ${problems.length}, tshark malformed ${tsharkMalformed.length}`;
  for (const f of malformedFrames) {
    if (!messages.some((m) => m.frame === f && m.retransmission)) problems.push(`tshark: frame ${f} malformed and not a retransmission`);
  }
  if (problems.length) throw new Error(`${summary}\n${problems.join('\n')}`);
  return { file: out, summary };
}

/** ESP (RFC 4303) with AES-CBC and an HMAC ICV: SPI | seq | IV | ciphertext | ICV. */
function openEsp(pkt: Buffer, proposal: string, encKey: string | undefined, integKey: string | undefined) {
  const [enc, integ] = proposal.split('/');
  if (!enc?.startsWith('AES_CBC') || !encKey || !integKey || !integ) return undefined;
  const icvLen = integ === 'HMAC_SHA1_96' ? 12 : integ === 'HMAC_SHA2_256_128' ? 16 : 0;
  const mac = integ === 'HMAC_SHA1_96' ? 'sha1' : 'sha256';
  if (!icvLen || pkt.length < 8 + 16 + 16 + icvLen) return undefined;
  const authed = pkt.subarray(0, pkt.length - icvLen);
  const icv = pkt.subarray(pkt.length - icvLen);
  const icvOk = createHmac(mac, Buffer.from(integKey, 'hex')).update(authed).digest().subarray(0, icvLen).equals(icv);
  const iv = pkt.subarray(8, 24);
  const d = createDecipheriv(`aes-${encKey.length * 4}-cbc`, Buffer.from(encKey, 'hex'), iv).setAutoPadding(false);
  const plain = Buffer.concat([d.update(pkt.subarray(24, pkt.length - icvLen)), d.final()]);
  const nextHeader = plain[plain.length - 1]!;
  const padLength = plain[plain.length - 2]!;
  return { icvOk, ivHex: iv.toString('hex'), decryptedHex: plain.toString('hex'), padLength, nextHeader };
}

async function main(argv: string[]): Promise<number> {
  let outDir = path.resolve('test/fixtures/strongswan');
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') outDir = path.resolve(argv[++i]!);
    else names.push(argv[i]!);
  }
  for (const a of [netnsAvailable(), charonAvailable(), tsharkAvailable()]) {
    if (!a.ok) {
      console.error(`cannot capture fixtures: ${a.why}`);
      return 2;
    }
  }
  const chosen = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;
  if (chosen.length === 0) {
    console.error(`unknown scenario; known: ${SCENARIOS.map((s) => s.name).join(' ')}`);
    return 2;
  }
  // one pair of namespaces per scenario, all at once: they cannot see each other
  const results = await Promise.allSettled(chosen.map((s) => runScenario(s, outDir)));
  let rc = 0;
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') console.log(`${r.value.summary}\n  -> ${r.value.file}`);
    else {
      rc = 1;
      console.error(`${chosen[i]!.name}: FAILED: ${(r.reason as Error).stack ?? r.reason}`);
    }
  });
  return rc;
}

main(process.argv.slice(2)).then((rc) => process.exit(rc));
