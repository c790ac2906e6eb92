// The data plane's SA table and traffic selectors (sa_table.h).
#include "sa_table.h"

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <algorithm>

namespace ike {
namespace dataplane {

bool ParsePrefix(const std::string& s, Prefix* p) {
  const size_t slash = s.find('/');
  const std::string a = s.substr(0, slash);
  if (inet_pton(AF_INET, a.c_str(), p->addr) == 1) p->family = AF_INET;
  else if (inet_pton(AF_INET6, a.c_str(), p->addr) == 1) p->family = AF_INET6;
  else return false;
  const int max = p->family == AF_INET ? 32 : 128;
  if (slash == std::string::npos) {
    p->bits = max;
    return true;
  }
  const std::string n = s.substr(slash + 1);
  if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos) return false;
  p->bits = std::stoi(n);
  return p->bits <= max;
}

bool Contains(const Prefix& p, int family, const uint8_t* a) {
  if (p.family != family) return false;
  const int full = p.bits / 8, rest = p.bits % 8;
  if (std::memcmp(p.addr, a, full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (p.addr[full] & mask) == (a[full] & mask);
}

bool AnyContains(const std::vector<Prefix>& list, int family, const uint8_t* a) {
  for (const Prefix& p : list)
    if (Contains(p, family, a)) return true;
  return false;
}

bool IpAddrs(const uint8_t* p, size_t len, int* family, const uint8_t** src, const uint8_t** dst) {
  if (len >= 20 && (p[0] >> 4) == 4) {
    *family = AF_INET;
    *src = p + 12;
    *dst = p + 16;
    return true;
  }
  if (len >= 40 && (p[0] >> 4) == 6) {
    *family = AF_INET6;
    *src = p + 8;
    *dst = p + 24;
    return true;
  }
  return false;
}

bool SaTable::Add(std::unique_ptr<SaEntry>& e) {
  auto& bySpi = e->outbound ? outBySpi_ : inBySpi_;
  if (!bySpi.emplace(e->spi, e.get()).second) return false;
  if (e->outbound) {
    outbound_.push_back(e.get());
    flows_.clear();
  }
  all_.push_back(std::move(e));
  return true;
}

std::vector<std::unique_ptr<SaEntry>> SaTable::Remove(uint32_t spi, bool inbound, bool outbound) {
  std::vector<std::unique_ptr<SaEntry>> out;
  auto take = [&](std::unordered_map<uint32_t, SaEntry*>& bySpi) {
    auto it = bySpi.find(spi);
    if (it == bySpi.end()) return;
    SaEntry* e = it->second;
    bySpi.erase(it);
    if (e->outbound) {
      outbound_.erase(std::find(outbound_.begin(), outbound_.end(), e));
      flows_.clear();
    }
    auto owner = std::find_if(all_.begin(), all_.end(), [e](const std::unique_ptr<SaEntry>& x) { return x.get() == e; });
    out.push_back(std::move(*owner));
    all_.erase(owner);
  };
  if (outbound) take(outBySpi_);
  if (inbound) take(inBySpi_);
  return out;
}

std::vector<std::unique_ptr<SaEntry>> SaTable::Clear() {
  inBySpi_.clear();
  outBySpi_.clear();
  outbound_.clear();
  flows_.clear();
  return std::move(all_);
}

SaEntry* SaTable::Outbound(int family, const uint8_t* src, const uint8_t* dst) {
  Flow f{};
  const size_t n = family == AF_INET ? 4 : 16;
  f.family = static_cast<uint8_t>(family);
  std::memcpy(f.addrs, src, n);
  std::memcpy(f.addrs + 16, dst, n);
  auto it = flows_.find(f);
  if (it != flows_.end()) return it->second;
  SaEntry* found = nullptr;
  for (SaEntry* x : outbound_) {
    if (AnyContains(x->remoteTs, family, dst) && AnyContains(x->localTs, family, src)) {
      found = x;
      break;
    }
  }
  // Bounded: addresses come from the protected side's packets, which could be anything.
  if (flows_.size() >= kMaxFlows) flows_.clear();
  flows_.emplace(f, found);
  return found;
}

size_t SaTable::FlowHash::operator()(const Flow& f) const {
  uint64_t h = seed ^ f.family;
  for (int i = 0; i < 4; i++) {
    uint64_t w;
    std::memcpy(&w, f.addrs + 8 * i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
  }
  return static_cast<size_t>(h);
}

uint64_t SaTable::RandomSeed() {
  uint64_t seed = 0x9e3779b97f4a7c15ULL;  // only if the RNG fails, which the ESP SAs would notice first
  RAND_bytes(reinterpret_cast<uint8_t*>(&seed), sizeof(seed));
  return seed;
}

}  // namespace dataplane
}  // namespace ike
