// Anti-replay window (RFC 4303 3.4.3) with ESN inference (RFC 4303 Appendix A2) for the node:crypto SA.
// Same algorithm as native/esp_replay.h. Sequence numbers are (hi, lo) pairs of uint32 numbers: 64-bit values
// do not fit a JS number, and BigInt would cost an allocation per packet.

export const MAX_REPLAY_WINDOW = 4096;

export class ReplayWindow {
  private topHi = 0;
  private topLo = 0;
  private readonly words: number;
  private readonly bits: Uint32Array;

  constructor(
    readonly size: number,
    readonly esn: boolean,
  ) {
    // Ring of 32-bit words, one more than the window needs, rounded to a power of two (RFC 6479 layout).
    let w = 1;
    while (w < Math.ceil(size / 32) + 1) w <<= 1;
    this.words = w;
    this.bits = new Uint32Array(w);
  }

  /** Behave as if `top` were the highest sequence number received, with an empty bitmap (test hook). */
  setTop(top: bigint): void {
    this.topHi = Number(top >> 32n);
    this.topLo = Number(top & 0xffffffffn);
    this.bits.fill(0);
  }

  top(): bigint {
    return (BigInt(this.topHi) << 32n) | BigInt(this.topLo);
  }

  /** High-order 32 bits for a received low-order value, or -1 when that would be below 0. */
  inferHigh(seql: number): number {
    if (!this.esn) return 0;
    const w = this.size !== 0 ? this.size : 0x80000000;
    const tl = this.topLo;
    const th = this.topHi;
    const bottom = (tl - w + 1) >>> 0;
    if (tl >= w - 1) {
      const h = seql >= bottom ? th : th + 1; // Case A: window within one subspace
      return h > 0xffffffff ? -1 : h;
    }
    if (seql >= bottom) return th === 0 ? -1 : th - 1; // Case B: previous subspace
    return th;
  }

  /** Pre-check before the ICV: true when (hi, lo) may be new. */
  check(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) return false;
    if (this.size === 0 || this.isAboveTop(hi, lo)) return true;
    let distance: number;
    if (hi === this.topHi) distance = this.topLo - lo;
    else if (hi + 1 === this.topHi) distance = this.topLo + 0x100000000 - lo;
    else return false;
    if (distance >= this.size) return false;
    return (this.bits[(lo >>> 5) & (this.words - 1)] & (1 << (lo & 31))) === 0;
  }

  /** Marks (hi, lo) as received: only after its ICV verified. */
  update(hi: number, lo: number): void {
    if (this.isAboveTop(hi, lo)) {
      if (this.size !== 0) {
        const hiDiff = hi - this.topHi;
        const blocks = hiDiff >= 2 ? Infinity : hiDiff * 0x8000000 + (lo >>> 5) - (this.topLo >>> 5);
        if (blocks >= this.words) this.bits.fill(0);
        else for (let k = 1; k <= blocks; k++) this.bits[((this.topLo >>> 5) + k) & (this.words - 1)] = 0;
      }
      this.topHi = hi;
      this.topLo = lo;
    }
    if (this.size !== 0) this.bits[(lo >>> 5) & (this.words - 1)] |= 1 << (lo & 31);
  }

  private isAboveTop(hi: number, lo: number): boolean {
    return hi > this.topHi || (hi === this.topHi && lo > this.topLo);
  }
}
