// The data plane's sockets (dataplane_sockets.cc): the UDP socket on the NAT-T port of each worker.
#pragma once
#include <sys/socket.h>

#include <string>

namespace ike {
namespace dataplane {

// A blocking UDP socket bound to ss, with large buffers, UDP GRO asked for and *gso telling whether UDP GSO
// (UDP_SEGMENT) is usable. reusePort: SO_REUSEPORT before the bind, so that the sockets of several workers
// share the port. -1 with *err (a sentence naming the address) when the kernel refuses.
int OpenUdp(int family, const sockaddr_storage& ss, socklen_t sl, const std::string& where, bool reusePort, bool* gso,
            std::string* err);

// Steering for n workers (n > 1), so that every ESP packet of an SA reaches the worker that owns it (the SA's
// SPI % n), whose replay window and counters then have one writer.
// UDP: a classic BPF program for the reuseport group of fd (SO_ATTACH_REUSEPORT_CBPF) that returns
// SPI % n, the SPI being the first 4 octets of the payload: the index of the socket in bind order. IKE (the
// non-ESP marker 0) and NAT keepalives and runts (too short to load: the program ends with 0) go to worker 0.
bool SteerUdp(int fd, unsigned n, std::string* err);
// Plain ESP: every raw socket sees every packet, so worker i's takes only SPI % n == i (SO_ATTACH_FILTER), and
// worker 0's also what is too short for an SPI. An IPv4 raw socket sees the IP header first, an IPv6 one the
// ESP header.
bool SteerRaw(int fd, int family, unsigned n, unsigned i, std::string* err);

}  // namespace dataplane
}  // namespace ike
