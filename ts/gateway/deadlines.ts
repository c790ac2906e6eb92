// Every SA's next deadline in one binary heap, with ONE Node timer for the earliest. A Node timer per SA
// costs some 250 bytes (the Timeout, its closure and the closure's context), which a gateway with 100,000
// SAs notices; a heap slot and two numbers on the SA cost a tenth of that. Setting, moving and removing a
// deadline are O(log n).

/** What the heap orders: the SA carries its own deadline and position. */
export interface Scheduled {
  /** When it falls due (Infinity: not scheduled). */
  wakeAt: number;
  /** Its index in the heap, -1 when not in it. */
  heapIndex: number;
}

export class Deadlines<T extends Scheduled> {
  private readonly heap: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** Inside run(): arming waits until the firings are done. */
  private running = false;

  constructor(private readonly fire: (item: T) => void) {}

  get size(): number {
    return this.heap.length;
  }

  /** Schedules `item` at `at`, replacing its previous deadline; Infinity unschedules it. */
  set(item: T, at: number): void {
    if (at === Infinity) return this.remove(item);
    if (item.heapIndex >= 0 && item.wakeAt === at) return;
    if (item.heapIndex < 0) {
      item.wakeAt = at;
      item.heapIndex = this.heap.length;
      this.heap.push(item);
      this.up(item.heapIndex);
    } else {
      const earlier = at < item.wakeAt;
      item.wakeAt = at;
      if (earlier) this.up(item.heapIndex);
      else this.down(item.heapIndex);
    }
    this.arm();
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.heap.pop()!;
    if (last !== item) {
      this.heap[i] = last;
      last.heapIndex = i;
      this.up(i);
      this.down(last.heapIndex);
    }
    item.heapIndex = -1;
    item.wakeAt = Infinity;
    this.arm();
  }

  private arm(): void {
    if (this.running) return;
    const at = this.heap.length > 0 ? this.heap[0]!.wakeAt : Infinity;
    if (at === this.timerAt) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    // Node's timers take at most 2^31-1 ms (24.8 days): a later deadline is simply looked at again then
    if (at !== Infinity) this.timer = setTimeout(() => this.run(), Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1));
  }

  private run(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = Date.now();
    this.running = true;
    // What is due now is taken out first and then fired: whatever a firing schedules, even for now, waits for
    // the next turn of the event loop, so a deadline that keeps falling due cannot spin here.
    const due: T[] = [];
    while (this.heap.length > 0 && this.heap[0]!.wakeAt <= now) {
      const item = this.heap[0]!;
      this.remove(item);
      due.push(item);
    }
    try {
      for (const item of due) this.fire(item);
    } finally {
      this.running = false;
      this.arm();
    }
  }

  private up(i: number): void {
    const h = this.heap;
    const item = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.wakeAt <= item.wakeAt) break;
      h[i] = h[p]!;
      h[i]!.heapIndex = i;
      i = p;
    }
    h[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const item = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.wakeAt < h[l]!.wakeAt ? r : l;
      if (h[c]!.wakeAt >= item.wakeAt) break;
      h[i] = h[c]!;
      h[i]!.heapIndex = i;
      i = c;
    }
    h[i] = item;
    item.heapIndex = i;
  }
}
