// The data plane's sockets (dataplane_sockets.h).
#include "dataplane_sockets.h"

#include <netinet/in.h>
#include <linux/filter.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <cerrno>

#include "dataplane.h"

namespace ike {
namespace dataplane {

int OpenUdp(int family, const sockaddr_storage& ss, socklen_t sl, const std::string& where, bool reusePort, bool* gso,
            std::string* err) {
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
  const int one = 1;
  if (reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    *err = "SO_REUSEPORT on the NAT-T socket failed: " + Errno(errno) + " (several workers need it)";
    close(fd);
    return -1;
  }
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
  const int zero = 0;
  *gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
  setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
  return fd;
}

bool SteerUdp(int fd, unsigned n, std::string* err) {
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),  // A = the payload's first 4 octets (network order, as the SPI)
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),  // A = SPI % n
      BPF_STMT(BPF_RET | BPF_A, 0),            // the socket at that index of the group
  };
  sock_fprog prog = {static_cast<unsigned short>(sizeof(code) / sizeof(code[0])), code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) != 0) {
    *err = "cannot steer the NAT-T port's datagrams to the workers (SO_ATTACH_REUSEPORT_CBPF): " + Errno(errno) +
           ". Linux 4.5 or later is needed for more than one worker";
    return false;
  }
  return true;
}

bool SteerRaw(int fd, int family, unsigned n, unsigned i, std::string* err) {
  // A load past the packet's end would end the program with 0 (dropped by every worker): a packet too short
  // to hold an SPI goes to worker 0 instead, which counts it as malformed, as one worker would.
  const uint32_t mine = 0xffffffff, shortOnes = i == 0 ? mine : 0;
  // IPv4: X = the IP header's length, the SPI the 4 octets at X. IPv6: the SPI is the first 4 octets.
  sock_filter v4[] = {
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),         // X = 4 * (IHL)
      BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),          // A = the packet's length
      BPF_STMT(BPF_ALU | BPF_SUB | BPF_X, 0),         // A -= X: the ESP part
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 4, 1, 0),   // an SPI's worth?
      BPF_STMT(BPF_RET | BPF_K, shortOnes),
      BPF_STMT(BPF_LD | BPF_W | BPF_IND, 0),          // A = the SPI
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, i, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, mine),                // this worker's: the whole packet
      BPF_STMT(BPF_RET | BPF_K, 0),                   // another worker's: dropped for this socket only
  };
  sock_filter v6[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 4, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, shortOnes),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, i, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, mine),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  sock_fprog prog = family == AF_INET ? sock_fprog{sizeof(v4) / sizeof(v4[0]), v4} : sock_fprog{sizeof(v6) / sizeof(v6[0]), v6};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) {
    *err = "cannot steer plain ESP to the workers (SO_ATTACH_FILTER): " + Errno(errno);
    return false;
  }
  return true;
}

}  // namespace dataplane
}  // namespace ike
