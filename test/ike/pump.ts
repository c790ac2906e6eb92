// A message pump between two in-memory endpoints on a virtual clock: each datagram goes through a channel
// that may drop, duplicate or corrupt it, and the timers both sides ask for fire in order. Phase2Pair
// (quick-mode-pair.ts) and the remote-access Pump (remote-access-pair.ts) are this over their endpoints.

/** What an endpoint answers to a datagram or a timer (Phase2Output, RemoteAccessOutput). */
export interface PumpOutput<E> {
  send: Buffer[];
  later?: Buffer[];
  timer: number | null;
  events: E[];
  dropped: string[];
}

export interface PumpEndpoint<E> {
  handle(message: Buffer, now: number): PumpOutput<E> | Promise<PumpOutput<E>>;
  onTimer(now: number): PumpOutput<E> | Promise<PumpOutput<E>>;
}

/** What the pump records of one side. */
export interface PumpRecord<E> {
  events: E[];
  dropped: string[];
  timer: number | null;
}

export abstract class MessagePump<S extends string, E> {
  now = 1_000_000;
  readonly wire: { from: S; bytes: Buffer }[] = [];
  queue: { to: S; bytes: Buffer }[] = [];

  constructor(
    private readonly names: readonly [S, S],
    /** Returns the datagrams to deliver (default: as sent). */
    public channel: (bytes: Buffer, from: S) => Buffer[] = (b) => [b],
  ) {}

  protected abstract record(who: S): PumpRecord<E>;
  protected abstract endpoint(who: S): PumpEndpoint<E>;

  private other(who: S): S {
    return who === this.names[0] ? this.names[1] : this.names[0];
  }

  take(who: S, out: PumpOutput<E>): void {
    const side = this.record(who);
    side.timer = out.timer;
    side.events.push(...out.events);
    side.dropped.push(...out.dropped);
    // `later` leaves after `send` (a moment later on a real socket; here simply next in line)
    for (const m of [...out.send, ...(out.later ?? [])]) {
      this.wire.push({ from: who, bytes: m });
      for (const d of this.channel(m, who)) this.queue.push({ to: this.other(who), bytes: d });
    }
  }

  /** Delivers queued datagrams and fires timers until nothing is left to do, `until()` holds or `maxMs` passed. */
  async run(maxMs = 600_000, until?: () => boolean): Promise<void> {
    const start = this.now;
    while (this.now - start <= maxMs) {
      if (until?.()) return;
      const q = this.queue.shift();
      if (q) {
        this.take(q.to, await this.endpoint(q.to).handle(q.bytes, this.now));
        continue;
      }
      const next = this.names.map((n) => this.record(n).timer).filter((t): t is number => t !== null).sort((a, b) => a - b)[0];
      if (next === undefined || next - start > maxMs) return;
      this.now = Math.max(this.now, next);
      for (const who of this.names) {
        const t = this.record(who).timer;
        if (t !== null && t <= this.now) this.take(who, await this.endpoint(who).onTimer(this.now));
      }
    }
  }

  /** Queues a datagram as if `from` had sent it. */
  inject(bytes: Buffer, from: S): void {
    this.queue.push({ to: this.other(from), bytes });
  }
}
