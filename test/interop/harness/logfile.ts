// A peer daemon's log file as the tests read it (charon's, pluto's): the text so far, a mark to wait from, and
// a wait for a line that matches.
import { readFileSync, statSync } from 'node:fs';
import { sleep } from './proc.js';

export class LogFile {
  constructor(readonly path: string) {}

  /** The log so far ('' before the daemon wrote it). */
  text(): string {
    try {
      return readFileSync(this.path, 'utf8');
    } catch {
      return '';
    }
  }

  /** Current length: pass it to waitFor to wait for a line written after this point. */
  mark(): number {
    try {
      return statSync(this.path).size;
    } catch {
      return 0;
    }
  }

  tail(lines: number): string {
    return this.text().split('\n').slice(-lines - 1).join('\n');
  }

  /** Waits for the log (after byte offset `from`) to match `re`: the match, or null on timeout. */
  async waitFor(re: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpExecArray | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text().slice(from));
      if (m) return m;
      if (performance.now() >= deadline) return null;
      await sleep(25);
    }
  }
}

/** A daemon the tests start, with the log methods its tests use (over LogFile). */
export abstract class LoggedDaemon {
  abstract get logPath(): string;

  private get logFile(): LogFile {
    return new LogFile(this.logPath);
  }

  /** The log so far ('' before start). */
  log(): string {
    return this.logFile.text();
  }

  /** Current log length: pass it to waitForLog to wait for a line written after this point. */
  logMark(): number {
    return this.logFile.mark();
  }

  logTail(lines: number): string {
    return this.logFile.tail(lines);
  }

  /** Waits for a log line matching `re` (after byte offset `from`); resolves the match or null on timeout. */
  waitForLog(re: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpExecArray | null> {
    return this.logFile.waitFor(re, timeoutMs, from);
  }
}
