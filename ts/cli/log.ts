// The event log of `ike gateway`: one line per event with its time, filtered by level, and quiet under load.
// A gateway that sets up hundreds of SAs a second would print four lines per setup (phase1-up, child-up and
// their downs); in text mode the SA events beyond the first `burst` of a window are counted instead and told
// in one summary line at the window's end. `--log-level debug` prints every one; --json (for machines) prints
// every event of the level too, one JSON object per line.
//   error  errors only             info   + SA events, listening, control, reload (the default)
//   warn   + warnings              debug  every event, no summaries
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The events that come once per SA and so grow with the setup rate. */
const PER_SA = new Set(['phase1-up', 'phase1-down', 'child-up', 'child-down', 'remote-access']);

export interface EventLogOptions {
  json: boolean;
  level: LogLevel;
  /** SA event lines per window before they are summarised (text mode, below debug). */
  burst?: number;
  windowMs?: number;
  write?: (line: string) => void;
  now?: () => Date;
}

export class EventLog {
  private readonly burst: number;
  private readonly windowMs: number;
  private readonly write: (line: string) => void;
  private readonly now: () => Date;
  private windowStart = 0;
  private printed = 0;
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: EventLogOptions) {
    this.burst = o.burst ?? 20;
    this.windowMs = o.windowMs ?? 10_000;
    this.write = o.write ?? ((line) => process.stdout.write(line + '\n'));
    this.now = o.now ?? (() => new Date());
  }

  /** One event; `level` is where it belongs (SA events and the rest are info, failures error). */
  event(name: string, fields: Record<string, unknown>, level: LogLevel = name === 'error' ? 'error' : 'info'): void {
    if (LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf(this.o.level)) return;
    if (PER_SA.has(name) && !this.o.json && this.o.level !== 'debug' && !this.admit(name)) return;
    this.write(this.format(name, fields));
  }

  /** Prints what the current window still holds (at stop). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.held.size === 0) return;
    const counts = Object.fromEntries(this.held);
    const total = [...this.held.values()].reduce((a, b) => a + b, 0);
    this.held.clear();
    this.write(this.format('summary', { seconds: Math.round(this.windowMs / 1000), notPrinted: total, ...counts, hint: '--log-level debug prints every event' }));
  }

  private admit(name: string): boolean {
    const t = this.now().getTime();
    if (t - this.windowStart >= this.windowMs) {
      this.flush();
      this.windowStart = t;
      this.printed = 0;
    }
    if (this.printed < this.burst) {
      this.printed++;
      return true;
    }
    this.held.set(name, (this.held.get(name) ?? 0) + 1);
    if (this.timer === null) {
      // the summary comes at the window's end even when no further event arrives; never keeps the process up
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.windowStart + this.windowMs - t));
      this.timer.unref();
    }
    return false;
  }

  /** `TIME event k=v ...`, or one JSON object with `event` and `time`. */
  format(event: string, fields: Record<string, unknown>): string {
    const time = this.now().toISOString();
    if (this.o.json) return JSON.stringify({ event, time, ...fields });
    const parts = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) && v !== '' ? v : JSON.stringify(v)}`);
    return [time, event, ...parts].join(' ');
  }
}
