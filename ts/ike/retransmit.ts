// The retransmission schedule every exchange shares. The machine never sleeps: it tells its caller the
// next deadline and is called back with onTimer(now).

export interface RetransmitPolicy {
  /** Retransmissions after the first send (strongSwan: retransmit_tries = 5). */
  tries: number;
  /** First timeout in ms (strongSwan: retransmit_timeout = 4 s). */
  timeoutMs: number;
  /** Each further timeout is the previous times this (strongSwan: retransmit_base = 1.8). */
  factor: number;
}

export const DEFAULT_RETRANSMIT: RetransmitPolicy = { tries: 5, timeoutMs: 4000, factor: 1.8 };

export class Retransmitter {
  private message: Buffer | null = null;
  private sent = 0;
  private deadlineMs: number | null = null;

  constructor(private readonly policy: RetransmitPolicy) {}

  /** A new request went out at `now`: start its schedule. */
  arm(message: Buffer, now: number): void {
    this.message = message;
    this.sent = 0;
    this.deadlineMs = now + this.policy.timeoutMs;
  }

  clear(): void {
    this.message = null;
    this.deadlineMs = null;
  }

  get deadline(): number | null {
    return this.deadlineMs;
  }

  /** At a deadline: the message to send again, 'timeout' when all tries are used, or null if not due. */
  due(now: number): Buffer | 'timeout' | null {
    if (this.deadlineMs === null || now < this.deadlineMs || this.message === null) return null;
    if (this.sent >= this.policy.tries) {
      this.clear();
      return 'timeout';
    }
    this.sent++;
    this.deadlineMs = now + this.policy.timeoutMs * Math.pow(this.policy.factor, this.sent);
    return this.message;
  }

  /** Total time from the first send until a timeout is declared, for error messages. */
  totalMs(): number {
    return retransmitTotalMs(this.policy);
  }
}

/**
 * How long a peer with this schedule keeps retransmitting one message before it gives up: how long the
 * answer to its last message is worth keeping (a peer that missed it will ask again within that time).
 */
export function retransmitTotalMs(policy: RetransmitPolicy): number {
  let t = 0;
  for (let i = 0; i <= policy.tries; i++) t += policy.timeoutMs * Math.pow(policy.factor, i);
  return t;
}
