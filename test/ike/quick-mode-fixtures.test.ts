// Known answers from real strongSwan 5.9.8 exchanges (test/fixtures/strongswan/*.json): with strongSwan's
// keys, message ID, SPIs and nonces fed in through a scripted random source, our Quick Mode must write
// strongSwan's messages byte for byte (so HASH(1)/(2)/(3), the IV chain, attribute order and padding agree),
// accept strongSwan's messages, and derive the ESP keys strongSwan logged. Informational messages (DPD,
// Delete) likewise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { nativeCrypto, nodeCrypto, type CryptoProvider } from '../../ts/crypto/index.js';
import {
  deleteEspPayload,
  deleteIsakmpPayload,
  deriveChildKeys,
  dpdPayload,
  informationalMessage,
  IsakmpSaContext,
  phase2Iv,
  readInformational,
  trafficSelector,
  type ChildSa,
  type IsakmpSa,
  type Phase2Output,
  type Phase2Policy,
} from '../../ts/ike/index.js';
import { parseMessage } from '../../ts/isakmp/index.js';
import { esp } from './quick-mode-pair.js';

const dir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../test/fixtures/strongswan');
const load = (name: string) => JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8'));
const H = (s: string) => Buffer.from(s, 'hex');
const providers: CryptoProvider[] = [nativeCrypto, nodeCrypto].filter((p): p is CryptoProvider => p !== null);

interface Msg {
  index: number;
  from: 'initiator' | 'responder';
  exchangeType: number;
  messageId: number;
  encrypted: boolean;
  retransmission: boolean;
  hex: string;
  ivHex?: string;
}

/** The ISAKMP SA as each side of the fixture had it after phase 1. */
function fixtureSa(fx: any, initiator: boolean): IsakmpSa {
  const k = fx.keys;
  const msgs: Msg[] = fx.messages;
  const lastP1 = msgs.filter((m) => m.messageId === 0 && m.encrypted && !m.retransmission).at(-1)!;
  const body = H(lastP1.hex).subarray(28);
  const hash = /SHA2_256/.test(fx.negotiated.prfAlg) ? 'sha256' : 'sha1';
  const encapUdp = msgs.some((m) => m.hex && (m as any).nonEspMarker);
  const a = { address: '10.99.0.1', port: 500 };
  const b = { address: '10.99.0.2', port: 500 };
  return {
    name: 'fixture',
    initiator,
    mode: fx.mode,
    cookieI: H(k.cookieI),
    cookieR: H(k.cookieR),
    local: initiator ? a : b,
    remote: initiator ? b : a,
    localId: { kind: 'ipv4', address: initiator ? a.address : b.address },
    remoteId: { kind: 'ipv4', address: initiator ? b.address : a.address },
    proposal: { encryption: `aes-${fx.negotiated.encrKeysize}-cbc` as 'aes-128-cbc', hash, group: 14, authMethod: 1, lifetimeSeconds: 10800 },
    algorithms: fx.ikeProposal,
    skeyidD: H(k.skeyidD),
    skeyidA: H(k.skeyidA),
    skeyidE: H(k.skeyidE),
    encryptionKey: H(k.ka),
    lastIv: Buffer.from(body.subarray(body.length - 16)),
    // kernel-libipsec fakes a NAT (see the fixture README): both sides use UDP encapsulation.
    nat: encapUdp ? { version: 'rfc3947', localBehindNat: true, remoteBehindNat: true } : { version: null, localBehindNat: false, remoteBehindNat: false },
    peerVendorIds: { natt: encapUdp ? 'rfc3947' : null, dpd: true, xauth: false, unity: false, fragmentation: false },
    establishedAt: 0,
    expiresAt: 10_800_000,
  };
}

/** A provider whose randomBytes replays `script` (asserting the lengths asked for) and then fails. */
function scripted(base: CryptoProvider, script: Buffer[]): CryptoProvider {
  const queue = [...script];
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'randomBytes') {
        return (n: number) => {
          const next = queue.shift();
          assert.ok(next, `unexpected randomBytes(${n})`);
          assert.equal(next.length, n, 'random draw of the expected size');
          return Buffer.from(next);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

function policyOf(fx: any, initiator: boolean): Phase2Policy {
  const local = trafficSelector(initiator ? '10.99.1.1' : '10.99.2.1')!;
  const remote = trafficSelector(initiator ? '10.99.2.1' : '10.99.1.1')!;
  return { name: 't', proposals: esp(fx.espProposal), localTs: local, remoteTs: remote, lifetimeSeconds: 3960 };
}

function childOf(out: Phase2Output): ChildSa {
  const e = out.events.find((x) => x.type === 'childSa');
  assert.ok(e && e.type === 'childSa', `no child: ${JSON.stringify(out.events.map((x) => (x.type === 'childFailed' ? x.error.message : x.type)))} ${out.dropped.join('; ')}`);
  return e.child;
}

for (const c of providers) {
  for (const name of ['main-mode-three-proposals', 'aggressive-mode-aes128-sha1-modp2048', 'main-mode-no-nat-port-500']) {
    const fx = load(name);
    const kid = fx.keys.children[0];
    const msgs: Msg[] = fx.messages.filter((m: Msg) => m.exchangeType === 32 && !m.retransmission);
    const [qm1, qm2, qm3] = msgs;

    test(`${c.name}: ${name}: our initiator writes strongSwan's QM1 and QM3 byte for byte and derives its ESP keys`, async () => {
      const sa = fixtureSa(fx, true);
      // IV of QM1 = hash(last phase-1 block | M-ID), as strongSwan used.
      assert.equal(phase2Iv(c, sa, qm1!.messageId).toString('hex'), qm1!.ivHex);
      // Draws: message ID, our SPI (the responder -> initiator SA), Ni.
      const ctx = new IsakmpSaContext(scripted(c, [u32(qm1!.messageId), H(kid.spiR), H(kid.ni)]), sa, { children: [] });
      const { out } = await ctx.initiate(policyOf(fx, true), 0);
      assert.equal(out.send[0]!.toString('hex'), qm1!.hex, 'QM1');
      const r = await ctx.handle(H(qm2.hex), 1);
      // In the no-NAT capture strongSwan could not install the SA and sent a notify instead of QM3.
      if (qm3) assert.equal(r.send[0]!.toString('hex'), qm3.hex, 'QM3');
      const child = childOf(r);
      assert.equal(child.spiIn.toString('hex'), kid.spiR);
      assert.equal(child.spiOut.toString('hex'), kid.spiI);
      // encI/integI protect initiator -> responder traffic: our outbound; encR/integR our inbound.
      assert.equal(child.outbound.encryptionKey.toString('hex'), kid.encI);
      assert.equal(child.outbound.integrityKey.toString('hex'), kid.integI);
      assert.equal(child.inbound.encryptionKey.toString('hex'), kid.encR);
      assert.equal(child.inbound.integrityKey.toString('hex'), kid.integR);
      assert.equal(child.lifetimeSeconds, 3960);
      assert.equal(child.encapsulation, sa.nat.version !== null);
    });

    if (qm2 && qm3) {
      test(`${c.name}: ${name}: our responder writes strongSwan's QM2 byte for byte, accepts its QM3, same ESP keys`, async () => {
        const sa = fixtureSa(fx, false);
        // Draws: our SPI (initiator -> responder SA), Nr.
        const ctx = new IsakmpSaContext(scripted(c, [H(kid.spiI), H(kid.nr)]), sa, { children: [policyOf(fx, false)] });
        const r2 = await ctx.handle(H(qm1!.hex), 0);
        assert.deepEqual(r2.dropped, []);
        assert.equal(r2.send[0]!.toString('hex'), qm2.hex, 'QM2');
        const child = childOf(await ctx.handle(H(qm3.hex), 1));
        assert.equal(child.spiIn.toString('hex'), kid.spiI);
        assert.equal(child.inbound.encryptionKey.toString('hex'), kid.encI);
        assert.equal(child.inbound.integrityKey.toString('hex'), kid.integI);
        assert.equal(child.outbound.encryptionKey.toString('hex'), kid.encR);
        assert.equal(child.outbound.integrityKey.toString('hex'), kid.integR);
        assert.deepEqual(child.remoteTs, trafficSelector('10.99.1.1'));
      });
    }
  }
}

test("aggressive-mode fixture: strongSwan's retransmitted QM1 (the AM3/QM1 race) gets the cached QM2", async () => {
  const fx = load('aggressive-mode-aes128-sha1-modp2048');
  const kid = fx.keys.children[0];
  const all: Msg[] = fx.messages.filter((m: Msg) => m.exchangeType === 32);
  assert.ok(all.some((m) => m.retransmission), 'the capture holds the retransmission');
  const ctx = new IsakmpSaContext(scripted(providers[0]!, [H(kid.spiI), H(kid.nr)]), null, { children: [policyOf(fx, false)] });
  // The first QM1 arrives before AM3 has been processed: queued.
  const early = await ctx.handle(H(all[0]!.hex), 0);
  assert.deepEqual(early.send, []);
  const done = await ctx.establish(fixtureSa(fx, false), 1);
  const qm2 = all.find((m) => m.from === 'responder')!;
  assert.equal(done.send[0]!.toString('hex'), qm2.hex);
  // strongSwan's retransmission of QM1: the same QM2 again, no new draw from the random source.
  const again = await ctx.handle(H(all[1]!.hex), 2);
  assert.equal(again.send[0]!.toString('hex'), qm2.hex);
});

test('PFS fixture: our responder authenticates strongSwan\'s QM1 with KE; KEYMAT with g(qm)^xy gives strongSwan\'s keys', async () => {
  const fx = load('main-mode-aes128-sha1-modp2048-pfs');
  const kid = fx.keys.children[0];
  const c = providers[0]!;
  const sa = fixtureSa(fx, false);
  const qm1 = fx.messages.find((m: Msg) => m.exchangeType === 32 && m.from === 'initiator');
  const ctx = new IsakmpSaContext(c, sa, { children: [policyOf(fx, false)] });
  const r = await ctx.handle(H(qm1.hex), 0);
  assert.deepEqual(r.dropped, []);
  assert.equal(r.send.length, 1);
  const reply = parseMessage(r.send[0]!);
  assert.ok(reply.ok && reply.value.header.exchangeType === 32 && reply.value.header.messageId === qm1.messageId);
  // The key schedule with the PFS secret, responder's view: inbound = the SPI it chose (spiI).
  for (const prov of providers) {
    const keys = deriveChildKeys(prov, sa, 'aes128-sha1', { spiIn: H(kid.spiI), spiOut: H(kid.spiR), nonceI: H(kid.ni), nonceR: H(kid.nr), gxy: H(kid.dhSecret) });
    assert.equal(keys.inbound.encryptionKey.toString('hex'), kid.encI);
    assert.equal(keys.inbound.integrityKey.toString('hex'), kid.integI);
    assert.equal(keys.outbound.encryptionKey.toString('hex'), kid.encR);
    assert.equal(keys.outbound.integrityKey.toString('hex'), kid.integR);
  }
});

test("Informational known answers: strongSwan's R-U-THERE, R-U-THERE-ACK, Delete ESP and Delete ISAKMP, rebuilt and read", () => {
  const fx = load('main-mode-aes128-sha1-modp2048-pfs');
  const infos: Msg[] = fx.messages.filter((m: Msg) => m.exchangeType === 5);
  assert.equal(infos.length, 4);
  const sa = fixtureSa(fx, true);
  const seq = 0x7ef1b18e;
  const kid = fx.keys.children[0];
  const expected = [
    { payload: dpdPayload(sa, false, seq), event: { type: 'dpdRequest', sequence: seq } },
    { payload: dpdPayload(sa, true, seq), event: { type: 'dpdAck', sequence: seq } },
    { payload: deleteEspPayload([H(kid.spiR)]), event: { type: 'delete', protocol: 3, spis: [H(kid.spiR)] } },
    { payload: deleteIsakmpPayload(sa), event: { type: 'delete', protocol: 1, spis: [Buffer.concat([sa.cookieI, sa.cookieR])] } },
  ];
  for (const c of providers) {
    infos.forEach((m, k) => {
      assert.equal(informationalMessage(c, sa, m.messageId, [expected[k]!.payload]).toString('hex'), m.hex, `message ${m.index}`);
      const p = parseMessage(H(m.hex));
      assert.ok(p.ok && 'encrypted' in p.value);
      const r = readInformational(c, sa, p.value.header, p.value.encrypted);
      assert.ok(r.ok, !r.ok ? r.reason : '');
      assert.deepEqual(r.events, [expected[k]!.event]);
    });
  }
});

test('no-NAT fixture: the NO_PROPOSAL_CHOSEN notify strongSwan sent reads as an error notify for our SPI', () => {
  const fx = load('main-mode-no-nat-port-500');
  const m = fx.messages.find((x: Msg) => x.exchangeType === 5 && x.index === 8);
  const sa = fixtureSa(fx, false);
  const p = parseMessage(H(m.hex));
  assert.ok(p.ok && 'encrypted' in p.value);
  const r = readInformational(providers[0]!, sa, p.value.header, p.value.encrypted);
  assert.ok(r.ok);
  assert.equal(r.events[0]!.type, 'notify');
  const e = r.events[0] as Extract<(typeof r.events)[number], { type: 'notify' }>;
  assert.equal(e.name, 'NO_PROPOSAL_CHOSEN');
  assert.equal(e.error, true);
  assert.equal(e.spi.toString('hex'), fx.keys.children[0].spiR);
});
