// A load tester in the manner of strongSwan's load-tester plugin: many complete setups (phase 1 + Quick
// Mode, each on its own fresh ISAKMP SA with its own cookies) driven through ONE Gateway against a real
// peer. A setup counts as done when our side has its child SA; unless `keep`, its ISAKMP SA (and the
// child) is then deleted, telling the peer, so the peer's tables stay small and the run measures setup
// cost only. Concurrency bounds the setups in flight; rate bounds how many start per second.
import type { Gateway, ChildUpEvent, GatewayErrorEvent, Phase1DownEvent } from '../gateway/gateway.js';

export interface LoadOptions {
  /** The connection (by name) of the gateway's config to set up again and again; it must name a remote. */
  connection: string;
  /** Setups to run in total. */
  count: number;
  /** Setups in flight at most (default 1). */
  concurrency?: number;
  /** New setups started per second at most (default: no limit). */
  rate?: number;
  /** Keep the SAs up instead of deleting each once its child is up. */
  keep?: boolean;
  /** A setup not complete after this long fails with kind TIMEOUT (default 30 000 ms). */
  timeoutMs?: number;
  /** Called every `progressIntervalMs` (default 1000) while running, and once more with the final state
   *  (so a run shorter than the interval still reports). */
  onProgress?: (p: LoadProgress) => void;
  progressIntervalMs?: number;
}

export interface LoadProgress {
  started: number;
  done: number;
  failed: number;
  inFlight: number;
  seconds: number;
  /** Setups completed per second over the last interval. */
  ratePerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadResult {
  connection: string;
  count: number;
  concurrency: number;
  rate: number | null;
  done: number;
  failed: number;
  seconds: number;
  /** Completed setups per second, over the whole run. */
  setupsPerSec: number;
  /** Setup latency (initiate until our child SA exists), completed setups only. */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Setup latencies counted in buckets: `count` setups took more than the previous bucket's `upToMs` and at most this one's (Infinity: the rest). */
  latencyHistogram: Array<{ upToMs: number; count: number }>;
  /** CPU time of this whole process (user + system, every thread) during the run, ms. */
  cpuMs: number;
  /** Failed setups by kind: the gateway's IkeError kinds (NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED, ...), TIMEOUT, DELETED, INITIATE. */
  failures: Record<string, number>;
}

interface Setup {
  cookieI: string;
  startedAt: number;
  timer: NodeJS.Timeout;
}

type Early = { kind: 'up' } | { kind: 'failed'; why: string };

/** Bucket bounds of LoadResult.latencyHistogram, ms (roughly x2 steps, as a Prometheus histogram has). */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, Infinity];

/** Sorted latencies counted in LATENCY_BUCKETS_MS. */
export function latencyHistogram(sorted: readonly number[]): Array<{ upToMs: number; count: number }> {
  let i = 0;
  return LATENCY_BUCKETS_MS.map((upToMs) => {
    let count = 0;
    while (i < sorted.length && sorted[i]! <= upToMs) {
      i++;
      count++;
    }
    return { upToMs, count };
  });
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export class LoadTester {
  private readonly gw: Gateway;
  private readonly o: Required<Omit<LoadOptions, 'rate' | 'onProgress'>> & Pick<LoadOptions, 'rate' | 'onProgress'>;
  private readonly pending = new Map<string, Setup>();
  /** Events for cookies whose initiate() has not resolved yet (cannot happen with a real network; kept for safety). */
  private readonly early = new Map<string, Early>();
  private readonly latencies: number[] = [];
  private readonly failures: Record<string, number> = {};
  private started = 0;
  /** initiate() calls not yet resolved: in flight, but without a cookie yet. */
  private starting = 0;
  private done = 0;
  private failed = 0;
  private t0 = 0;
  private running = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private rateTimer: NodeJS.Timeout | null = null;

  constructor(gateway: Gateway, options: LoadOptions) {
    if (!Number.isInteger(options.count) || options.count < 1) throw new RangeError(`count must be a positive integer, not ${options.count}`);
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, not ${concurrency}`);
    if (options.rate !== undefined && !(options.rate > 0)) throw new RangeError(`rate must be > 0, not ${options.rate}`);
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, not ${timeoutMs}`);
    const c = gateway.config.connections.find((x) => x.name === options.connection);
    if (!c) throw new RangeError(`no connection named '${options.connection}' in the gateway's config`);
    if (c.remote === '%any') throw new RangeError(`connection '${options.connection}' has remote %any: a load tester needs a peer address`);
    this.gw = gateway;
    this.o = {
      connection: options.connection,
      count: options.count,
      concurrency,
      rate: options.rate,
      keep: options.keep ?? false,
      timeoutMs,
      onProgress: options.onProgress,
      progressIntervalMs: options.progressIntervalMs ?? 1000,
    };
  }

  /** Where the run stands now. */
  progress(lastRate = 0): LoadProgress {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      started: this.started,
      done: this.done,
      failed: this.failed,
      inFlight: this.pending.size + this.starting,
      seconds: this.t0 ? (performance.now() - this.t0) / 1000 : 0,
      ratePerSec: lastRate,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
    };
  }

  /** Stops starting new setups; run() resolves once the ones in flight are done, failed or timed out. */
  stop(): void {
    this.stopped = true;
    this.poke();
  }

  /** Runs the whole load; the gateway must be started. Resolves when every setup is done or failed. */
  async run(): Promise<LoadResult> {
    if (this.running) throw new Error('this LoadTester is already running');
    this.running = true;
    const onUp = (e: ChildUpEvent) => {
      if (e.initiator && e.connection === this.o.connection) this.settle(e.cookieI, { kind: 'up' });
    };
    const onError = (e: GatewayErrorEvent) => {
      if (e.cookieI !== undefined && e.connection === this.o.connection) this.settle(e.cookieI, { kind: 'failed', why: e.kind });
    };
    // An ISAKMP SA that goes away before its child is up (deleted by the peer, replaced) fails its setup.
    const onDown = (e: Phase1DownEvent) => {
      // (our own deletes of finished setups come back here too: nothing to settle)
      if (e.connection === this.o.connection && !e.reason.startsWith('load test')) this.settle(e.cookieI, { kind: 'failed', why: 'DELETED' });
    };
    this.gw.on('child-up', onUp);
    this.gw.on('error', onError);
    this.gw.on('phase1-down', onDown);
    this.t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let lastDone = 0;
    let lastAt = this.t0;
    const report = () => {
      const now = performance.now();
      const rate = ((this.done - lastDone) * 1000) / Math.max(1, now - lastAt);
      lastDone = this.done;
      lastAt = now;
      this.o.onProgress!(this.progress(rate));
    };
    const ticker = this.o.onProgress ? setInterval(report, this.o.progressIntervalMs) : null;
    try {
      for (;;) {
        this.fill();
        const inFlight = this.pending.size + this.starting;
        if (inFlight === 0 && (this.started >= this.o.count || this.stopped)) break;
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
      }
    } finally {
      if (ticker) clearInterval(ticker);
      if (this.rateTimer) clearTimeout(this.rateTimer);
      this.gw.off('child-up', onUp);
      this.gw.off('error', onError);
      this.gw.off('phase1-down', onDown);
    }
    // the final state, once the run is over and cleaned up (a throwing callback cannot skip the cleanup)
    if (ticker) report();
    const seconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      connection: this.o.connection,
      count: this.o.count,
      concurrency: this.o.concurrency,
      rate: this.o.rate ?? null,
      done: this.done,
      failed: this.failed,
      seconds,
      setupsPerSec: this.done / seconds,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length ? sorted[sorted.length - 1]! : 0,
      latencyHistogram: latencyHistogram(sorted),
      cpuMs: (cpu.user + cpu.system) / 1000,
      failures: { ...this.failures },
    };
  }

  private poke(): void {
    this.wake?.();
  }

  /** Starts setups while the concurrency and the rate allow. */
  private fill(): void {
    while (!this.stopped && this.started < this.o.count && this.pending.size + this.starting < this.o.concurrency) {
      if (this.o.rate !== undefined) {
        // the n-th setup may start n/rate seconds after the run began
        const due = this.t0 + (this.started * 1000) / this.o.rate;
        const wait = due - performance.now();
        if (wait > 0) {
          if (!this.rateTimer) {
            this.rateTimer = setTimeout(() => {
              this.rateTimer = null;
              this.poke();
            }, Math.ceil(wait));
          }
          return;
        }
      }
      this.started++;
      this.starting++;
      void this.startOne();
    }
  }

  private async startOne(): Promise<void> {
    const startedAt = performance.now();
    let cookieI: string | undefined;
    try {
      // independent: the gateway must not treat these SAs as rekeys of one another
      cookieI = await this.gw.initiate(this.o.connection, { fresh: true, independent: true });
    } catch {
      cookieI = undefined;
    }
    this.starting--;
    if (cookieI === undefined) {
      // the gateway reported why as an 'error' event without a cookie
      this.fail('INITIATE');
      this.poke();
      return;
    }
    const timer = setTimeout(() => {
      if (this.pending.get(cookieI!) !== setup) return;
      this.pending.delete(cookieI!);
      this.fail('TIMEOUT');
      this.gw.deleteSa(cookieI!, 'load test setup timed out');
      this.poke();
    }, this.o.timeoutMs);
    const setup: Setup = { cookieI, startedAt, timer };
    this.pending.set(cookieI, setup);
    const early = this.early.get(cookieI);
    if (early) {
      this.early.delete(cookieI);
      this.settle(cookieI, early);
    }
  }

  private settle(cookieI: string, how: Early): void {
    const setup = this.pending.get(cookieI);
    if (!setup) {
      // Only while some initiate() is unresolved can an event belong to a setup we do not know yet.
      if (this.starting > 0 && this.early.size < 4096) this.early.set(cookieI, how);
      return;
    }
    this.pending.delete(cookieI);
    clearTimeout(setup.timer);
    if (how.kind === 'up') {
      this.done++;
      this.latencies.push(performance.now() - setup.startedAt);
      // Deferred: the gateway is still handling the Quick Mode's last message when it emits child-up.
      if (!this.o.keep) setImmediate(() => this.gw.deleteSa(cookieI, 'load test: setup complete'));
    } else {
      this.fail(how.why);
      this.gw.deleteSa(cookieI, 'load test setup failed');
    }
    this.poke();
  }

  private fail(kind: string): void {
    this.failed++;
    this.failures[kind] = (this.failures[kind] ?? 0) + 1;
  }
}

/** The one-line text summary, also used as the live progress line. */
export function formatProgress(p: LoadProgress, count: number): string {
  return `${p.seconds.toFixed(1)}s done ${p.done}/${count} failed ${p.failed} in flight ${p.inFlight} rate ${p.ratePerSec.toFixed(0)}/s p50 ${p.p50Ms.toFixed(1)} ms p99 ${p.p99Ms.toFixed(1)} ms`;
}

export function formatResult(r: LoadResult): string {
  const fails = Object.entries(r.failures).map(([k, v]) => `${k}=${v}`).join(' ');
  return [
    `connection ${r.connection}: ${r.count} setups, concurrency ${r.concurrency}${r.rate !== null ? `, rate limit ${r.rate}/s` : ''}`,
    `done ${r.done}, failed ${r.failed}${fails ? ` (${fails})` : ''} in ${r.seconds.toFixed(2)} s`,
    `${r.setupsPerSec.toFixed(1)} setups/s, CPU ${(r.cpuMs / Math.max(1, r.done)).toFixed(2)} ms per setup; latency p50 ${r.p50Ms.toFixed(1)} ms, p90 ${r.p90Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, max ${r.maxMs.toFixed(1)} ms`,
  ].join('\n');
}
