// The data plane's sockets (dataplane_sockets.h).
#include "dataplane_sockets.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <cerrno>

#include "dataplane.h"

namespace ike {
namespace dataplane {

int OpenUdp(int family, const sockaddr_storage& ss, socklen_t sl, const std::string& where, bool* gso, std::string* err) {
  // Blocking socket: a full send buffer then slows the worker down (back pressure towards TUN) instead of
  // dropping; receives use MSG_DONTWAIT.
  const int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = "socket() failed: " + Errno(errno);
    return -1;
  }
  // Larger buffers absorb bursts of 64 packets from both sides; root may go above rmem_max/wmem_max.
  const int bufSize = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufSize, sizeof(bufSize)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufSize, sizeof(bufSize));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufSize, sizeof(bufSize)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufSize, sizeof(bufSize));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ss), sl) != 0) {
    const int e = errno;
    close(fd);
    *err = "cannot bind UDP " + where + ": " + Errno(e);
    if (e == EADDRINUSE) *err += " (another IKE daemon, or a gateway socket, already owns it: the data plane must own the NAT-T port)";
    if (e == EACCES) *err += " (ports below 1024 need root)";
    return -1;
  }
  // UDP GSO for sending runs of ESP datagrams, GRO for receiving them (see Worker::Send / FromUdp). A kernel
  // without them refuses the option: then every datagram travels alone.
  const int zero = 0, one = 1;
  *gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
  setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
  return fd;
}

}  // namespace dataplane
}  // namespace ike
