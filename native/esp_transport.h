// ESP transport mode (RFC 4303 3.1.1) for the tunnel data plane: the host's own IPv4 packets, read from the
// TUN device, lose their IP header and travel as ESP payload with the IP protocol as next header; on receipt
// the payload gets an IPv4 header again (from the peer's address to ours) before it goes back into TUN.
// Behind a NAT (ESP in UDP, RFC 3948 3.1.2) the TCP / UDP checksum the sender computed covers addresses the
// NAT rewrote: it is computed again over the addresses of the rebuilt header (the ESP ICV already vouches for
// the data). IPv4 only: an IPv6 payload would need its extension headers placed around ESP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane_gso.h"  // SumBytes, StoreChecksum, Be16, PutBe16

namespace ike {
namespace transport {

using dataplane::Be16;
using dataplane::PutBe16;
using dataplane::StoreChecksum;
using dataplane::SumBytes;

constexpr size_t kIpv4Header = 20;
constexpr uint8_t kTcp = 6, kUdp = 17;

// Outbound: the IP payload of an IPv4 packet read from TUN (*skip: the header length) and its protocol. False
// for anything else, and for fragments (transport mode carries whole transport-layer packets).
inline bool Payload(const uint8_t* pkt, size_t len, size_t* skip, uint8_t* protocol) {
  if (len < kIpv4Header || (pkt[0] >> 4) != 4) return false;
  const size_t ihl = static_cast<size_t>(pkt[0] & 0x0f) * 4;
  const size_t total = Be16(pkt + 2);
  if (ihl < kIpv4Header || total < ihl || total > len || (Be16(pkt + 6) & 0x3fff) != 0) return false;
  *skip = ihl;
  *protocol = pkt[9];
  return true;
}

// The TCP or UDP checksum of an IPv4 packet computed anew (a UDP checksum of 0, "none", stays 0).
inline void FixChecksum(uint8_t* ip, size_t len) {
  const uint8_t proto = ip[9];
  const size_t l4 = len - kIpv4Header;
  size_t at;
  if (proto == kTcp && l4 >= 20) at = 16;
  else if (proto == kUdp && l4 >= 8 && (ip[kIpv4Header + 6] | ip[kIpv4Header + 7]) != 0) at = 6;
  else return;
  uint8_t* seg = ip + kIpv4Header;
  seg[at] = seg[at + 1] = 0;
  uint8_t pseudo[4];
  PutBe16(pseudo, proto);
  PutBe16(pseudo + 2, static_cast<uint32_t>(l4));
  uint64_t sum = SumBytes(ip + 12, 8, 0);  // source and destination address
  sum = SumBytes(pseudo, 4, sum);
  sum = SumBytes(seg, l4, sum);
  StoreChecksum(seg + at, sum);
  if (proto == kUdp && seg[6] == 0 && seg[7] == 0) seg[6] = seg[7] = 0xff;  // RFC 768: a computed 0 is sent as all ones
}

// Inbound: *payload (len octets of `protocol`, opened in place) becomes an IPv4 packet from `src` to `dst`
// (4 octets each). The header goes in the `room` octets in front of the payload; with fewer than 20 there,
// the payload moves back into the ESP trailer it was decrypted from (`tail` octets after it, free now).
// Returns the packet (its length len + 20), or nullptr when neither fits.
inline uint8_t* Rebuild(uint8_t* payload, size_t len, size_t room, size_t tail, uint8_t protocol, const uint8_t* src,
                        const uint8_t* dst, bool fixChecksum) {
  if (len + kIpv4Header > 0xffff) return nullptr;
  if (room < kIpv4Header) {
    const size_t shift = kIpv4Header - room;
    if (shift > tail) return nullptr;
    std::memmove(payload + shift, payload, len);
    payload += shift;
  }
  uint8_t* ip = payload - kIpv4Header;
  std::memset(ip, 0, kIpv4Header);
  ip[0] = 0x45;
  PutBe16(ip + 2, static_cast<uint32_t>(len + kIpv4Header));
  PutBe16(ip + 6, 0x4000);  // DF: the sender's packet was whole
  ip[8] = 64;
  ip[9] = protocol;
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  StoreChecksum(ip + 10, SumBytes(ip, kIpv4Header, 0));
  if (fixChecksum) FixChecksum(ip, len + kIpv4Header);
  return ip;
}

}  // namespace transport
}  // namespace ike
