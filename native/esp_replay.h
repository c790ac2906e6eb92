// Inbound anti-replay window of RFC 4303 section 3.4.3 with the extended sequence number (ESN) inference of
// RFC 4303 Appendix A2. The bitmap is a ring of 64-bit words (the block layout of RFC 6479): advancing the
// window clears whole words instead of shifting the bitmap, so a large jump costs at most one pass over it.
#pragma once
#include <cstdint>
#include <cstring>
#include <new>

namespace ike {
namespace esp {

class ReplayWindow {
 public:
  static constexpr uint32_t kMaxWindow = 4096;
  // The bitmap is sized to the window: one word more than the window needs, so the word holding T and the
  // oldest in-window word never alias, rounded up to a power of two so the word index is a mask. Windows up
  // to 64 packets (the default, and strongSwan's 32) fit in the SA itself; larger ones get their own block.
  // A fixed 4096-bit bitmap was 1 KiB in every SA, inbound or not.
  static constexpr uint32_t kInlineWords = 2;

  ReplayWindow() = default;
  ReplayWindow(const ReplayWindow&) = delete;  // bits_ may point into the object itself
  ReplayWindow& operator=(const ReplayWindow&) = delete;
  ~ReplayWindow() { FreeBits(); }

  // size = W in packets (0 = no replay check); esn = 64-bit sequence numbers, low 32 bits on the wire.
  // False when the bitmap cannot be allocated (the window is then left off).
  bool Configure(uint32_t size, bool esn) {
    FreeBits();
    size_ = 0;
    esn_ = esn;
    top_ = 0;
    uint32_t words = 1;
    while (words < (size + 63) / 64 + 1) words <<= 1;
    if (words > kInlineWords) {
      uint64_t* heap = new (std::nothrow) uint64_t[words];
      if (heap == nullptr) return false;
      bits_ = heap;
    }
    size_ = size;
    words_ = words;
    std::memset(bits_, 0, sizeof(uint64_t) * words_);
    return true;
  }

  // Test/resume hook: behave as if `top` were the highest sequence number received, with an empty bitmap.
  void SetTop(uint64_t top) {
    top_ = top;
    std::memset(bits_, 0, sizeof(uint64_t) * words_);
  }
  uint64_t Top() const { return top_; }

  // The full sequence number a received low-order value stands for (Appendix A2.2). Returns false when the
  // inferred value would lie below 0 (the packet is older than anything this SA can have sent).
  bool Infer(uint32_t seql, uint64_t* seq) const {
    if (!esn_) {
      *seq = seql;
      return true;
    }
    // Without a replay window the inference still needs a W: half the 32-bit space picks the value nearest T.
    const uint32_t w = size_ != 0 ? size_ : 0x80000000u;
    const uint32_t tl = static_cast<uint32_t>(top_);
    const uint32_t th = static_cast<uint32_t>(top_ >> 32);
    const uint32_t bottom = tl - w + 1;  // mod 2^32, as the appendix computes it
    uint64_t seqh;
    if (tl >= w - 1) {
      // Case A: the window lies within one 2^32 subspace.
      seqh = seql >= bottom ? th : static_cast<uint64_t>(th) + 1;
      if (seqh > 0xffffffffull) return false;
    } else {
      // Case B: the window spans two subspaces; large low values belong to the previous one.
      if (seql >= bottom) {
        if (th == 0) return false;
        seqh = th - 1;
      } else {
        seqh = th;
      }
    }
    *seq = (seqh << 32) | seql;
    return true;
  }

  // Pre-check before the ICV: true when seq may be new. Never changes state.
  bool Check(uint64_t seq) const {
    if (seq == 0) return false;  // 0 is never sent: the first packet of an SA carries 1
    if (size_ == 0 || seq > top_) return true;
    if (top_ - seq >= size_) return false;  // left of the window: too old
    return (bits_[Word(seq)] & Bit(seq)) == 0;
  }

  // Marks seq as received; only after the ICV verified (RFC 4303 3.4.3), so forged packets cannot move it.
  void Update(uint64_t seq) {
    if (seq > top_) {
      if (size_ != 0) {
        uint64_t diff = (seq >> 6) - (top_ >> 6);
        if (diff >= words_) {
          std::memset(bits_, 0, sizeof(uint64_t) * words_);
        } else {
          for (uint64_t b = (top_ >> 6) + 1; b <= (seq >> 6); b++) bits_[b & (words_ - 1)] = 0;
        }
      }
      top_ = seq;
    }
    if (size_ != 0) bits_[Word(seq)] |= Bit(seq);
  }

 private:
  uint32_t Word(uint64_t seq) const { return static_cast<uint32_t>((seq >> 6) & (words_ - 1)); }
  static uint64_t Bit(uint64_t seq) { return 1ull << (seq & 63); }

  void FreeBits() {
    if (bits_ != inline_) delete[] bits_;
    bits_ = inline_;
    words_ = kInlineWords;
  }

  uint32_t size_ = 0;
  bool esn_ = false;
  uint32_t words_ = kInlineWords;
  uint64_t top_ = 0;  // T: highest sequence number received (full 64 bits with ESN)
  uint64_t* bits_ = inline_;
  uint64_t inline_[kInlineWords] = {};
};

}  // namespace esp
}  // namespace ike
