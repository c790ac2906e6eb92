// Plain ESP (RFC 4303 over IP protocol 50, no UDP) for the tunnel data plane: a raw socket of protocol 50,
// read and written in batches (recvmmsg / sendmmsg) like the NAT-T socket. Used for the SAs negotiated
// without UDP encapsulation (no NAT between the peers, `encap` off). Needs CAP_NET_RAW; without it the data
// plane still runs, ESP in UDP only.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace ike {
namespace rawesp {

class RawEsp {
 public:
  RawEsp() = default;
  RawEsp(const RawEsp&) = delete;
  RawEsp& operator=(const RawEsp&) = delete;
  ~RawEsp() { Close(); }

  // A raw socket of `family` for protocol 50, bound to `local` (its port is ignored; a wildcard address takes
  // ESP to every local address). False with *err (why, in a sentence) if the kernel refuses.
  bool Open(int family, const sockaddr_storage& local, std::string* err);
  void Close();
  int fd() const { return fd_; }

  // Up to n packets without blocking, packet i into buf + i * slot: *esp[i] points at its ESP header (an IPv4
  // raw socket hands over the IP header too), len[i] is the ESP length, from[i] the sender. Returns the count.
  unsigned Receive(uint8_t* buf, size_t slot, unsigned n, uint8_t** esp, size_t* len, sockaddr_storage* from);

  // Sends iov[i] (one ESP packet each: the kernel writes the IP header) to to[i]. Returns how many the kernel took.
  unsigned Send(const iovec* iov, const sockaddr_storage* to, const socklen_t* toLen, unsigned n);

 private:
  int fd_ = -1;
  int family_ = AF_INET;
};

}  // namespace rawesp
}  // namespace ike
