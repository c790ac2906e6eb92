// Shared by the parts of the tunnel data plane (dataplane.cc: the N-API class; dataplane_worker.cc: the packet
// loop; dataplane_sockets.cc: the sockets; tun.cc: the TUN device): buffer sizes and counters.
#pragma once
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace ike {
namespace dataplane {

constexpr unsigned kBatch = 64;
// One slot holds any IP packet (the TUN MTU is the user's choice) plus the ESP header, IV, padding and ICV.
constexpr size_t kHeadroom = 64;  // >= 8 (SPI, seq) + 16 (largest IV): sealing happens in place
constexpr size_t kTailroom = 64;  // >= 15 (CBC padding) + 2 (pad length, next header) + 32 (largest ICV)
constexpr size_t kMaxPacket = 65535;
constexpr size_t kSlot = kHeadroom + kMaxPacket + kTailroom;
// UDP GSO limits: the whole run is one IP datagram (64 KiB), and the kernel cuts at most UDP_MAX_SEGMENTS (64).
constexpr unsigned kMaxGsoSegments = 64;
constexpr size_t kMaxGsoBytes = 65535 - 40 - 8;  // minus IPv6 / UDP headers
constexpr uint8_t kNextIpv4 = 4, kNextIpv6 = 41, kNextNone = 59;  // RFC 4303 2.6: 59 marks a dummy packet

inline std::string Errno(int e) { return std::strerror(e); }

struct Counters {
  uint64_t tunPackets = 0, tunBytes = 0;    // read from TUN (outbound), TSO segments counted one by one
  uint64_t tsoPackets = 0;                  // TSO super-packets read (offload) and cut into segments
  uint64_t groPackets = 0;                  // joined TCP segments written as one (offload)
  uint64_t espSent = 0;                     // ESP datagrams sent on the socket
  uint64_t espReceived = 0;                 // ESP datagrams received that authenticated (drops below by reason)
  uint64_t delivered = 0;                   // written to TUN (inbound)
  uint64_t ikeReceived = 0, ikeSent = 0, keepalives = 0;
  // drops by reason
  uint64_t noOutboundSa = 0, unknownSpi = 0, authFailed = 0, replay = 0, selectorMismatch = 0, malformed = 0,
           seqOverflow = 0, sendFailed = 0, tunWriteFailed = 0, ikeQueueFull = 0, dummy = 0, other = 0;
  // several workers (dataplane_handover.cc)
  uint64_t handedOver = 0;       // packets given to the worker that owns their SA
  uint64_t handoverDropped = 0;  // that worker's inbox was full, or the packet had been handed over too often

  // Field by field (the workers' totals for stats()), through copies as arrays: no list of fields to keep in step.
  void Add(const Counters& o) {
    constexpr size_t n = sizeof(Counters) / sizeof(uint64_t);
    uint64_t a[n], b[n];
    std::memcpy(a, this, sizeof(a));
    std::memcpy(b, &o, sizeof(b));
    for (size_t i = 0; i < n; i++) a[i] += b[i];
    std::memcpy(this, a, sizeof(a));
  }
};
static_assert(sizeof(Counters) % sizeof(uint64_t) == 0 && std::is_trivially_copyable<Counters>::value,
              "Counters holds uint64_t fields only (Add sums them as an array)");

}  // namespace dataplane
}  // namespace ike
