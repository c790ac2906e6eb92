// The data plane's sockets (dataplane_sockets.cc): the UDP socket on the NAT-T port of each worker.
#pragma once
#include <sys/socket.h>

#include <string>

namespace ike {
namespace dataplane {

// A blocking UDP socket bound to ss, with large buffers, UDP GRO asked for and *gso telling whether UDP GSO
// (UDP_SEGMENT) is usable. -1 with *err (a sentence naming the address) when the kernel refuses.
int OpenUdp(int family, const sockaddr_storage& ss, socklen_t sl, const std::string& where, bool* gso, std::string* err);

}  // namespace dataplane
}  // namespace ike
