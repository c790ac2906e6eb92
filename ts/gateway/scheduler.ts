// The gateway's one scheduler: every timer of every SA (phase 1 retransmission and grace, Quick Mode and
// DPD, remote access, NAT keepalives, lifetimes, rekeys, pending deletes) is a deadline on the SA's entry,
// and the entry sits in one heap at the first of them (deadlines.ts), with one Node timer for the whole
// gateway. Work that outlives its SA (an ISAKMP Delete held behind its children's) is a deadline of its
// own in the same heap. When the heap is empty no Node timer is left, so stop() leaves no handle behind.
import { Deadlines, type Scheduled } from './deadlines.js';
import type { IsakmpEntry } from './sa-table.js';

/**
 * How long a message that must follow another waits behind it (Phase1Output.later, Phase2Output.later): a peer
 * that handles datagrams on several threads (strongSwan) may otherwise take the second first.
 */
export const SEND_LATER_MS = 50;

/** Something to do once at a time, with no SA to hang it on. */
interface Deferred extends Scheduled {
  run: () => void;
  done: () => void;
}

export class Scheduler {
  private readonly heap: Deadlines<IsakmpEntry | Deferred>;
  private readonly deferred = new Set<Promise<void>>();

  /** `due(entry)` runs when the first of an entry's deadlines has come. */
  constructor(due: (entry: IsakmpEntry) => void) {
    this.heap = new Deadlines((item) => {
      if ('run' in item) {
        try {
          item.run();
        } finally {
          item.done();
        }
      } else due(item);
    });
  }

  /** Schedules the entry at the first of its deadlines (none: out of the heap). */
  wake(entry: IsakmpEntry): void {
    if (entry.state === 'closed') return this.heap.remove(entry);
    let due = Infinity;
    const consider = (t: number | null) => {
      if (t !== null && t < due) due = t;
    };
    consider(entry.phase1Due);
    consider(entry.ctxDue);
    consider(entry.raDue);
    consider(entry.keepaliveAt);
    consider(entry.rekeyAt);
    consider(entry.dropAt);
    if (entry.sa !== null && entry.state === 'established') consider(entry.sa.expiresAt);
    for (const ch of entry.children) {
      consider(ch.sa.expiresAt);
      consider(ch.rekeyAt);
      consider(ch.dropAt);
    }
    this.heap.set(entry, due);
  }

  /** Nothing more falls due for this entry. */
  forget(entry: IsakmpEntry): void {
    this.heap.remove(entry);
  }

  /** Runs `run` after `ms`; the promise settles once it has run. */
  after(ms: number, run: () => void): Promise<void> {
    const p = new Promise<void>((done) => this.heap.set({ wakeAt: Infinity, heapIndex: -1, run, done }, Date.now() + ms));
    this.deferred.add(p);
    void p.then(() => this.deferred.delete(p));
    return p;
  }

  /** Resolves when every deferred piece of work has run. */
  async settle(): Promise<void> {
    while (this.deferred.size > 0) await Promise.all(this.deferred);
  }

  /** Scheduled items (entries and deferred work): zero after stop(). */
  get size(): number {
    return this.heap.size;
  }
}
