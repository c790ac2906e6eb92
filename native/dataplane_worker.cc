// One worker of the tunnel data plane (dataplane_worker.h): its loop, outbound (TUN -> seal -> UDP / raw) and
// inbound (UDP / raw -> open -> TUN).
#include "dataplane_worker.h"

#include <netinet/udp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "dataplane_gso.h"
#include "esp_sa.h"
#include "esp_transport.h"

namespace ike {
namespace dataplane {

Worker::Worker(unsigned index, int tunFd, bool vnet, int udpFd, bool gso, IkeSink onIke)
    : index_(index), tunFd_(tunFd), vnet_(vnet), udpFd_(udpFd), gso_(gso), onIke_(std::move(onIke)) {
  // Here, not in Start(): the workers started before this one may hand it packets already.
  wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

bool Worker::Start(std::string* err) {
  if (wakeFd_ < 0) {
    *err = "eventfd() failed: the worker has no wake-up fd (out of file descriptors?)";
    return false;
  }
  thread_ = std::thread([this] { Run(); });
  return true;
}

void Worker::Halt() {
  stop_ = true;
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(wakeFd_, &one, sizeof(one)) < 0) {
      // eventfd writes only fail on counter overflow: the flag alone stops the loop at its next wake-up
    }
    thread_.join();
  }
}

void Worker::Stop() {
  Halt();
  if (udpFd_ >= 0) close(udpFd_);
  if (wakeFd_ >= 0) close(wakeFd_);
  udpFd_ = wakeFd_ = -1;
  raw_.Close();
}

void Worker::Run() {
  std::vector<uint8_t> tunBuf(kBatch * kSlot), udpBuf(kBatch * kSlot);
  pollfd fds[4] = {{tunFd_, POLLIN, 0}, {udpFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}, {raw_.fd(), POLLIN, 0}};
  while (!stop_) {
    if (poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) {  // close(), or another worker handed packets over
      uint64_t v;
      if (read(wakeFd_, &v, sizeof(v)) < 0) {
        // EAGAIN: another read took the count first; the inbox is looked at anyway
      }
      if (stop_) break;
      DrainInbox(tunBuf.data());
    }
    if (fds[0].revents & POLLIN) FromTun(tunBuf.data());
    if (fds[1].revents & POLLIN) FromUdp(udpBuf.data());
    if (fds[3].revents & POLLIN) FromRaw(udpBuf.data());
    // POLLERR/POLLHUP on TUN (device gone) would spin: stop instead
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;
  }
}

// Outbound: up to kBatch reads from TUN into the slots (a TSO super-packet fills several), then SealAndSend.
void Worker::FromTun(uint8_t* buf) {
  size_t lens[kBatch];
  unsigned used = 0;
  auto slot = [&](unsigned i) { return buf + i * kSlot + kHeadroom; };
  for (unsigned reads = 0; reads < kBatch; reads++) {
    if (!vnet_) {
      const ssize_t r = read(tunFd_, slot(used), kMaxPacket);
      if (r <= 0) break;  // EAGAIN: drained
      lens[used++] = static_cast<size_t>(r);
    } else {
      VnetHdr h;
      iovec v[2] = {{&h, sizeof(h)}, {stage_.data(), kMaxPacket}};
      const ssize_t r = readv(tunFd_, v, 2);
      if (r <= 0) break;
      if (static_cast<size_t>(r) < sizeof(h)) continue;
      const size_t len = static_cast<size_t>(r) - sizeof(h);
      if ((h.gsoType & static_cast<uint8_t>(~kGsoEcn)) == kGsoNone) {
        if ((h.flags & kVnetNeedsCsum) && !FinishChecksum(stage_.data(), len, h)) {
          Count(&Counters::malformed);
          continue;
        }
        std::memcpy(slot(used), stage_.data(), len);
        lens[used++] = len;
      } else {
        TsoPlan t;
        if (!PlanTso(stage_.data(), len, h, &t)) {
          Count(&Counters::malformed);
          continue;
        }
        Count(&Counters::tsoPackets);
        for (unsigned i = 0; i < t.segments; i++) {
          if (used == kBatch) {
            SealAndSend(buf, lens, used);
            used = 0;
          }
          lens[used] = CutSegment(stage_.data(), t, i, slot(used));
          used++;
        }
      }
    }
    if (used == kBatch) {
      SealAndSend(buf, lens, used);
      used = 0;
    }
  }
  if (used != 0) SealAndSend(buf, lens, used);
}

void Worker::Count(uint64_t Counters::*field) {
  std::lock_guard<std::mutex> lock(mu_);
  c_.*field += 1;
}

// Runs the batch call of each SA over its packets (owners[i]: the SA of packet i, nullptr for none), in packet
// order within an SA: the crypto of a burst runs together (the intel-ipsec-mb engine fills its lanes), the
// sequence numbers and the replay window see the packets in the order they came.
void Worker::ByEntry(SaEntry* const* owners, esp::PacketIo* io, size_t n, bool seal) {
  done_.assign(n, 0);
  group_.resize(n);
  groupIndex_.resize(n);
  for (size_t i = 0; i < n; i++) {
    if (owners[i] == nullptr || done_[i]) continue;
    size_t k = 0;
    for (size_t j = i; j < n; j++) {
      if (owners[j] != owners[i] || done_[j]) continue;
      done_[j] = 1;
      group_[k] = io[j];
      groupIndex_[k++] = j;
    }
    if (seal) esp::SealPackets(owners[i]->sa, group_.data(), k);
    else esp::OpenPackets(owners[i]->sa, group_.data(), k);
    for (size_t m = 0; m < k; m++) io[groupIndex_[m]] = group_[m];
  }
}

// Seals the IP packets at slot i + kHeadroom (lens[i] octets) in place, each with the first outbound SA whose
// selectors cover its addresses, and sends them.
// hops: for packets another worker handed over (hops[i] > 0), nullptr for this worker's own reads.
void Worker::SealAndSend(uint8_t* buf, const size_t* lens, unsigned count, const uint8_t* hops) {
  iovec iov[kBatch], rawIov[kBatch];
  sockaddr_storage to[kBatch], rawTo[kBatch];
  socklen_t toLen[kBatch], rawToLen[kBatch];
  SaEntry* owners[kBatch];
  esp::PacketIo io[kBatch];
  unsigned n = 0, rn = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (unsigned i = 0; i < count; i++) {
    owners[i] = nullptr;
    uint8_t* slot = buf + i * kSlot;
    const uint8_t* pkt = slot + kHeadroom;
    const size_t len = lens[i];
    const uint8_t hop = hops == nullptr ? 0 : hops[i];
    if (hop == 0) {  // counted once, by the worker that read it
      c_.tunPackets++;
      c_.tunBytes += len;
    }
    int family;
    const uint8_t *src, *dst;
    if (!IpAddrs(pkt, len, &family, &src, &dst)) {
      c_.malformed++;
      continue;
    }
    SaEntry* e = sas_.Outbound(family, src, dst);
    if (e == nullptr) {
      c_.noOutboundSa++;
      continue;
    }
    if (e->sa == nullptr) {  // another worker's SA: its sequence numbers have one writer, that worker
      HandOver(e->owner, Parcel::kTun, pkt, len, nullptr, hop);
      continue;
    }
    size_t skip = 0;  // transport mode: the IP header stays behind, its protocol is the next header
    uint8_t nh = family == AF_INET ? kNextIpv4 : kNextIpv6;
    if (e->transport && !transport::Payload(pkt, len, &skip, &nh)) {
      c_.malformed++;
      continue;
    }
    io[i] = {pkt + skip, len - skip, slot + kHeadroom + skip - 8 - e->ivLength, 0, nh, 0};
    owners[i] = e;
  }
  ByEntry(owners, io, count, true);
  for (unsigned i = 0; i < count; i++) {
    SaEntry* e = owners[i];
    if (e == nullptr) continue;
    if (io[i].status != esp::kOk) {
      if (io[i].status == esp::kSeqOverflow) c_.seqOverflow++;
      else c_.other++;
      continue;
    }
    e->packets++;
    e->bytes += lens[i];
    const unsigned k = e->plain ? rn++ : n++;
    (e->plain ? rawTo : to)[k] = e->peer;  // copied: the entry may be removed once the lock is released
    (e->plain ? rawToLen : toLen)[k] = e->peerLen;
    (e->plain ? rawIov : iov)[k] = {io[i].out, io[i].outLen};
  }
  lock.unlock();
  const unsigned sent = Send(iov, to, toLen, n) + raw_.Send(rawIov, rawTo, rawToLen, rn);
  lock.lock();
  c_.espSent += sent;
  c_.sendFailed += n + rn - sent;
  lock.unlock();
  FlushHandovers();
}

// Sends n datagrams; returns how many the kernel took. With UDP GSO (Linux 4.18+, UDP_SEGMENT), a run of
// datagrams to the same peer with the same length (the last may be shorter) goes down the stack as one
// large packet and is cut into datagrams at the end (the device, or the receiving socket): one route
// lookup and one trip through the IP layer per run instead of per packet. A bulk TCP flow through the
// tunnel is exactly such runs.
unsigned Worker::Send(iovec* iov, sockaddr_storage* to, socklen_t* toLen, unsigned n) {
  mmsghdr msgs[kBatch];
  unsigned segs[kBatch];  // datagrams in msgs[m]
  alignas(cmsghdr) char ctrl[kBatch][CMSG_SPACE(sizeof(uint16_t))];
  unsigned m = 0;
  for (unsigned i = 0; i < n;) {
    unsigned k = 1;
    const size_t seg = iov[i].iov_len;
    if (gso_) {
      // Stay under the 64 KiB IP datagram limit and the kernel's segment limit.
      while (i + k < n && k < kMaxGsoSegments && (k + 1) * seg <= kMaxGsoBytes && iov[i + k].iov_len <= seg &&
             iov[i + k - 1].iov_len == seg && toLen[i + k] == toLen[i] && std::memcmp(&to[i + k], &to[i], toLen[i]) == 0)
        k++;
    }
    msghdr& h = msgs[m].msg_hdr;
    h = {};
    h.msg_name = &to[i];
    h.msg_namelen = toLen[i];
    h.msg_iov = &iov[i];
    h.msg_iovlen = k;
    if (k > 1) {
      h.msg_control = ctrl[m];
      h.msg_controllen = sizeof(ctrl[m]);
      cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const uint16_t s = static_cast<uint16_t>(seg);
      std::memcpy(CMSG_DATA(c), &s, sizeof(s));
    }
    segs[m++] = k;
    i += k;
  }
  unsigned done = 0, sent = 0;
  while (done < m) {
    const int r = sendmmsg(udpFd_, msgs + done, m - done, 0);
    if (r > 0) {
      for (int j = 0; j < r; j++) sent += segs[done + j];
      done += static_cast<unsigned>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      // The error belongs to msgs[done]. EIO: the route cannot do GSO (no checksum offload, xfrm): stop
      // using it. The message is lost either way, as a dropped datagram would be.
      if (r < 0 && errno == EIO && segs[done] > 1) gso_ = false;
      done++;
    }
  }
  return sent;
}

// Inbound: up to kBatch datagrams (each possibly a GRO bundle of same-size datagrams), classified
// (RFC 3948 2.2/2.3), ESP opened in place, inner packets written to TUN.
void Worker::FromUdp(uint8_t* buf) {
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage from[kBatch];
  alignas(cmsghdr) char ctrl[kBatch][CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(int))];
  for (unsigned i = 0; i < kBatch; i++) {
    iov[i] = {buf + i * kSlot, kSlot};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = ctrl[i];
    msgs[i].msg_hdr.msg_controllen = sizeof(ctrl[i]);
  }
  const int r = recvmmsg(udpFd_, msgs, kBatch, MSG_DONTWAIT, nullptr);
  if (r <= 0) return;
  const unsigned n = static_cast<unsigned>(r);
  out_.clear();
  std::unique_lock<std::mutex> lock(mu_);
  for (unsigned i = 0; i < n; i++) {
    uint8_t* d = buf + i * kSlot;
    const size_t len = msgs[i].msg_len;
    if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
      c_.malformed++;
      continue;
    }
    size_t seg = len;  // GRO: the kernel joined datagrams of `seg` octets (the last may be shorter)
    for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        uint16_t s = 0;
        std::memcpy(&s, CMSG_DATA(c), sizeof(s));
        if (s != 0) seg = s;
      }
    }
    for (size_t off = 0; off < len; off += seg) Datagram(d + off, std::min(seg, len - off), from[i]);
  }
  WriteOut(lock);
  lock.unlock();
  FlushHandovers();
}

// Inbound plain ESP: up to kBatch packets from the raw socket, opened as ESP in UDP is.
void Worker::FromRaw(uint8_t* buf) {
  uint8_t* esp[kBatch];
  size_t len[kBatch];
  sockaddr_storage from[kBatch];
  const unsigned n = raw_.Receive(buf, kSlot, kBatch, esp, len, from);
  if (n == 0) return;
  out_.clear();
  std::unique_lock<std::mutex> lock(mu_);
  for (unsigned i = 0; i < n; i++) Esp(esp[i], len[i], from[i], false);
  WriteOut(lock);
  lock.unlock();
  FlushHandovers();
}

// The ESP packets of one receive batch opened, then the inner packets (out_) to TUN, mu_ released meanwhile.
void Worker::WriteOut(std::unique_lock<std::mutex>& lock) {
  OpenQueued();
  lock.unlock();
  unsigned joined = 0;
  const unsigned written = vnet_ ? WriteJoined(&joined) : WritePlain();
  lock.lock();
  c_.delivered += written;
  c_.tunWriteFailed += out_.size() - written;
  c_.groPackets += joined;
}

unsigned Worker::WritePlain() {
  unsigned written = 0;
  for (const iovec& v : out_)
    if (write(tunFd_, v.iov_base, v.iov_len) == static_cast<ssize_t>(v.iov_len)) written++;
  return written;
}

// With IFF_VNET_HDR: runs of segments of one TCP stream are joined into one write (dataplane_gso.h);
// anything else goes alone behind an empty virtio_net_hdr. Returns the inner packets written; *joined
// counts the writes that carried more than one.
unsigned Worker::WriteJoined(unsigned* joined) {
  unsigned written = 0;
  iovec w[kMaxGsoSegments + 1];
  for (size_t i = 0; i < out_.size();) {
    VnetHdr h{};
    w[0] = {&h, sizeof(h)};
    const size_t k = JoinRun(out_.data() + i, out_.size() - i, kMaxGsoSegments, &h, w + 1);
    size_t bytes = 0;
    for (size_t j = 0; j <= k; j++) bytes += w[j].iov_len;
    if (writev(tunFd_, w, static_cast<int>(k + 1)) == static_cast<ssize_t>(bytes)) {
      written += static_cast<unsigned>(k);
      if (k > 1) (*joined)++;
    }
    i += k;
  }
  return written;
}

// One datagram received on the NAT-T port (mu_ held). ESP that passes every check is queued in out_.
void Worker::Datagram(uint8_t* d, size_t len, const sockaddr_storage& from) {
  if (len == 1 && d[0] == 0xff) {
    c_.keepalives++;
    return;
  }
  if (len >= 4 && d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0) {
    c_.ikeReceived++;
    if (!onIke_(d + 4, len - 4, from)) c_.ikeQueueFull++;
    return;
  }
  Esp(d, len, from, true);
}

// One ESP packet, from the NAT-T port (udp) or the raw socket (mu_ held). What passes every check is queued
// in out_.
void Worker::Esp(uint8_t* d, size_t len, const sockaddr_storage& from, bool udp, uint8_t hop) {
  if (len < 8) {
    c_.malformed++;
    return;
  }
  // espReceived counts only what authenticated below: forged or replayed datagrams go to the drops
  const uint32_t spi = (static_cast<uint32_t>(d[0]) << 24) | (static_cast<uint32_t>(d[1]) << 16) |
                       (static_cast<uint32_t>(d[2]) << 8) | d[3];
  SaEntry* e = sas_.Inbound(spi);
  if (e == nullptr && peers_.size() > 1 && spi % peers_.size() != index_) {
    // Steered here anyway: a UDP GRO bundle joins datagrams of several SAs to one peer, and a socket sees
    // what arrived before its steering program was attached. The owner opens it.
    HandOver(spi % peers_.size(), udp ? Parcel::kUdp : Parcel::kRaw, d, len, &from, hop);
    return;
  }
  if (e == nullptr) {
    c_.unknownSpi++;
    return;
  }
  opens_.push_back({e, d, len, &from, udp});
}

// The ESP packets Esp() queued, opened in place with one batch call per SA, then checked one by one (mu_ held).
void Worker::OpenQueued() {
  const size_t n = opens_.size();
  if (n == 0) return;
  openIo_.resize(n);
  openOwners_.resize(n);
  for (size_t i = 0; i < n; i++) {
    const Opening& o = opens_[i];
    openIo_[i] = {o.d, o.len, o.d + 8 + o.e->ivLength, 0, 0, 0};
    openOwners_[i] = o.e;
  }
  ByEntry(openOwners_.data(), openIo_.data(), n, false);
  for (size_t i = 0; i < n; i++) Opened(opens_[i], openIo_[i]);
  opens_.clear();
}

// One packet after its batch call: counted, and what passes every check queued in out_ (mu_ held).
void Worker::Opened(const Opening& o, const esp::PacketIo& io) {
  SaEntry* e = o.e;
  uint8_t* d = o.d;
  const size_t len = o.len;
  uint8_t* inner = io.out;
  const size_t innerLen = io.outLen;
  const uint8_t nh = io.nextHeader;
  const uint8_t st = io.status;
  const sockaddr_storage& from = *o.from;
  const bool udp = o.udp;
  if (st != esp::kOk) {
    if (st == esp::kAuthFailed) c_.authFailed++, e->authFailed++;
    else if (st == esp::kReplayed) c_.replay++, e->replay++;
    else if (st == esp::kMalformed) c_.malformed++, e->malformed++;
    else c_.other++;
    return;
  }
  c_.espReceived++;
  if (nh == kNextNone) {
    c_.dummy++;
    return;
  }
  if (e->transport) {
    Transport(e, d, len, inner, innerLen, nh, from, udp);
    return;
  }
  // Tunnel mode: the inner packet must be IP of the family the next header names, from an address
  // of the SA's remote selectors to one of its local selectors (RFC 4301 5.2: the inbound policy check).
  int family;
  const uint8_t *src, *dst;
  if ((nh != kNextIpv4 && nh != kNextIpv6) || !IpAddrs(inner, innerLen, &family, &src, &dst) ||
      (family == AF_INET) != (nh == kNextIpv4)) {
    c_.malformed++;
    e->malformed++;
    return;
  }
  if (!AnyContains(e->remoteTs, family, src) || !AnyContains(e->localTs, family, dst)) {
    c_.selectorMismatch++;
    e->selectorMismatch++;
    return;
  }
  e->packets++;
  e->bytes += innerLen;
  out_.push_back({inner, innerLen});
}

// Transport mode (esp_transport.h): the payload becomes an IPv4 packet again, from the peer's address as this
// packet came from (the NAT's, behind one) to our address (the SA's local selector), its TCP / UDP checksum
// made anew after a NAT (udp: RFC 3948 3.1.2). The peer's address must be in the SA's remote selectors.
void Worker::Transport(SaEntry* e, uint8_t* d, size_t len, uint8_t* inner, size_t innerLen, uint8_t nh,
               const sockaddr_storage& from, bool udp) {
  const uint8_t* src = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(&from)->sin_addr);
  if (from.ss_family != AF_INET || e->localTs.empty() || e->localTs[0].family != AF_INET ||
      !AnyContains(e->remoteTs, AF_INET, src)) {
    c_.selectorMismatch++;
    e->selectorMismatch++;
    return;
  }
  const size_t tail = static_cast<size_t>(d + len - (inner + innerLen));
  uint8_t* ip = transport::Rebuild(inner, innerLen, static_cast<size_t>(inner - d), tail, nh, src, e->localTs[0].addr, udp);
  if (ip == nullptr) {
    c_.malformed++;
    e->malformed++;
    return;
  }
  e->packets++;
  e->bytes += innerLen;
  out_.push_back({ip, innerLen + transport::kIpv4Header});
}

}  // namespace dataplane
}  // namespace ike
