// The event lines of `ike gateway`: a time stamp and a level on every line (text or JSON), a level threshold, and
// quiet under load: per event kind, the first `burst` lines of each window are printed and the rest only counted,
// then summed up in one `summary` line when the window ends. 300 setups a second are then a few lines, not 1,200,
// and the first lines of a burst (usually the interesting ones) are still there.

export type Level = 'error' | 'warn' | 'info';
export const LEVELS: readonly Level[] = ['error', 'warn', 'info'];
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2 };

export interface EventLogOptions {
  json: boolean;
  /** Lines below this level are not printed (default info: all). */
  level?: Level;
  /** Lines per event kind per window before they are only counted (default 20). */
  burst?: number;
  /** Window length (default 10 s). */
  windowMs?: number;
  write?: (line: string) => void;
  clock?: () => Date;
}

/** One event as a line: time, level, the event name, then key=value pairs (or one JSON object). */
export function formatEvent(time: Date, level: Level, event: string, fields: Record<string, unknown>, json: boolean): string {
  if (json) return JSON.stringify({ time: time.toISOString(), level, event, ...fields });
  const parts = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && v !== '' && !/[\s"]/.test(v) ? v : JSON.stringify(v)}`);
  return [time.toISOString(), level, event, ...parts].join(' ');
}

export class EventLog {
  private readonly json: boolean;
  private readonly threshold: number;
  private readonly burst: number;
  private readonly windowMs: number;
  private readonly write: (line: string) => void;
  private readonly clock: () => Date;
  private readonly printed = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(options: EventLogOptions) {
    this.json = options.json;
    this.threshold = RANK[options.level ?? 'info'];
    this.burst = options.burst ?? 20;
    this.windowMs = options.windowMs ?? 10_000;
    this.write = options.write ?? ((l) => void process.stdout.write(l + '\n'));
    this.clock = options.clock ?? (() => new Date());
    this.timer = setInterval(() => this.flush(), this.windowMs);
    this.timer.unref();
  }

  /** Prints the event unless its level is below the threshold or its kind used up this window's burst. */
  log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
    if (RANK[level] > this.threshold) return;
    const n = this.printed.get(event) ?? 0;
    if (n >= this.burst) {
      this.suppressed.set(event, (this.suppressed.get(event) ?? 0) + 1);
      return;
    }
    this.printed.set(event, n + 1);
    this.write(formatEvent(this.clock(), level, event, fields, this.json));
  }

  /** Ends the window: one `summary` line with the events not printed, if any. */
  flush(): void {
    if (this.suppressed.size > 0) {
      const counts = Object.fromEntries([...this.suppressed].map(([event, count]) => [event, count]));
      const fields = this.json ? { windowSeconds: this.windowMs / 1000, notShown: counts } : { window: `${this.windowMs / 1000}s`, ...Object.fromEntries(Object.entries(counts).map(([e, c]) => [`${e}.notShown`, c])) };
      this.write(formatEvent(this.clock(), 'info', 'summary', fields, this.json));
    }
    this.printed.clear();
    this.suppressed.clear();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
