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
  /**
   * Octets we may still send to the peer on our own: what it sent us minus what we sent it, while it has not
   * shown that it receives at its address (a responder's first answer: the message 1 may carry a forged
   * source). A retransmission that would exceed it is skipped (its deadline still passes), so that a forged
   * message 1 gets no more bytes sent to its victim than it carried: amplification <= 1x. Infinity otherwise.
   */
  private budget = Infinity;

  constructor(private readonly policy: RetransmitPolicy) {}

  /** A new request went out at `now`: start its schedule (with a byte budget for an unproven peer). */
  arm(message: Buffer, now: number, budget = Infinity): void {
    this.message = message;
    this.sent = 0;
    this.deadlineMs = now + this.policy.timeoutMs;
    this.budget = budget;
  }

  clear(): void {
    this.message = null;
    this.deadlineMs = null;
    this.budget = Infinity;
  }

  /**
   * The peer repeated its request (`received` octets) and gets our answer again (`answer` octets): one answer
   * per request always goes; what is left of the budget is what a timer retransmission may use.
   */
  answered(received: number, answer: number): void {
    this.budget += received - answer;
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
    if (this.message.length > this.budget) return null; // over the budget: this try passes silently
    this.budget -= this.message.length;
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
