// Plain ESP on a raw socket of IP protocol 50 (raw_esp.h).
#include "raw_esp.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ike {
namespace rawesp {
namespace {

constexpr unsigned kMaxBatch = 64;
constexpr int kProtoEsp = 50;  // IPPROTO_ESP

}  // namespace

bool RawEsp::Open(int family, const sockaddr_storage& local, std::string* err) {
  Close();
  const int fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, kProtoEsp);
  if (fd < 0) {
    *err = std::string("raw ESP socket: ") + std::strerror(errno) + (errno == EPERM ? " (needs CAP_NET_RAW)" : "");
    return false;
  }
  // A wildcard leaves the socket unbound: it then takes protocol 50 to any local address.
  sockaddr_storage a = local;
  bool wildcard;
  socklen_t len;
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a);
    v4->sin_port = 0;
    wildcard = v4->sin_addr.s_addr == htonl(INADDR_ANY);
    len = sizeof(sockaddr_in);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a);
    v6->sin6_port = 0;
    wildcard = IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
    len = sizeof(sockaddr_in6);
  }
  if (!wildcard && bind(fd, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
    *err = std::string("raw ESP socket: bind: ") + std::strerror(errno);
    close(fd);
    return false;
  }
  // As large as the NAT-T socket's: bursts of 64 packets both ways.
  const int size = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  fd_ = fd;
  family_ = family;
  return true;
}

void RawEsp::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

unsigned RawEsp::Receive(uint8_t* buf, size_t slot, unsigned n, uint8_t** esp, size_t* len, sockaddr_storage* from) {
  if (fd_ < 0) return 0;
  if (n > kMaxBatch) n = kMaxBatch;
  mmsghdr msgs[kMaxBatch];
  iovec iov[kMaxBatch];
  for (unsigned i = 0; i < n; i++) {
    iov[i] = {buf + i * slot, slot};
    msgs[i].msg_hdr = msghdr{};
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const int r = recvmmsg(fd_, msgs, n, MSG_DONTWAIT, nullptr);
  if (r <= 0) return 0;
  unsigned got = 0;
  for (int i = 0; i < r; i++) {
    uint8_t* p = buf + i * slot;
    size_t l = msgs[i].msg_len;
    if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
    if (family_ == AF_INET) {
      // IPv4 raw sockets deliver the IP header (its length in the low nibble, in 32-bit words)
      const size_t ihl = l >= 20 ? static_cast<size_t>(p[0] & 0x0f) * 4 : 0;
      if (ihl < 20 || ihl > l) continue;
      p += ihl;
      l -= ihl;
    }
    esp[got] = p;
    len[got] = l;
    if (got != static_cast<unsigned>(i)) from[got] = from[i];
    got++;
  }
  return got;
}

unsigned RawEsp::Send(const iovec* iov, const sockaddr_storage* to, const socklen_t* toLen, unsigned n) {
  if (fd_ < 0) return 0;
  unsigned done = 0, sent = 0;
  mmsghdr msgs[kMaxBatch];
  sockaddr_storage dst[kMaxBatch];
  iovec v[kMaxBatch];
  while (done < n) {
    const unsigned k = n - done < kMaxBatch ? n - done : kMaxBatch;
    for (unsigned i = 0; i < k; i++) {
      // A raw socket's port field is the protocol for IPv6 (0: the socket's own): the peer's UDP port goes.
      dst[i] = to[done + i];
      if (dst[i].ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&dst[i])->sin_port = 0;
      else reinterpret_cast<sockaddr_in6*>(&dst[i])->sin6_port = 0;
      v[i] = iov[done + i];
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &dst[i];
      msgs[i].msg_hdr.msg_namelen = toLen[done + i];
      msgs[i].msg_hdr.msg_iov = &v[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int r = sendmmsg(fd_, msgs, k, 0);
    if (r > 0) {
      sent += static_cast<unsigned>(r);
      done += static_cast<unsigned>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      done++;  // the error is the first packet's (no route...): it is lost, as a dropped packet would be
    }
  }
  return sent;
}

}  // namespace rawesp
}  // namespace ike
