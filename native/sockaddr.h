// Socket addresses from text and back, for the sockets of the addon (udp.cc, dataplane.cc).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace ike {

// An IP literal of the socket's family, with the port. An IPv6 socket also takes IPv4 literals, as IPv4-mapped
// addresses (::ffff:a.b.c.d: the sockets leave IPV6_V6ONLY off), and "%scope" (an interface name or index)
// after an IPv6 address. False if the text is none of these.
bool ParseEndpoint(int family, const std::string& s, int port, sockaddr_storage* ss, socklen_t* len);

// The address as text (a scope as its index: "fe80::1%2", which ParseEndpoint takes back) and the port.
std::string EndpointAddress(const sockaddr_storage& ss, int* port);

}  // namespace ike
