// Socket addresses from text and back (sockaddr.h). Its own file: <net/if.h> (if_nametoindex) and the
// <linux/if.h> the data plane needs cannot share a translation unit.
#include "sockaddr.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ike {

bool ParseEndpoint(int family, const std::string& s, int port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(static_cast<uint16_t>(port));
  *len = sizeof(sockaddr_in6);
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&v6->sin6_addr.s6_addr[12], &v4, 4);
    return true;
  }
  const size_t pct = s.find('%');
  if (inet_pton(AF_INET6, s.substr(0, pct).c_str(), &v6->sin6_addr) != 1) return false;
  if (pct == std::string::npos) return true;
  const std::string scope = s.substr(pct + 1);
  if (scope.empty() || scope.size() >= IF_NAMESIZE) return false;
  if (scope.find_first_not_of("0123456789") == std::string::npos) {
    v6->sin6_scope_id = static_cast<uint32_t>(std::strtoul(scope.c_str(), nullptr, 10));
  } else {
    v6->sin6_scope_id = if_nametoindex(scope.c_str());
  }
  return v6->sin6_scope_id != 0;
}

std::string EndpointAddress(const sockaddr_storage& ss, int* port) {
  char buf[INET6_ADDRSTRLEN + 12] = {0};
  if (ss.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, INET6_ADDRSTRLEN);
    if (v6->sin6_scope_id != 0) std::snprintf(buf + std::strlen(buf), 12, "%%%u", v6->sin6_scope_id);
    *port = ntohs(v6->sin6_port);
  } else {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, buf, INET_ADDRSTRLEN);
    *port = ntohs(v4->sin_port);
  }
  return buf;
}

}  // namespace ike
