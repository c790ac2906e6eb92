// The data plane's SA table (native/dataplane.cc): traffic selectors as prefixes, one entry per installed SA,
// inbound SAs by SPI and outbound SAs by the flows their selectors cover. One table per worker
// (dataplane_worker.h); not locked itself: the worker's mutex guards it.
#pragma once
#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace ike {
namespace esp {
class EspSa;
}
namespace dataplane {

struct Prefix {
  int family = AF_INET;
  uint8_t addr[16] = {0};
  int bits = 0;
};

// "a.b.c.d/n", "x::y/n", or an address alone (a host prefix).
bool ParsePrefix(const std::string& s, Prefix* p);
bool Contains(const Prefix& p, int family, const uint8_t* a);
bool AnyContains(const std::vector<Prefix>& list, int family, const uint8_t* a);
// Source and destination of an IP packet; false unless it is a whole IPv4 / IPv6 header.
bool IpAddrs(const uint8_t* p, size_t len, int* family, const uint8_t** src, const uint8_t** dst);

struct SaEntry {
  uint32_t spi = 0;
  bool outbound = false;
  // The worker that owns the SA (seals or opens with it). An outbound SA is known to every worker's table,
  // so that each can tell which worker a TUN packet belongs to; only the owner's entry carries the SA
  // (sa != nullptr), the others are routes (sa == nullptr) to the owner.
  unsigned owner = 0;
  esp::EspSa* sa = nullptr;
  size_t ivLength = 0;
  Napi::ObjectReference handle;  // owner's entry: keeps the JS EspSa (and so the C++ object) alive while attached
  std::vector<Prefix> localTs, remoteTs;
  sockaddr_storage peer{};  // outbound: where the sealed packets go
  socklen_t peerLen = 0;
  bool plain = false;      // outbound: plain ESP on the raw socket (raw_esp.h), not ESP in UDP
  bool transport = false;  // transport mode (esp_transport.h): the host's own IPv4 packets
  uint64_t packets = 0, bytes = 0, authFailed = 0, replay = 0, selectorMismatch = 0, malformed = 0;
};

// Inbound SAs by SPI: one hash lookup per ESP datagram. Outbound SAs in the order they were added, the first
// whose selectors match a packet carrying it (a scan), with that answer (or "none") cached per (source,
// destination) pair, so a flow costs one hash lookup whatever the number of tunnels; any change to the
// outbound SAs empties the cache. Removing is O(n) in pointer comparisons (no entry is touched), adding O(1).
class SaTable {
 public:
  // False (and the entry stays with the caller) if an SA of its direction with its SPI is installed.
  bool Add(std::unique_ptr<SaEntry>& e);
  // Takes out the SAs with this SPI in the directions asked for.
  std::vector<std::unique_ptr<SaEntry>> Remove(uint32_t spi, bool inbound, bool outbound);
  std::vector<std::unique_ptr<SaEntry>> Clear();

  SaEntry* Inbound(uint32_t spi) const {
    auto it = inBySpi_.find(spi);
    return it == inBySpi_.end() ? nullptr : it->second;
  }
  SaEntry* OutboundBySpi(uint32_t spi) const {
    auto it = outBySpi_.find(spi);
    return it == outBySpi_.end() ? nullptr : it->second;
  }
  // The outbound SA (or route) for a packet from src to dst (4 or 16 bytes each, by family), or nullptr.
  SaEntry* Outbound(int family, const uint8_t* src, const uint8_t* dst);
  // In the order of addition.
  const std::vector<std::unique_ptr<SaEntry>>& All() const { return all_; }

 private:
  static constexpr size_t kMaxFlows = 65536;
  struct Flow {
    uint8_t family;
    uint8_t addrs[32];  // source, then destination, each zero-padded to 16 bytes
    bool operator==(const Flow& o) const { return family == o.family && std::memcmp(addrs, o.addrs, 32) == 0; }
  };
  // Keyed with a random seed: the addresses are chosen by whoever sends through the tunnel, and a fixed
  // hash would let them pile every flow into one bucket.
  struct FlowHash {
    uint64_t seed;
    size_t operator()(const Flow& f) const;
  };
  static uint64_t RandomSeed();
  std::vector<std::unique_ptr<SaEntry>> all_;
  std::vector<SaEntry*> outbound_;
  std::unordered_map<uint32_t, SaEntry*> inBySpi_, outBySpi_;
  std::unordered_map<Flow, SaEntry*, FlowHash> flows_{16, FlowHash{RandomSeed()}};
};

}  // namespace dataplane
}  // namespace ike
