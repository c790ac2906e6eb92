// Races in the gateway runtime: a delete or a stop() that meets an exchange whose handling is in flight
// (phase 1 DH, Quick Mode with and without PFS, XAUTH, a child rekey), and a stop() that must leave nothing
// behind (NAT keepalives). Two gateways on 127.0.0.1 with ephemeral ports, driven only through the public API.
//
// The delete (or stop) runs in a microtask queued from the 'datagram' event of the message that starts the
// work: after receive() has handed that message to its asynchronous handler, before the handler's
// continuation. (Called synchronously from the event, it would come before the handler is even looked up,
// and the message would just be dropped: no race.) Every continuation must then find its SA gone and send,
// emit and install nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Gateway, parseConfig, type GatewayConfig } from '../../ts/index.js';
import { userFileLine } from '../../ts/ike/index.js';
import { ExchangeType, parseHeader, PayloadType, type IsakmpHeader } from '../../ts/isakmp/index.js';
import { until } from './peers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ike-races-'));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** How long a test watches after the race for anything that should not happen. */
const SETTLE_MS = 800;
/** Our retransmissions come well after the settle period... */
const SHORT = { tries: 2, timeout: '1s', factor: 1.5 };
/** ...and a peer's retransmitted message 1 (a new exchange, rightly answered) even later. */
const LONG = { tries: 2, timeout: '3s', factor: 1.5 };
const ZERO = { halfOpen: 0, phase1: 0, children: 0 };

const EXCHANGE: Record<number, string> = {
  [ExchangeType.IDENTITY_PROTECTION]: 'MM',
  [ExchangeType.AGGRESSIVE]: 'AM',
  [ExchangeType.INFORMATIONAL]: 'INFO',
  [ExchangeType.TRANSACTION]: 'TRANSACTION',
  [ExchangeType.QUICK_MODE]: 'QM',
};

/** One side's connection 'peer'; the listening ports are 0 (ephemeral), the peer's ports filled in later. */
function conf(side: 'i' | 'r', over: Record<string, unknown>): GatewayConfig {
  const r = parseConfig(
    {
      listen: { address: '127.0.0.1', port: 500, nattPort: 4500 },
      connections: {
        peer: {
          remote: '127.0.0.1',
          auth: { psk: 'race secret', allowAggressivePsk: true },
          localId: side === 'i' ? '@initiator' : '@responder',
          remoteId: side === 'i' ? '@responder' : '@initiator',
          ike: ['aes128-sha256-modp3072'],
          esp: ['aes128-sha256'],
          localTs: side === 'i' ? '10.1.0.0/24' : '10.2.0.0/24',
          remoteTs: side === 'i' ? '10.2.0.0/24' : '10.1.0.0/24',
          retransmit: SHORT,
          initiate: side === 'i',
          ...over,
        },
      },
    },
    { baseDir: dir, env: {} },
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  r.config.listen.port = 0;
  r.config.listen.nattPort = 0;
  return r.config;
}

interface Entry {
  kind: 'in' | 'out' | 'phase1-up' | 'phase1-down' | 'child-up' | 'child-down' | 'error' | 'remote-access';
  /** What a failure message shows: 'out QM', 'child-up', 'error PSK_MISMATCH: ...' */
  text: string;
  header?: IsakmpHeader;
}

/** Everything a gateway sends, receives and emits, in order. */
function record(gw: Gateway) {
  const log: Entry[] = [];
  gw.on('datagram', (d) => {
    const h = parseHeader(d.bytes);
    if (!h.ok) return;
    log.push({ kind: d.direction, text: `${d.direction} ${EXCHANGE[h.value.exchangeType] ?? h.value.exchangeType}`, header: h.value });
  });
  gw.on('phase1-up', () => log.push({ kind: 'phase1-up', text: 'phase1-up' }));
  gw.on('phase1-down', (e) => log.push({ kind: 'phase1-down', text: `phase1-down (${e.reason})` }));
  gw.on('child-up', () => log.push({ kind: 'child-up', text: 'child-up' }));
  gw.on('child-down', (e) => log.push({ kind: 'child-down', text: `child-down (${e.reason})` }));
  gw.on('error', (e) => log.push({ kind: 'error', text: `error ${e.kind}: ${e.message}` }));
  gw.on('remote-access', (e) => log.push({ kind: 'remote-access', text: `remote-access ${e.event.type}` }));
  const texts = (from = 0, pred: (e: Entry) => boolean = () => true) => log.slice(from).filter(pred).map((e) => e.text);
  return { log, texts };
}
type Recorder = ReturnType<typeof record>;

/**
 * Matches the phase 1 message that starts the DH where it arrives: the first Main Mode message that begins
 * with KE (MM3 at a responder, MM4 at an initiator; a retransmitted MM1 / MM2 does not count), or the first
 * Aggressive Mode message (AM1 at a responder, AM2 at an initiator).
 */
function dhStart(mode: 'main' | 'aggressive'): (h: IsakmpHeader) => boolean {
  return mode === 'main'
    ? (h) => h.messageId === 0 && h.exchangeType === ExchangeType.IDENTITY_PROTECTION && h.nextPayload === PayloadType.KE
    : (h) => h.messageId === 0 && h.exchangeType === ExchangeType.AGGRESSIVE;
}

/** Matches the first message of the n-th Quick Mode (by message ID) that arrives: QM2 at an initiator, QM1 at a responder. */
function nthQuickMode(n: number): (h: IsakmpHeader) => boolean {
  const ids: number[] = [];
  return (h) => {
    if (h.exchangeType !== ExchangeType.QUICK_MODE || ids.includes(h.messageId)) return false;
    ids.push(h.messageId);
    return ids.length === n;
  };
}

/** Matches the first message of an exchange type. */
function firstOf(exchangeType: number): (h: IsakmpHeader) => boolean {
  let done = false;
  return (h) => !done && h.exchangeType === exchangeType && (done = true);
}

interface Trigger {
  fired: boolean;
  /** The recorder's length when act() ran: what came after is the test's business. */
  mark: number;
  /** stats() just before act(). */
  before: { halfOpen: number; phase1: number; children: number };
}

/** When a matching datagram arrives (first time only), runs act() in a microtask: during the handling it started. */
function trigger(gw: Gateway, rec: Recorder, match: (h: IsakmpHeader) => boolean, act: () => void): Trigger {
  const t: Trigger = { fired: false, mark: -1, before: ZERO };
  gw.on('datagram', (d) => {
    if (d.direction !== 'in' || t.fired) return;
    const h = parseHeader(d.bytes);
    if (!h.ok || !match(h.value)) return;
    t.fired = true;
    queueMicrotask(() => {
      t.before = gw.stats();
      t.mark = rec.log.length;
      act();
    });
  });
  return t;
}

/**
 * A responder (started) and an initiator (not started yet: the test sets its triggers first), each with a
 * recorder. The initiator is configured with the responder's actual ports; the responder only answers.
 */
async function pair(rOver: Record<string, unknown>, iOver: Record<string, unknown>, edit: (c: GatewayConfig) => void = () => {}) {
  const rc = conf('r', rOver);
  edit(rc);
  const r = new Gateway(rc);
  const rr = record(r);
  await r.start();
  const ic = conf('i', iOver);
  ic.connections[0]!.remotePort = r.boundPorts.ike;
  ic.connections[0]!.remoteNattPort = r.boundPorts.natt;
  edit(ic);
  const i = new Gateway(ic);
  const ri = record(i);
  const start = async () => {
    await i.start();
    rc.connections[0]!.remotePort = i.boundPorts.ike;
    rc.connections[0]!.remoteNattPort = i.boundPorts.natt;
  };
  const stop = async () => {
    await Promise.all([i.stop(), r.stop()]);
  };
  return { r, i, rr, ri, start, stop };
}

function assertEmpty(gw: Gateway, who: string): void {
  assert.deepEqual(gw.stats(), ZERO, `${who}: stats()`);
  assert.deepEqual(gw.phase1Sas(), [], `${who}: phase1Sas()`);
  assert.deepEqual(gw.childSas(), [], `${who}: childSas()`);
  assert.deepEqual(gw.status().sas, [], `${who}: status().sas`);
}

const isOut = (e: Entry) => e.kind === 'out';
const isEvent = (e: Entry) => e.kind !== 'in' && e.kind !== 'out';

// ---- 1. delete while phase 1 computes its DH ----

async function deleteDuringPhase1(mode: 'main' | 'aggressive', side: 'initiator' | 'responder'): Promise<void> {
  const common = { mode, ike: ['aes128-sha256-modp3072'] };
  // A responder that deleted must not see the initiator's retransmitted message 1 within the test: that
  // would be a new exchange, which it rightly answers.
  const p = await pair({ ...common }, { ...common, retransmit: side === 'responder' ? LONG : SHORT });
  const [gw, rec] = side === 'initiator' ? [p.i, p.ri] : [p.r, p.rr];
  const t = trigger(gw, rec, dhStart(mode), () => gw.delete('peer'));
  await p.start();
  try {
    await until(() => t.fired && t.mark >= 0, 5000, 'the message that starts the DH');
    assert.equal(t.before.phase1, 0, 'phase 1 was not complete when the delete came');
    await sleep(SETTLE_MS);
    // A half-open exchange has no keys to protect a Delete with: nothing at all goes out. It was never up:
    // no phase1-up, and so no phase1-down either (an 'error' is not judged here).
    assert.deepEqual(
      { sent: rec.texts(t.mark, isOut), emitted: rec.texts(t.mark, (e) => isEvent(e) && e.kind !== 'error') },
      { sent: [], emitted: [] },
      `${side}: after the delete (peer: ${(side === 'initiator' ? p.rr : p.ri).texts().join(', ')})`,
    );
    assert.deepEqual(rec.texts(0, (e) => e.kind === 'phase1-up' || e.kind === 'child-up'), [], `${side} emitted`);
    assert.deepEqual(p.rr.texts(0, (e) => e.kind === 'child-up').concat(p.ri.texts(0, (e) => e.kind === 'child-up')), [], 'child-up on either side');
    assertEmpty(gw, side);
  } finally {
    await p.stop();
  }
}

test('delete during Aggressive Mode DH, initiator (on AM2): no phase1-up, no AM3, no Quick Mode, nothing left', { timeout: 10_000 }, () => deleteDuringPhase1('aggressive', 'initiator'));
test('delete during Main Mode DH, initiator (on MM4): no MM5, no phase1-up, nothing left', { timeout: 10_000 }, () => deleteDuringPhase1('main', 'initiator'));
test('delete during Main Mode DH, responder (on MM3): no MM4, no phase1-up, nothing left', { timeout: 10_000 }, () => deleteDuringPhase1('main', 'responder'));
test('delete during Aggressive Mode DH, responder (on AM1): no AM2, no phase1-up, nothing left', { timeout: 10_000 }, () => deleteDuringPhase1('aggressive', 'responder'));

// ---- 2, 3, 6. delete or stop() while a Quick Mode is in flight ----

interface QuickModeRace {
  side: 'initiator' | 'responder';
  action: 'delete' | 'stop';
  pfs: boolean;
  /** Which Quick Mode meets the action: 1 = the first child, 2 = the child rekey. */
  nth: 1 | 2;
  espSeconds?: number;
}

async function duringQuickMode(o: QuickModeRace): Promise<void> {
  const over = { pfs: o.pfs };
  const short = (c: GatewayConfig) => {
    // the config refuses ESP lifetimes under 60 s; the runtime takes what it is given
    if (o.espSeconds !== undefined) c.connections[0]!.lifetime.espSeconds = o.espSeconds;
  };
  const p = await pair(over, over, short);
  const [gw, rec, peer, peerRec] = o.side === 'initiator' ? [p.i, p.ri, p.r, p.rr] : [p.r, p.rr, p.i, p.ri];
  let stopDone = false;
  let resolvedMark = -1;
  const t = trigger(gw, rec, nthQuickMode(o.nth), () => {
    if (o.action === 'delete') gw.delete('peer');
    else
      void gw.stop().then(() => {
        stopDone = true;
        resolvedMark = rec.log.length;
      });
  });
  await p.start();
  try {
    await until(() => t.fired && t.mark >= 0, o.nth === 2 ? 8000 : 5000, o.nth === 2 ? 'the rekey Quick Mode' : 'the Quick Mode');
    assert.deepEqual(t.before, { halfOpen: 0, phase1: 1, children: o.nth - 1 }, 'the SA the action met');
    if (o.action === 'stop') await until(() => stopDone, 3000, 'stop() to resolve');
    await sleep(SETTLE_MS);
    // What went out after the action: the Deletes (the child's, if any, and the ISAKMP SA's), nothing else.
    // What was emitted after it: the SA (and its child) going down once, no child coming up.
    const out = rec.log.slice(t.mark).filter(isOut);
    const why = o.action === 'delete' ? 'deleted locally' : 'gateway stopped';
    const downs = o.nth === 2 ? [`child-down (${why})`, `phase1-down (${why})`] : [`phase1-down (${why})`];
    assert.deepEqual(
      { sentOtherThanInformational: out.map((e) => e.text).filter((x) => x !== 'out INFO'), emitted: rec.texts(t.mark, isEvent) },
      { sentOtherThanInformational: [], emitted: downs },
      `${o.side}: after the ${o.action} (all: ${rec.texts(t.mark).join(', ')}; peer: ${peerRec.texts().join(', ')})`,
    );
    assert.ok(out.length >= o.nth, `${o.side} sent its Deletes (${out.length} Informational)`);
    if (o.action === 'stop') {
      assert.deepEqual(rec.texts(resolvedMark), [], `${o.side}: anything at all after stop() resolved`);
    }
    assertEmpty(gw, o.side);
    // the peer took the Deletes: nothing left there either, and no child came up on it after the action
    await until(() => peer.stats().phase1 === 0 && peer.stats().children === 0, 3000, `the peer (${o.side === 'initiator' ? 'responder' : 'initiator'}) to take the Deletes`);
    assertEmpty(peer, 'peer');
    const peerUps = peerRec.texts(0, (e) => e.kind === 'child-up');
    assert.equal(peerUps.length, o.nth - 1, 'child-up on the peer (only the first child, before the rekey)');
  } finally {
    await p.stop();
  }
}

for (const side of ['initiator', 'responder'] as const) {
  for (const pfs of [false, true]) {
    const on = side === 'initiator' ? 'QM2 arrives at the initiator' : 'QM1 arrives at the responder';
    test(`delete during Quick Mode ${pfs ? 'with' : 'without'} PFS (${on}): no child-up, nothing after the Deletes, nothing left`, { timeout: 10_000 }, () =>
      duringQuickMode({ side, action: 'delete', pfs, nth: 1 }),
    );
  }
}

for (const side of ['initiator', 'responder'] as const) {
  for (const pfs of [false, true]) {
    const on = side === 'initiator' ? 'QM2 arrives at the initiator' : 'QM1 arrives at the responder';
    test(`stop() during Quick Mode ${pfs ? 'with' : 'without'} PFS (${on}): stop resolves, only the Delete goes out, no child-up`, { timeout: 10_000 }, () =>
      duringQuickMode({ side, action: 'stop', pfs, nth: 1 }),
    );
  }
}

test('a child rekey meets a delete (initiator, rekey QM2 arrives): no child-up after the delete, nothing left', { timeout: 10_000 }, () =>
  duringQuickMode({ side: 'initiator', action: 'delete', pfs: true, nth: 2, espSeconds: 2 }),
);
test('a child rekey meets a delete (responder, rekey QM1 arrives): no child-up after the delete, nothing left', { timeout: 10_000 }, () =>
  duringQuickMode({ side: 'responder', action: 'delete', pfs: false, nth: 2, espSeconds: 2 }),
);

// ---- 4. stop() during XAUTH ----

async function stopDuringXauth(side: 'client' | 'server'): Promise<void> {
  writeFileSync(path.join(dir, 'users'), `${await userFileLine('alice', 'right pw', { N: 1024, r: 8, p: 1 })}\n`);
  const p = await pair({ xauth: { users: 'users', maxAttempts: 1 } }, { xauth: { user: 'alice', password: 'right pw' } });
  const [gw, rec, peer, peerRec] = side === 'client' ? [p.i, p.ri, p.r, p.rr] : [p.r, p.rr, p.i, p.ri];
  let stopDone = false;
  let resolvedMark = -1;
  // client: the server's XAUTH request arrives; server: the client's answer (its password check is in flight)
  const t = trigger(gw, rec, firstOf(ExchangeType.TRANSACTION), () => {
    void gw.stop().then(() => {
      stopDone = true;
      resolvedMark = rec.log.length;
    });
  });
  await p.start();
  try {
    await until(() => t.fired && t.mark >= 0, 5000, 'the first XAUTH message');
    assert.deepEqual(t.before, { halfOpen: 0, phase1: 1, children: 0 });
    await until(() => stopDone, 3000, 'stop() to resolve');
    await sleep(SETTLE_MS);
    assert.deepEqual(rec.texts(t.mark, isOut), ['out INFO'], `${side} sent after stop() (the ISAKMP SA's Delete only)`);
    assert.deepEqual(rec.texts(t.mark, isEvent), ['phase1-down (gateway stopped)'], `${side} emitted after stop()`);
    assert.deepEqual(rec.texts(resolvedMark), [], `${side}: anything at all after stop() resolved`);
    assertEmpty(gw, side);
    await until(() => peer.stats().phase1 === 0, 3000, 'the peer to take the Delete');
    assertEmpty(peer, 'peer');
    assert.deepEqual(peerRec.texts(0, (e) => e.kind === 'child-up'), [], 'child-up on the peer');
  } finally {
    await p.stop();
  }
}

test('stop() on the XAUTH client while XAUTH is in progress: nothing sent but the Delete, no events after', { timeout: 10_000 }, () => stopDuringXauth('client'));
test('stop() on the XAUTH server while it checks the password: nothing sent but the Delete, no events after', { timeout: 10_000 }, () => stopDuringXauth('server'));

// ---- 5. after stop() the process can exit ----

const INDEX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'ts', 'index.js');

interface ExitCase {
  /** Forced UDP encapsulation: NAT keepalives (every second) on the established ISAKMP SA. */
  encap: boolean;
  /**
   * Instead of a tunnel: Aggressive Mode, and the initiator's stop() comes while its DH for AM2 runs (the
   * race of the first tests, with keepalives armed by whatever runs after it).
   */
  stopDuringAmDh?: boolean;
}

/** A script for a child process: two gateways, a tunnel, stop() on both; then it must exit by itself. */
function exitScript(o: ExitCase): string {
  const race = o.stopDuringAmDh === true;
  const connection = (side: 'i' | 'r') => ({
    remote: '127.0.0.1',
    auth: { psk: 'exit secret', allowAggressivePsk: true },
    localId: `@${side}`,
    remoteId: side === 'i' ? '@r' : '@i',
    mode: race ? 'aggressive' : 'main',
    ike: [race ? 'aes128-sha256-modp3072' : 'aes128-sha256-ecp256'],
    esp: ['aes128gcm16'],
    encap: o.encap,
    natKeepalive: '1s',
    initiate: side === 'i',
  });
  return `
    import { Gateway, parseConfig, parseHeader } from ${JSON.stringify(pathToFileURL(INDEX).href)};
    const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
    const config = (c) => {
      const r = parseConfig({ listen: { address: '127.0.0.1', port: 500, nattPort: 4500 }, connections: { peer: c } }, { baseDir: '.', env: {} });
      if (!r.ok) throw new Error(r.errors.join('; '));
      r.config.listen.port = 0;
      r.config.listen.nattPort = 0;
      return r.config;
    };
    const r = new Gateway(config(${JSON.stringify(connection('r'))}));
    await r.start();
    const ic = config(${JSON.stringify(connection('i'))});
    ic.connections[0].remotePort = r.boundPorts.ike;
    ic.connections[0].remoteNattPort = r.boundPorts.natt;
    const i = new Gateway(ic);
    let ups = 0;
    for (const g of [i, r]) {
      g.on('child-up', () => ups++);
      g.on('error', (e) => console.error('error', e.kind, e.message));
    }
    if (${race}) {
      let stopping = null;
      i.on('datagram', (d) => {
        const h = parseHeader(d.bytes);
        if (stopping || d.direction !== 'in' || !h.ok || h.value.exchangeType !== 4) return;
        queueMicrotask(() => (stopping = i.stop()));
      });
      await i.start();
      const end = Date.now() + 5000;
      while (!stopping) {
        if (Date.now() > end) { console.error('no AM2'); process.exit(3); }
        await sleep(10);
      }
      await stopping;
      await sleep(1200); // whatever the DH's continuation arms would fire by now
      await r.stop();
      console.log('stopped during the DH');
    } else {
      await i.start();
      const sent = () => i.status().sas.reduce((n, s) => n + s.nat.keepalivesSent, 0);
      const end = Date.now() + 6000;
      while (!(ups === 2 && (${o.encap} ? sent() > 0 : Date.now() > end - 4800))) {
        if (Date.now() > end) { console.error('no tunnel (child-up ' + ups + ', keepalives ' + sent() + ')'); process.exit(3); }
        await sleep(10);
      }
      console.log('up, keepalives sent ' + sent() + ', interval ' + i.status().sas[0].nat.keepaliveSeconds + ' s');
      await i.stop();
      await r.stop();
      console.log('stopped');
    }
    // what keeps the process alive, should something (this timer does not count)
    setTimeout(() => console.error('still alive 2.5 s after stop(): ' + process.getActiveResourcesInfo().join(', ')), 2500).unref();
  `;
}

async function exitsAfterStop(o: ExitCase): Promise<void> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', exitScript(o)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, 8000);
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  clearTimeout(killer);
  const said = `stdout: ${stdout.trim()} | stderr: ${stderr.trim()}`;
  assert.match(stdout, /stopped/, `both gateways stopped (${said})`);
  if (o.encap && !o.stopDuringAmDh) assert.match(stdout, /keepalives sent [1-9]/, `keepalives were running (${said})`);
  assert.equal(timedOut, false, `the process did not exit by itself within 8 s of starting (${said})`);
  assert.equal(code, 0, said);
}

test('stop() with NAT keepalives running (encap, 1 s keepalives): the process exits by itself', { timeout: 12_000 }, () => exitsAfterStop({ encap: true }));
test('stop() on a plain tunnel (no encapsulation): the process exits by itself', { timeout: 12_000 }, () => exitsAfterStop({ encap: false }));
test('stop() during Aggressive Mode DH with encap and NAT keepalives (initiator, on AM2): the process exits by itself', { timeout: 12_000 }, () =>
  exitsAfterStop({ encap: true, stopDuringAmDh: true }),
);
