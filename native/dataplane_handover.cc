// Handing packets between the data plane's workers (dataplane_worker.h). Each SA has one owner, the only
// worker that seals or opens with it, so its sequence numbers and replay window need no lock. The kernel
// does not know about owners: a multi-queue TUN device picks the queue (the worker) by flow hash, and a UDP
// GRO bundle may carry datagrams of several SAs. What arrives at the wrong worker is copied into a bundle for
// its owner and processed there as if read there; the owner looks the SA up again (an SA may have moved in
// between: a rekey), and hands on once more if needed, a bounded number of times.
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "dataplane_worker.h"

namespace ike {
namespace dataplane {

void Worker::HandOver(unsigned to, Parcel::Kind kind, const uint8_t* p, size_t len, const sockaddr_storage* from,
                      uint8_t hops) {
  if (hops >= kMaxHops || to >= peers_.size() || to == index_) {
    c_.handoverDropped++;
    return;
  }
  if (pending_.size() != peers_.size()) pending_.resize(peers_.size());
  Bundle& b = pending_[to];
  if (b.parcels.empty()) b.data.reserve(kBatch * 2048);
  Parcel parcel;
  parcel.offset = static_cast<uint32_t>(b.data.size());
  parcel.length = static_cast<uint32_t>(len);
  parcel.kind = kind;
  parcel.hops = static_cast<uint8_t>(hops + 1);
  if (from != nullptr) parcel.from = *from;
  else std::memset(&parcel.from, 0, sizeof(parcel.from));
  b.data.insert(b.data.end(), p, p + len);
  b.parcels.push_back(parcel);
  c_.handedOver++;
}

void Worker::FlushHandovers() {
  uint64_t dropped = 0;
  for (size_t to = 0; to < pending_.size(); to++) {
    Bundle& b = pending_[to];
    if (b.parcels.empty()) continue;
    Worker* w = peers_[to];
    const size_t n = b.parcels.size();
    bool queued = false;
    {
      std::lock_guard<std::mutex> lock(w->inboxMu_);
      if (w->inboxParcels_ + n <= kMaxInbox) {
        w->inbox_.push_back(std::move(b));
        w->inboxParcels_ += n;
        queued = true;
      }
    }
    if (queued) {
      const uint64_t one = 1;
      if (write(w->wakeFd_, &one, sizeof(one)) < 0) {
        // only on counter overflow: the owner is awake already
      }
    } else {
      dropped += n;  // the owner is far behind: dropped, as a full socket buffer would
    }
    b = Bundle();
  }
  if (dropped != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    c_.handoverDropped += dropped;
  }
}

void Worker::DrainInbox(uint8_t* tunBuf) {
  std::vector<Bundle> got;
  {
    std::lock_guard<std::mutex> lock(inboxMu_);
    got.swap(inbox_);
    inboxParcels_ = 0;
  }
  for (Bundle& b : got) {
    ReceiveTun(b, tunBuf);
    ReceiveEsp(b);
  }
}

// The bundle's TUN packets, kBatch at a time, through SealAndSend as if read from this worker's queue.
void Worker::ReceiveTun(const Bundle& b, uint8_t* buf) {
  size_t lens[kBatch];
  uint8_t hops[kBatch];
  unsigned used = 0;
  for (const Parcel& p : b.parcels) {
    if (p.kind != Parcel::kTun) continue;
    std::memcpy(buf + used * kSlot + kHeadroom, b.data.data() + p.offset, p.length);
    lens[used] = p.length;
    hops[used++] = p.hops;
    if (used == kBatch) {
      SealAndSend(buf, lens, used, hops);
      used = 0;
    }
  }
  if (used != 0) SealAndSend(buf, lens, used, hops);
}

// The bundle's ESP packets, opened as if received here: in place in the bundle's buffer (this worker's now).
void Worker::ReceiveEsp(Bundle& b) {
  unsigned inBatch = 0;
  out_.clear();
  std::unique_lock<std::mutex> lock(mu_);
  for (const Parcel& p : b.parcels) {
    if (p.kind == Parcel::kTun) continue;
    Esp(b.data.data() + p.offset, p.length, p.from, p.kind == Parcel::kUdp, p.hops);
    if (++inBatch == kBatch) {
      WriteOut(lock);
      out_.clear();
      inBatch = 0;
    }
  }
  if (inBatch != 0) WriteOut(lock);
  lock.unlock();
  FlushHandovers();
}

}  // namespace dataplane
}  // namespace ike
