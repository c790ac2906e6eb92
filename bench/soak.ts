// `ike soak`: two gateways on 127.0.0.1 with lifetimes short enough that the child SA rekeys every few
// seconds and the ISAKMP SA every minute or so, ESP both ways at a steady rate through Gateway#sendEsp,
// every packet numbered. It counts what was sent, received, lost and duplicated, puts each lost packet
// next to the rekey nearest to it (a loss within the window of a rekey is the rekey's fault), and samples
// memory after a full collection. The verdict fails on any lost packet, on gateway errors, on rekeys that
// did not happen, and on memory that keeps growing (least-squares slope over the second half of the run, past
// a minute of warm-up; a run too short for that says so instead of judging memory).
// It is what the 10-second rekey test in test/gateway/loopback.test.ts is, for half an hour.
//   node --expose-gc dist/bench/soak.js [--minutes 30] [--json] ...   (see SOAK_USAGE)
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Gateway } from '../ts/gateway/gateway.js';
import type { GatewayConfig } from '../ts/gateway/config.js';
import { loopbackConfig } from './loopback-config.js';

export const SOAK_USAGE = `usage: ike soak [--minutes M | --seconds S] [--rate PPS] [--child-lifetime S] [--ike-lifetime S]
               [--sample S] [--payload BYTES] [--ike PROPOSAL] [--esp PROPOSAL] [--no-pfs]
               [--grace MS] [--rekey-window MS] [--max-heap-slope KIB_PER_MIN]
               [--max-rss-slope KIB_PER_MIN] [--json] [--out FILE] [--svg FILE]

Two gateways on 127.0.0.1 (free ports), the initiator's child SA rekeyed every ~0.85-0.9 x
--child-lifetime (default 5 s), its ISAKMP SA every ~0.85-0.9 x --ike-lifetime (default 40 s);
--rate numbered ESP packets per second each way (default 500) through Gateway#sendEsp. Every --sample
seconds (default 10) one line: elapsed, rekeys, packets, lost, heap, external, rss (after a full
collection). Default run: 30 minutes. Exit code 0 when no packet was lost or duplicated, no gateway
error occurred, every expected rekey happened and neither the heap nor the RSS grew faster than the
limits (defaults 64 KiB/min heap, 1024 KiB/min RSS, least-squares over the second half); 1 otherwise;
2 for usage errors. --json prints the result as one JSON object (samples included); --out FILE also
writes it to FILE while the text goes to stdout. --svg FILE draws heap, external and RSS over time.
`;

export interface SoakOptions {
  durationMs: number;
  /** Packets per second each way. */
  rate: number;
  childLifetimeSeconds: number;
  ikeLifetimeSeconds: number;
  sampleMs: number;
  payloadBytes: number;
  ike: string;
  esp: string;
  pfs: boolean;
  /** A packet not received this long after it was sent counts as lost. */
  graceMs: number;
  /** A lost packet sent within this of a rekey event is attributed to that rekey. */
  rekeyWindowMs: number;
  maxHeapSlopeKiBPerMin: number;
  maxRssSlopeKiBPerMin: number;
  /** A full collection before each sample (global.gc under --expose-gc); without it the samples are noisier. */
  gc?: () => void;
  onSample?: (s: SoakSample) => void;
}

export const SOAK_DEFAULTS: SoakOptions = {
  durationMs: 30 * 60_000,
  rate: 500,
  childLifetimeSeconds: 5,
  ikeLifetimeSeconds: 40,
  sampleMs: 10_000,
  payloadBytes: 200,
  ike: 'aes128-sha256-modp2048',
  esp: 'aes128gcm16',
  pfs: true,
  graceMs: 2_000,
  rekeyWindowMs: 2_000,
  maxHeapSlopeKiBPerMin: 64,
  maxRssSlopeKiBPerMin: 1024,
};

export interface SoakSample {
  elapsedSeconds: number;
  childRekeys: number;
  ikeRekeys: number;
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  heapUsed: number;
  external: number;
  rss: number;
  /** Event-loop delay over the interval, p99 (ms): a sign of a machine too busy for the rate asked. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** SAs the two gateways hold now (initiator's ISAKMP SAs and child SAs, old ones in their overlap included). */
  phase1Sas: number;
  childSas: number;
}

export interface LossRecord {
  direction: 'i->r' | 'r->i';
  seq: number;
  sentAtSeconds: number;
  /** The nearest rekey event within the window, or null. */
  rekey: { kind: string; atSeconds: number } | null;
  /** Every event within the window (at most 8): which rekey it was, e.g. a child rekey right after an ISAKMP one. */
  nearby: { kind: string; atSeconds: number }[];
}

export interface SoakResult {
  options: Omit<SoakOptions, 'gc' | 'onSample'>;
  gcExposed: boolean;
  seconds: number;
  childRekeys: number;
  ikeRekeys: number;
  /** What the lifetimes promise for this duration (lower bounds, with the 5% jitter taken at its worst). */
  expectedChildRekeys: number;
  expectedIkeRekeys: number;
  sent: number;
  received: number;
  lost: number;
  lostToRekey: number;
  lostOther: number;
  duplicated: number;
  /** Received after it had been counted lost (later than the grace). */
  late: number;
  /** sendEsp refused (no child SA at that moment): the gap a rekey must never open. */
  sendFailures: number;
  /** Send ticks more than 100 ms late (event loop stalled: a busy machine); losses near one are suspect. */
  stalls: number;
  corrupted: number;
  gatewayErrors: { side: string; kind: string; message: string }[];
  /** First lost packets (at most 50), with the rekey each is attributed to. */
  losses: LossRecord[];
  samples: SoakSample[];
  /** Least-squares slopes over the second half of the samples (none in the first minute), bytes per minute. */
  slopes: { heapUsed: number; external: number; rss: number };
  /** Why memory was not judged (a run too short past its warm-up), or null when it was. */
  memoryNotJudged: string | null;
  memory: { first: SoakSample | null; last: SoakSample | null };
  verdict: 'pass' | 'fail';
  reasons: string[];
}

/**
 * Which numbered packets arrived, in a ring of fixed size so that a 30-minute run holds the same memory
 * at the end as at the start (the soak measures the gateways' memory, not its own bookkeeping). A packet
 * is settled `graceMs` after it was sent: received, or lost.
 */
export class SequenceTracker {
  private readonly sentAt: Float64Array;
  private readonly got: Uint8Array;
  private readonly mask: number;
  /** Every packet below this is settled. */
  private settled = 0;
  private next = 0;
  /** Lost packets not yet seen late (bounded, small: a run that loses more has failed anyway, and the set must
   * not swell the heap the soak is measuring). */
  private readonly lostSeqs = new Set<number>();
  sent = 0;
  received = 0;
  lost = 0;
  duplicated = 0;
  late = 0;

  constructor(
    private readonly graceMs: number,
    ringBits = 17,
  ) {
    this.sentAt = new Float64Array(1 << ringBits);
    this.got = new Uint8Array(1 << ringBits);
    this.mask = (1 << ringBits) - 1;
  }

  /** The sequence number of the next packet; call before sending it. */
  send(now: number): number {
    // a full ring settles its oldest packet early rather than forget it
    if (this.next - this.settled > this.mask) this.settleOne();
    const seq = this.next++;
    this.sentAt[seq & this.mask] = now;
    this.got[seq & this.mask] = 0;
    this.sent++;
    return seq;
  }

  /** A packet arrived: 'ok', 'duplicate', 'late' (after it was counted lost) or 'unknown' (never sent). */
  receive(seq: number): 'ok' | 'duplicate' | 'late' | 'unknown' {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.next) return 'unknown';
    if (seq < this.settled) {
      if (this.lostSeqs.delete(seq)) {
        this.late++;
        return 'late';
      }
      this.duplicated++;
      return 'duplicate';
    }
    const i = seq & this.mask;
    if (this.got[i]) {
      this.duplicated++;
      return 'duplicate';
    }
    this.got[i] = 1;
    this.received++;
    return 'ok';
  }

  /** Settles every packet sent before now - graceMs (all of them with `all`); returns the lost ones. */
  settle(now: number, all = false): { seq: number; sentAt: number }[] {
    const lost: { seq: number; sentAt: number }[] = [];
    while (this.settled < this.next && (all || this.sentAt[this.settled & this.mask]! <= now - this.graceMs)) {
      const r = this.settleOne();
      if (r) lost.push(r);
    }
    return lost;
  }

  private settleOne(): { seq: number; sentAt: number } | null {
    const seq = this.settled++;
    const i = seq & this.mask;
    if (this.got[i]) return null;
    this.lost++;
    if (this.lostSeqs.size < 4096) this.lostSeqs.add(seq);
    return { seq, sentAt: this.sentAt[i]! };
  }
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0, sy = 0;
  for (const p of points) {
    sx += p.x;
    sy += p.y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0, den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Free UDP ports on 127.0.0.1 (the soak takes four: IKE and NAT-T for each side), so that parallel runs do not collide. */
export async function freePorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from({ length: n }, () => new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function gatewayConfig(o: SoakOptions, listen: [number, number], remote: [number, number], initiate: boolean): GatewayConfig {
  const config = loopbackConfig('soak', listen, remote, initiate ? ['soak-initiator', 'soak-responder'] : ['soak-responder', 'soak-initiator'], 'soak run on loopback', {
    ike: [o.ike],
    esp: [o.esp],
    pfs: o.pfs,
    localTs: initiate ? '10.1.0.0/24' : '10.2.0.0/24',
    remoteTs: initiate ? '10.2.0.0/24' : '10.1.0.0/24',
    initiate,
  });
  // The config refuses lifetimes under 60 s (a real deployment should not rekey that often); the runtime
  // takes what it is given, which is the point of a soak.
  const c = config.connections[0]!;
  c.lifetime.espSeconds = o.childLifetimeSeconds;
  c.lifetime.ikeSeconds = o.ikeLifetimeSeconds;
  c.ike = c.ike.map((p) => ({ ...p, lifetimeSeconds: o.ikeLifetimeSeconds }));
  return config;
}

const MAGIC = 0x534f414b; // 'SOAK'
/** Packets each way per 5 ms tick at most (12,800/s): the catch-up rate after a stall. */
const MAX_BURST = 64;
const HEADER = 9; // magic, direction, sequence number

/** A payload with the direction and sequence number up front and a pattern the receiver checks after. */
function packet(size: number, direction: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32BE(MAGIC, 0);
  b[4] = direction;
  b.writeUInt32BE(seq, 5);
  for (let k = HEADER; k < size; k++) b[k] = (seq + k) & 0xff;
  return b;
}

function intact(b: Buffer, seq: number): boolean {
  for (let k = HEADER; k < b.length; k++) if (b[k] !== ((seq + k) & 0xff)) return false;
  return true;
}

export async function runSoak(options: Partial<SoakOptions> = {}): Promise<SoakResult> {
  const o: SoakOptions = { ...SOAK_DEFAULTS, ...options };
  if (!(o.rate > 0) || !(o.durationMs > 0) || !(o.sampleMs > 0)) throw new RangeError('rate, duration and sample interval must be > 0');
  if (!(o.childLifetimeSeconds >= 1) || !(o.ikeLifetimeSeconds >= 2)) throw new RangeError('child lifetime must be >= 1 s, ISAKMP lifetime >= 2 s');
  if (!Number.isInteger(o.payloadBytes) || o.payloadBytes < HEADER || o.payloadBytes > 1400) throw new RangeError(`payload must be ${HEADER}-1400 bytes`);
  const [pi, ni, pr, nr] = await freePorts(4) as [number, number, number, number];
  const responder = new Gateway(gatewayConfig(o, [pr, nr], [pi, ni], false));
  const initiator = new Gateway(gatewayConfig(o, [pi, ni], [pr, nr], true));
  const sides = { i: initiator, r: responder };
  // direction 0: initiator -> responder, 1: responder -> initiator
  const trackers = [new SequenceTracker(o.graceMs), new SequenceTracker(o.graceMs)] as const;
  const t0 = performance.now();
  const secs = (t: number) => (t - t0) / 1000;

  // Every event that replaces or removes an SA, kept for one minute: a loss is settled graceMs after the
  // packet left, so the events near it are at most graceMs + window old by then.
  const events: { at: number; kind: string }[] = [];
  const mark = (kind: string) => {
    const now = performance.now();
    events.push({ at: now, kind });
    while (events.length > 0 && events[0]!.at < now - 60_000) events.shift();
  };
  let childRekeys = 0;
  let ikeUps = 0;
  let childUps = 0;
  const gatewayErrors: SoakResult['gatewayErrors'] = [];
  let errorCount = 0;
  for (const [side, gw] of Object.entries(sides)) {
    gw.on('child-up', (e) => {
      if (side === 'i') {
        childUps++;
        if (e.rekey) childRekeys++;
      }
      if (e.rekey) mark(`child rekey (${side === 'i' ? 'initiator' : 'responder'} up)`);
    });
    gw.on('child-down', (e) => mark(`child down on ${side === 'i' ? 'initiator' : 'responder'}: ${e.reason}`));
    gw.on('phase1-up', () => {
      if (side === 'i') ikeUps++;
      if (side === 'i' && ikeUps > 1) mark('ISAKMP rekey (initiator up)');
    });
    gw.on('phase1-down', (e) => mark(`ISAKMP SA down on ${side === 'i' ? 'initiator' : 'responder'}: ${e.reason}`));
    gw.on('error', (e) => {
      errorCount++;
      if (gatewayErrors.length < 20) gatewayErrors.push({ side: side === 'i' ? 'initiator' : 'responder', kind: e.kind, message: e.message });
    });
  }
  let corrupted = 0;
  const onEsp = (direction: 0 | 1) => (e: { payload: Buffer }) => {
    const p = e.payload;
    if (p.length !== o.payloadBytes || p.readUInt32BE(0) !== MAGIC || p[4] !== direction) {
      corrupted++;
      return;
    }
    const seq = p.readUInt32BE(5);
    if (!intact(p, seq)) corrupted++;
    else if (trackers[direction].receive(seq) === 'unknown') corrupted++;
  };
  responder.on('esp-packet', onEsp(0));
  initiator.on('esp-packet', onEsp(1));

  const losses: LossRecord[] = [];
  let lostToRekey = 0;
  let lostOther = 0;
  const attribute = (direction: 0 | 1, lost: { seq: number; sentAt: number }[]) => {
    for (const l of lost) {
      const near = events.filter((ev) => Math.abs(ev.at - l.sentAt) <= o.rekeyWindowMs);
      let best: { at: number; kind: string } | null = null;
      for (const ev of near) if (!best || Math.abs(ev.at - l.sentAt) < Math.abs(best.at - l.sentAt)) best = ev;
      if (best) lostToRekey++;
      else lostOther++;
      if (losses.length < 50) {
        losses.push({
          direction: direction === 0 ? 'i->r' : 'r->i',
          seq: l.seq,
          sentAtSeconds: secs(l.sentAt),
          rekey: best ? { kind: best.kind, atSeconds: secs(best.at) } : null,
          nearby: near.slice(0, 8).map((ev) => ({ kind: ev.kind, atSeconds: secs(ev.at) })),
        });
      }
    }
  };

  const samples: SoakSample[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let sendFailures = 0;
  /** Send ticks that came more than 100 ms after the previous one. */
  let stalls = 0;
  let lastTick = performance.now();
  let sendTimer: NodeJS.Timeout | null = null;
  let sampleTimer: NodeJS.Timeout | null = null;
  await responder.start();
  await initiator.start();
  try {
    // the first child SA (phase 1 + Quick Mode with PFS) before the clock of the run starts
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no child SA within 20 s${gatewayErrors.length ? `: ${gatewayErrors.map((e) => e.message).join('; ')}` : ''}`)), 20_000);
      const check = () => {
        if (initiator.childSas().length > 0 && responder.childSas().length > 0) {
          clearTimeout(t);
          resolve();
        } else setTimeout(check, 10);
      };
      check();
    });
    const start = performance.now();
    const end = start + o.durationMs;
    loop.enable();
    const sample = () => {
      o.gc?.();
      const m = process.memoryUsage();
      const s: SoakSample = {
        elapsedSeconds: (performance.now() - start) / 1000,
        childRekeys,
        ikeRekeys: Math.max(0, ikeUps - 1),
        sent: trackers[0].sent + trackers[1].sent,
        received: trackers[0].received + trackers[1].received,
        lost: trackers[0].lost + trackers[1].lost,
        duplicated: trackers[0].duplicated + trackers[1].duplicated,
        heapUsed: m.heapUsed,
        external: m.external,
        rss: m.rss,
        loopDelayP99Ms: loop.percentile(99) / 1e6,
        loopDelayMaxMs: loop.max / 1e6,
        phase1Sas: initiator.stats().phase1 + responder.stats().phase1,
        childSas: initiator.stats().children + responder.stats().children,
      };
      loop.reset();
      samples.push(s);
      o.onSample?.(s);
    };
    sample();
    // Sending on a schedule: by time t, rate * t packets each way have left, whatever the timer's jitter.
    const side = [initiator, responder] as const;
    await new Promise<void>((resolve) => {
      sendTimer = setInterval(() => {
        const now = performance.now();
        const due = Math.floor(((Math.min(now, end) - start) * o.rate) / 1000);
        if (now - lastTick > 100) stalls++;
        lastTick = now;
        for (const d of [0, 1] as const) {
          const t = trackers[d];
          // After a stall of the event loop (a busy machine) the backlog goes out over several ticks: in one
          // burst it would overflow the receiver's socket buffer, a loss that is the soak's and not a rekey's.
          for (let n = 0; t.sent < due && n < MAX_BURST; n++) {
            const seq = t.send(now);
            try {
              side[d].sendEsp('soak', packet(o.payloadBytes, d, seq), 4);
            } catch {
              sendFailures++;
            }
          }
          attribute(d, t.settle(now));
        }
        if (now >= end && trackers[0].sent >= due && trackers[1].sent >= due) resolve();
      }, 5);
      sampleTimer = setInterval(sample, o.sampleMs);
    });
    clearInterval(sendTimer!);
    clearInterval(sampleTimer!);
    // the last packets get their grace, then everything is settled
    await new Promise((r) => setTimeout(r, o.graceMs));
    const now = performance.now();
    for (const d of [0, 1] as const) attribute(d, trackers[d].settle(now, true));
    sample();
  } finally {
    if (sendTimer) clearInterval(sendTimer);
    if (sampleTimer) clearInterval(sampleTimer);
    loop.disable();
    await initiator.stop();
    await responder.stop();
  }

  const seconds = o.durationMs / 1000;
  // The initiator rekeys at 0.85-0.9 of the lifetime, counted from when the SA came up, so each period also
  // holds one exchange (allowed 0.25 s for a Quick Mode, 0.5 s for a Main Mode on a busy machine); the first
  // SAs came up before the clock started. A lower bound: ISAKMP rekeys add child rekeys of their own.
  const expectedChildRekeys = Math.floor(seconds / (o.childLifetimeSeconds * 0.9 + 0.25));
  const expectedIkeRekeys = Math.floor(seconds / (o.ikeLifetimeSeconds * 0.9 + 0.5));
  // JIT code, pools and caches grow in the first minute whatever the run: the slope starts after it
  const from = Math.max(MEMORY_WARMUP_SECONDS, seconds / 2);
  const half = samples.filter((s) => s.elapsedSeconds >= from);
  const span = half.length > 1 ? half[half.length - 1]!.elapsedSeconds - half[0]!.elapsedSeconds : 0;
  const memoryNotJudged =
    half.length < 3 || span < MEMORY_MIN_SPAN_SECONDS
      ? `memory not judged: ${half.length} samples over ${span.toFixed(0)} s after ${from.toFixed(0)} s; a slope needs ${MEMORY_MIN_SPAN_SECONDS} s past the warm-up (--minutes 5 or more)`
      : null;
  const perMin = (f: (s: SoakSample) => number) => slope(half.map((s) => ({ x: s.elapsedSeconds / 60, y: f(s) })));
  const slopes = { heapUsed: perMin((s) => s.heapUsed), external: perMin((s) => s.external), rss: perMin((s) => s.rss) };
  const sent = trackers[0].sent + trackers[1].sent;
  const lost = trackers[0].lost + trackers[1].lost;
  const duplicated = trackers[0].duplicated + trackers[1].duplicated;
  const reasons: string[] = [];
  if (lostToRekey > 0) reasons.push(`${lostToRekey} packets lost within ${o.rekeyWindowMs} ms of a rekey`);
  if (lostOther > 0) reasons.push(`${lostOther} packets lost away from any rekey`);
  if (sendFailures > 0) reasons.push(`${sendFailures} packets could not be sent (no child SA at that moment)`);
  if (duplicated > 0) reasons.push(`${duplicated} packets arrived twice`);
  if (corrupted > 0) reasons.push(`${corrupted} packets arrived corrupted or unknown`);
  if (errorCount > 0) reasons.push(`${errorCount} gateway errors (first: ${gatewayErrors[0]!.side} ${gatewayErrors[0]!.kind}: ${gatewayErrors[0]!.message})`);
  if (childRekeys < expectedChildRekeys) reasons.push(`${childRekeys} child rekeys, expected at least ${expectedChildRekeys}`);
  if (ikeUps - 1 < expectedIkeRekeys) reasons.push(`${Math.max(0, ikeUps - 1)} ISAKMP rekeys, expected at least ${expectedIkeRekeys}`);
  if (memoryNotJudged === null) {
    if (slopes.heapUsed > o.maxHeapSlopeKiBPerMin * 1024) reasons.push(`heap grows ${kib(slopes.heapUsed)}/min (limit ${o.maxHeapSlopeKiBPerMin} KiB/min)`);
    if (slopes.rss > o.maxRssSlopeKiBPerMin * 1024) reasons.push(`RSS grows ${kib(slopes.rss)}/min (limit ${o.maxRssSlopeKiBPerMin} KiB/min)`);
  }
  const { gc: _gc, onSample: _s, ...plain } = o;
  return {
    options: plain,
    gcExposed: o.gc !== undefined,
    seconds,
    childRekeys,
    ikeRekeys: Math.max(0, ikeUps - 1),
    expectedChildRekeys,
    expectedIkeRekeys,
    sent,
    received: trackers[0].received + trackers[1].received,
    lost,
    lostToRekey,
    lostOther,
    duplicated,
    late: trackers[0].late + trackers[1].late,
    sendFailures,
    stalls,
    corrupted,
    gatewayErrors,
    losses,
    samples,
    slopes,
    memoryNotJudged,
    memory: { first: samples[0] ?? null, last: samples[samples.length - 1] ?? null },
    verdict: reasons.length === 0 ? 'pass' : 'fail',
    reasons,
  };
}

/** Memory slopes start after this much of the run, and need this long a span to mean anything. */
const MEMORY_WARMUP_SECONDS = 60;
const MEMORY_MIN_SPAN_SECONDS = 120;

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export function formatSample(s: SoakSample): string {
  const t = `${Math.floor(s.elapsedSeconds / 60)}:${String(Math.floor(s.elapsedSeconds % 60)).padStart(2, '0')}`;
  return `${t.padStart(6)} rekeys child ${s.childRekeys} ike ${s.ikeRekeys}  sent ${s.sent} received ${s.received} lost ${s.lost} dup ${s.duplicated}  heap ${mib(s.heapUsed)} external ${mib(s.external)} rss ${mib(s.rss)}  SAs ${s.phase1Sas}/${s.childSas}  loop p99 ${s.loopDelayP99Ms.toFixed(1)} max ${s.loopDelayMaxMs.toFixed(0)} ms`;
}

export function formatSoak(r: SoakResult): string {
  const o = r.options;
  const lines = [
    `soak ${(r.seconds / 60).toFixed(1)} min: ${o.rate} packets/s each way (${o.payloadBytes} bytes), child lifetime ${o.childLifetimeSeconds} s, ISAKMP lifetime ${o.ikeLifetimeSeconds} s, ${o.ike}, esp ${o.esp}${o.pfs ? ' with PFS' : ''}${r.gcExposed ? '' : ' (no --expose-gc: memory figures without a full collection)'}`,
    `rekeys: child ${r.childRekeys} (expected >= ${r.expectedChildRekeys}), ISAKMP ${r.ikeRekeys} (expected >= ${r.expectedIkeRekeys})`,
    `packets: sent ${r.sent}, received ${r.received}, lost ${r.lost} (${r.lostToRekey} near a rekey, ${r.lostOther} elsewhere), duplicated ${r.duplicated}, late ${r.late}, not sendable ${r.sendFailures}, corrupted ${r.corrupted}; event-loop stalls over 100 ms: ${r.stalls}`,
    `memory after gc: heap ${mib(r.memory.first?.heapUsed ?? 0)} -> ${mib(r.memory.last?.heapUsed ?? 0)}, external ${mib(r.memory.first?.external ?? 0)} -> ${mib(r.memory.last?.external ?? 0)}, rss ${mib(r.memory.first?.rss ?? 0)} -> ${mib(r.memory.last?.rss ?? 0)}`,
    r.memoryNotJudged ?? `slope over the second half past the warm-up: heap ${kib(r.slopes.heapUsed)}/min, external ${kib(r.slopes.external)}/min, rss ${kib(r.slopes.rss)}/min`,
  ];
  for (const l of r.losses.slice(0, 10)) lines.push(`  lost ${l.direction} #${l.seq} sent at ${l.sentAtSeconds.toFixed(2)} s: ${l.rekey ? `${l.rekey.kind} at ${l.rekey.atSeconds.toFixed(2)} s` : 'no rekey near it'}`);
  for (const e of r.gatewayErrors.slice(0, 5)) lines.push(`  error on the ${e.side}: ${e.kind}: ${e.message}`);
  lines.push(r.verdict === 'pass' ? 'verdict: pass' : `verdict: FAIL: ${r.reasons.join('; ')}`);
  return lines.join('\n');
}

class SoakUsageError extends Error {}

export function parseSoakArgs(argv: string[]): { options: Partial<SoakOptions>; json: boolean; help: boolean; out?: string; svg?: string } {
  const options: Partial<SoakOptions> = {};
  let json = false;
  let out: string | undefined;
  let svg: string | undefined;
  let help = false;
  const value = (i: number, name: string): number => {
    const v = argv[i];
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new SoakUsageError(`--${name} needs a positive number${v !== undefined ? `, not '${v}'` : ''}`);
    return n;
  };
  const text = (i: number, name: string): string => {
    const v = argv[i];
    if (v === undefined) throw new SoakUsageError(`--${name} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--minutes': options.durationMs = value(++i, 'minutes') * 60_000; break;
      case '--seconds': options.durationMs = value(++i, 'seconds') * 1000; break;
      case '--rate': options.rate = value(++i, 'rate'); break;
      case '--child-lifetime': options.childLifetimeSeconds = value(++i, 'child-lifetime'); break;
      case '--ike-lifetime': options.ikeLifetimeSeconds = value(++i, 'ike-lifetime'); break;
      case '--sample': options.sampleMs = value(++i, 'sample') * 1000; break;
      case '--payload': options.payloadBytes = value(++i, 'payload'); break;
      case '--grace': options.graceMs = value(++i, 'grace'); break;
      case '--rekey-window': options.rekeyWindowMs = value(++i, 'rekey-window'); break;
      case '--max-heap-slope': options.maxHeapSlopeKiBPerMin = value(++i, 'max-heap-slope'); break;
      case '--max-rss-slope': options.maxRssSlopeKiBPerMin = value(++i, 'max-rss-slope'); break;
      case '--ike': options.ike = text(++i, 'ike'); break;
      case '--esp': options.esp = text(++i, 'esp'); break;
      case '--no-pfs': options.pfs = false; break;
      case '--json': json = true; break;
      case '--out': out = text(++i, 'out'); break;
      case '--svg': svg = text(++i, 'svg'); break;
      case '--help': case '-h': help = true; break;
      default: throw new SoakUsageError(`unknown option '${a}'`);
    }
  }
  return { options, json, help, ...(out !== undefined ? { out } : {}), ...(svg !== undefined ? { svg } : {}) };
}

/** The command: samples on stderr (so that --json leaves stdout to the one result object). */
async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseSoakArgs(argv);
  } catch (e) {
    if (!(e instanceof SoakUsageError)) throw e;
    process.stderr.write(`ike soak: ${e.message} (try 'ike soak --help')\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(SOAK_USAGE);
    return 0;
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function' && !process.execArgv.includes('--expose-gc')) {
    // memory figures mean something only after a full collection: run again with the flag
    const r = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, process.argv[1]!, ...argv], { stdio: 'inherit' });
    return r.status ?? 1;
  }
  process.stderr.write('  time rekeys / packets / memory after gc (heap, external, rss) / SAs (phase 1/child) / event-loop delay\n');
  let result: SoakResult;
  try {
    result = await runSoak({ ...parsed.options, ...(gc ? { gc } : {}), onSample: (s) => process.stderr.write(formatSample(s) + '\n') });
  } catch (e) {
    if (e instanceof RangeError) {
      process.stderr.write(`ike soak: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.out !== undefined) writeFileSync(parsed.out, JSON.stringify(result, null, 1) + '\n');
  if (parsed.svg !== undefined) writeFileSync(parsed.svg, (await import('./charts.js')).soakChart(result) + '\n');
  process.stdout.write((parsed.json ? JSON.stringify(result) : formatSoak(result)) + '\n');
  return result.verdict === 'pass' ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
