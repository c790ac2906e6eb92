// Error events, rate limited. A flood of malformed datagrams or forged message 1s, or a peer retransmitting
// a message we refused, would otherwise become one 'error' event (and one log line) per datagram: 450,000
// garbage datagrams made 72,290 lines. Here each error is counted; only these are emitted:
// - the first report of a failure: a repeat with the same kind, source, exchange (cookie) and text (the
//   peer retransmitting the refused message) is counted, never emitted again while it is remembered;
// - per kind and source address, the first `perSource` in a window; per kind, the first `perKind` in a
//   window, whatever the sources (forged sources are all different); but every failure of an exchange we
//   started ourselves (they come no faster than we start them, and an embedder such as the load tester waits
//   for each);
// - at the end of a window in which errors were held back, one summary event (kind SUPPRESSED) saying how
//   many of which kind, from how many sources.
// The counts per kind and per source are in the gateway's status (`errors`).

/**
 * An 'error' event as the gateway emits it: events.ts's GatewayErrorEvent has this shape (defined here so that
 * the two modules do not import each other).
 */
export interface ErrorEvent {
  connection?: string | undefined;
  cookieI?: string | undefined;
  remote?: { address: string; port: number };
  kind: string;
  message: string;
}

export interface ErrorLimits {
  /** Errors of one kind from one source address emitted per window. */
  perSource: number;
  /** Errors of one kind emitted per window, all sources together. */
  perKind: number;
  windowMs: number;
  /** A failure reported again within this long of its last report is a repeat (a peer retransmits for ~3 min). */
  repeatMs: number;
}

export const DEFAULT_ERROR_LIMITS: ErrorLimits = { perSource: 3, perKind: 20, windowMs: 60_000, repeatMs: 180_000 };

/** Failures remembered to recognise their repeats; sources with counts kept for status (oldest go first). */
const MAX_REMEMBERED = 4096;
const MAX_SOURCES = 1024;

export interface ErrorSourceCount {
  kind: string;
  source: string;
  count: number;
  suppressed: number;
  /** The last one's text (an error message never carries key material). */
  last: string;
  lastAt: string;
}

export interface ErrorStats {
  total: number;
  emitted: number;
  /** Repeats of a failure already reported (19.9: the peer retransmitting a refused message). */
  repeats: number;
  /** Held back by the per-source and per-kind limits. */
  suppressed: number;
  byKind: Record<string, { count: number; suppressed: number }>;
  /** The sources with the most errors (at most 20), most first. */
  top: ErrorSourceCount[];
}

interface Window {
  start: number;
  byKind: Map<string, number>;
  byKindSource: Map<string, number>;
  /** Held back in this window, per kind: count and sources. */
  held: Map<string, { count: number; sources: Set<string> }>;
}

export class ErrorSummary {
  readonly limits: ErrorLimits;
  private readonly seen = new Map<string, number>();
  private readonly sources = new Map<string, ErrorSourceCount>();
  private readonly totals = { total: 0, emitted: 0, repeats: 0, suppressed: 0 };
  private readonly byKind = new Map<string, { count: number; suppressed: number }>();
  private window: Window | null = null;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  /** `emit` sends an event on (the gateway's 'error'); the summary of a window goes the same way. */
  constructor(
    private readonly emit: (e: ErrorEvent) => void,
    limits: Partial<ErrorLimits> = {},
  ) {
    this.limits = { ...DEFAULT_ERROR_LIMITS, ...limits };
  }

  /** One error: counted, and emitted unless it is a repeat or over a limit. */
  /** `ours`: an exchange we started; its repeats are folded, but no per-source or per-kind limit holds it back. */
  report(e: ErrorEvent, now = Date.now(), ours = false): void {
    const source = e.remote?.address ?? '';
    this.totals.total++;
    const kind = this.kindCount(e.kind);
    kind.count++;
    const per = this.sourceCount(e.kind, source);
    per.count++;
    per.last = e.message;
    per.lastAt = new Date(now).toISOString();
    const w = this.currentWindow(now);
    const identity = `${e.kind}\0${source}\0${e.cookieI ?? ''}\0${e.message}`;
    const before = this.seen.get(identity);
    this.seen.delete(identity); // (re)inserted: the most recent are the ones remembered
    this.seen.set(identity, now);
    if (before !== undefined && now - before < this.limits.repeatMs) {
      this.totals.repeats++;
      return;
    }
    if (this.seen.size > MAX_REMEMBERED) this.seen.delete(this.seen.keys().next().value!);
    const ks = `${e.kind}\0${source}`;
    const fromSource = (w.byKindSource.get(ks) ?? 0) + 1;
    const ofKind = (w.byKind.get(e.kind) ?? 0) + 1;
    w.byKindSource.set(ks, fromSource);
    w.byKind.set(e.kind, ofKind);
    if (!ours && (fromSource > this.limits.perSource || ofKind > this.limits.perKind)) {
      this.totals.suppressed++;
      kind.suppressed++;
      per.suppressed++;
      const held = w.held.get(e.kind) ?? { count: 0, sources: new Set<string>() };
      held.count++;
      if (held.sources.size < MAX_SOURCES) held.sources.add(source);
      w.held.set(e.kind, held);
      this.armFlush(w);
      return;
    }
    this.totals.emitted++;
    this.emit(e);
  }

  stats(): ErrorStats {
    const top = [...this.sources.values()].sort((a, b) => b.count - a.count).slice(0, 20).map((s) => ({ ...s }));
    return { ...this.totals, byKind: Object.fromEntries([...this.byKind].map(([k, v]) => [k, { ...v }])), top };
  }

  /** Emits what the current window held back, and stops its timer (the gateway stops). */
  close(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.flush();
  }

  private currentWindow(now: number): Window {
    if (this.window !== null && now - this.window.start < this.limits.windowMs) return this.window;
    this.flush();
    this.window = { start: now, byKind: new Map(), byKindSource: new Map(), held: new Map() };
    return this.window;
  }

  private armFlush(w: Window): void {
    if (this.flushTimer !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      if (this.window === w) this.window = null;
      this.flush(w);
    }, Math.max(0, w.start + this.limits.windowMs - Date.now()));
    this.flushTimer.unref();
  }

  /** One SUPPRESSED event for what a window held back. */
  private flush(w: Window | null = this.window): void {
    if (w === null || w.held.size === 0) return;
    const parts = [...w.held].map(([kind, h]) => `${h.count} ${kind} from ${h.sources.size}${h.sources.size >= MAX_SOURCES ? '+' : ''} source(s)`);
    const seconds = Math.round(this.limits.windowMs / 1000);
    w.held.clear();
    this.emit({ kind: 'SUPPRESSED', message: `errors held back in the last ${seconds} s (limits: ${this.limits.perSource} per kind and source, ${this.limits.perKind} per kind): ${parts.join(', ')}`, remote: { address: '', port: 0 } });
  }

  private kindCount(kind: string): { count: number; suppressed: number } {
    let k = this.byKind.get(kind);
    if (k === undefined) this.byKind.set(kind, (k = { count: 0, suppressed: 0 }));
    return k;
  }

  private sourceCount(kind: string, source: string): ErrorSourceCount {
    const key = `${kind}\0${source}`;
    let s = this.sources.get(key);
    if (s === undefined) {
      s = { kind, source, count: 0, suppressed: 0, last: '', lastAt: '' };
      if (this.sources.size >= MAX_SOURCES) this.sources.delete(this.sources.keys().next().value!);
      this.sources.set(key, s);
    }
    return s;
  }
}
