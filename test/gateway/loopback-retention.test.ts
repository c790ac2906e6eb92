// The responder Gateway keeps the phase 1 machine after Main Mode completes only for the grace period in
// which the initiator may repeat message 5 (it did not get message 6): a repeat is answered with the same
// message 6 until then, and ignored after, without an error and without touching the SA. Past phase 1, one
// heap of deadlines (one Node timer for all SAs) drives everything that falls due; DPD shows it working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { defaultCrypto } from '../../ts/crypto/index.js';
import { Gateway, type GatewayErrorEvent, type Phase1DownEvent } from '../../ts/gateway/index.js';
import { CookieGenerator, parseIkeProposal, Phase1 } from '../../ts/ike/index.js';
import { peerConfig, until } from './peers.js';

const base = 26000 + (process.pid % 2000) * 4;

/** A raw UDP socket on base + 2 with an in-memory Main Mode initiator: runs MM1..MM6 against the gateway. */
async function rawInitiator() {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((res) => sock.bind(base + 2, '127.0.0.1', res));
  const inbox: Buffer[] = [];
  let wake: (() => void) | null = null;
  sock.on('message', (m) => {
    inbox.push(m);
    wake?.();
  });
  const send = (m: Buffer) => sock.send(m, base, '127.0.0.1');
  const next = async (ms: number): Promise<Buffer | null> => {
    if (inbox.length === 0) await new Promise<void>((res) => ((wake = res), setTimeout(res, ms)));
    wake = null;
    return inbox.shift() ?? null;
  };
  const crypto = defaultCrypto();
  const proposals = parseIkeProposal('aes128-sha256-ecp256');
  assert.ok(proposals.ok);
  const env = { crypto, cookies: new CookieGenerator(crypto), local: { address: '127.0.0.1', port: base + 2 }, remote: { address: '127.0.0.1', port: base } };
  const policy = { name: 't', mode: 'main' as const, proposals: proposals.value, psk: Buffer.from('loopback secret'), localId: { kind: 'fqdn' as const, value: `gw${base + 2}` }, natt: false };
  const { phase1, out } = await Phase1.initiate(env, policy, Date.now());
  let toSend = out.send[0]!;
  let mm5: Buffer | null = null;
  let mm6: Buffer | null = null;
  for (let step = 0; step < 3; step++) {
    if (step === 2) mm5 = toSend;
    send(toSend);
    const answer = await next(2000);
    assert.ok(answer, `no answer to message ${2 * step + 1}`);
    const o = await phase1.handle(answer, Date.now());
    if (o.established) {
      mm6 = answer;
      break;
    }
    toSend = o.send[0]!;
  }
  assert.ok(phase1.established && mm5 && mm6, 'main mode completed');
  return { sock, send, next, phase1, mm5, mm6 };
}

test('a repeated MM5 gets the cached MM6 during the grace period; after it the machine is gone and the repeat is ignored', async () => {
  // retransmission 0.3 s + 0.3 s: the grace period is 0.6 s
  const r = new Gateway(peerConfig(base, base + 2, { initiate: false, retransmit: { tries: 1, timeout: '0.3s', factor: 1 } }));
  const errors: GatewayErrorEvent[] = [];
  r.on('error', (e) => errors.push(e));
  await r.start();
  let sock: dgram.Socket | null = null;
  try {
    const p = await rawInitiator();
    sock = p.sock;
    await until(() => r.stats().phase1 === 1, 2000);

    // within the grace period: the same MM6 again
    p.send(p.mm5);
    assert.deepEqual(await p.next(500), p.mm6);

    // after it: nothing answers, nothing fails, the SA stays
    await new Promise((res) => setTimeout(res, 900));
    p.send(p.mm5);
    assert.equal(await p.next(500), null);
    assert.deepEqual(r.stats(), { halfOpen: 0, phase1: 1, children: 0 });
    assert.deepEqual(errors, []);
    assert.equal(r.status().sas[0]!.cookieI, p.phase1.cookieI.toString('hex'));
  } finally {
    sock?.close();
    await r.stop();
  }
});

test('DPD through the heap of deadlines: a silent peer is probed, then declared dead and its SA goes', async () => {
  const r = new Gateway(peerConfig(base, base + 2, { initiate: false, dpd: { delay: '1s', timeout: '1s' } }));
  const down: Phase1DownEvent[] = [];
  r.on('phase1-down', (e) => down.push(e));
  r.on('error', () => undefined);
  await r.start();
  let sock: dgram.Socket | null = null;
  try {
    const p = await rawInitiator(); // announces DPD, never answers a probe
    sock = p.sock;
    const probe = await p.next(3000);
    assert.ok(probe, 'an R-U-THERE');
    assert.equal(probe[18], 5, 'an Informational exchange');
    await until(() => down.length === 1, 5000);
    assert.match(down[0]!.reason, /dead peer/);
    assert.deepEqual(r.stats(), { halfOpen: 0, phase1: 0, children: 0 });
  } finally {
    sock?.close();
    await r.stop();
  }
});

test('the heap of deadlines fires each scheduled SA once, in order, never a removed one, and never spins on one that stays due', async () => {
  const { Deadlines } = await import('../../ts/gateway/deadlines.js');
  type Item = { id: number; wakeAt: number; heapIndex: number };
  const fired: { id: number; at: number }[] = [];
  let again: Item | null = null;
  let refires = 0;
  const d = new Deadlines<Item>((it) => {
    fired.push({ id: it.id, at: Date.now() });
    if (it === again && refires++ < 3) d.set(it, Date.now() - 1); // due at once again: next turn, not a loop
  });
  const items: Item[] = Array.from({ length: 300 }, (_, id) => ({ id, wakeAt: Infinity, heapIndex: -1 }));
  const t0 = Date.now();
  const wanted = new Map<number, number>();
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const it of items) {
    const at = t0 + 20 + Math.floor(rnd() * 80);
    d.set(it, at);
    wanted.set(it.id, at);
  }
  for (const it of items.filter((_, i) => i % 5 === 0)) {
    d.remove(it);
    wanted.delete(it.id);
  }
  for (const it of items.filter((_, i) => i % 7 === 1)) {
    const at = t0 + 10 + Math.floor(rnd() * 120); // moved earlier or later
    d.set(it, at);
    wanted.set(it.id, at);
  }
  again = items[1]!;
  await until(() => d.size === 0 && fired.length >= wanted.size + 3, 3000);
  const first = fired.filter((f, i) => fired.findIndex((g) => g.id === f.id) === i);
  assert.deepEqual(new Set(first.map((f) => f.id)), new Set(wanted.keys()), 'each scheduled one fired, no removed one');
  for (const f of first) assert.ok(f.at >= wanted.get(f.id)!, `item ${f.id} fired ${wanted.get(f.id)! - f.at} ms early`);
  for (let i = 1; i < first.length; i++) assert.ok(wanted.get(first[i]!.id)! >= wanted.get(first[i - 1]!.id)!, 'in deadline order');
  assert.equal(fired.filter((f) => f.id === 1).length, 4, 'the one that stayed due fired on later turns, three more times');
});
