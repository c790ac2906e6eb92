// Tunnel data plane: a TUN device and a UDP socket on the NAT-T port, joined by one native worker thread
// that seals and opens ESP in UDP (RFC 4303, RFC 3948) without JavaScript on the per-packet path.
//
//   TUN --read x64--> selector lookup (outbound SAs) --seal--> sendmmsg to the SA's peer
//   UDP --recvmmsg x64--> 0xff: keepalive, dropped | 0x00000000: IKE, handed to JS | SPI: open, check the
//                         inner addresses against the SA's selectors, write to TUN
//
// Threads: JavaScript (the control plane) adds and removes SAs, reads counters and sends IKE; the worker
// owns the packet path. The SA table and every counter are guarded by one mutex, which the worker takes
// once per batch (not per packet) and never across a blocking system call. The SAs themselves are not
// locked: an attached EspSa belongs to the worker (see esp_sa.h), its JS methods throw until removed.
//
// Port 4500 belongs to the data plane: datagrams with the non-ESP marker (IKE) go up to a JS callback
// (threadsafe function), and sendIke() writes IKE messages out with the marker in front.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <openssl/rand.h>

#include "addon.h"
#include "common.h"
#include "dataplane_gso.h"
#include "esp_sa.h"
#include "esp_transport.h"
#include "raw_esp.h"
#include "sockaddr.h"

namespace ike {
namespace dataplane {
namespace {

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

std::string Errno(int e) { return std::strerror(e); }

// ---------- selectors ----------

struct Prefix {
  int family = AF_INET;
  uint8_t addr[16] = {0};
  int bits = 0;
};

// "a.b.c.d/n", "x::y/n", or an address alone (a host prefix).
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

// Source and destination of an IP packet; false unless it is a whole IPv4 / IPv6 header.
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

bool GetPrefixes(const Napi::CallbackInfo& info, size_t i, const char* name, std::vector<Prefix>* out) {
  if (info.Length() <= i || !info[i].IsArray()) return ThrowType(info.Env(), std::string(name) + " must be an array of CIDR strings");
  Napi::Array a = info[i].As<Napi::Array>();
  if (a.Length() == 0 || a.Length() > 64) return ThrowRange(info.Env(), std::string(name) + " must hold 1 to 64 prefixes");
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    Prefix p;
    if (!v.IsString() || !ParsePrefix(v.As<Napi::String>().Utf8Value(), &p))
      return ThrowRange(info.Env(), std::string(name) + "[" + std::to_string(k) + "] is not an address or CIDR prefix");
    out->push_back(p);
  }
  return true;
}

// ---------- the data plane ----------

struct SaEntry {
  uint32_t spi = 0;
  bool outbound = false;
  esp::EspSa* sa = nullptr;
  size_t ivLength = 0;
  Napi::ObjectReference handle;  // keeps the JS EspSa (and so the C++ object) alive while attached
  std::vector<Prefix> localTs, remoteTs;
  sockaddr_storage peer{};  // outbound: where the sealed packets go
  socklen_t peerLen = 0;
  bool plain = false;      // outbound: plain ESP on the raw socket (raw_esp.h), not ESP in UDP
  bool transport = false;  // transport mode (esp_transport.h): the host's own IPv4 packets
  uint64_t packets = 0, bytes = 0, authFailed = 0, replay = 0, selectorMismatch = 0, malformed = 0;
};

// The SA table. Inbound SAs by SPI: one hash lookup per ESP datagram. Outbound SAs in the order they were
// added, the first whose selectors match a packet carrying it (a scan), with that answer (or "none") cached
// per (source, destination) pair, so a flow costs one hash lookup whatever the number of tunnels; any
// change to the outbound SAs empties the cache. Removing is O(n) in pointer comparisons (no entry is
// touched), adding O(1). Not locked itself: the DataPlane's mutex guards it.
class SaTable {
 public:
  // False (and the entry stays with the caller) if an SA of its direction with its SPI is installed.
  bool Add(std::unique_ptr<SaEntry>& e) {
    auto& bySpi = e->outbound ? outBySpi_ : inBySpi_;
    if (!bySpi.emplace(e->spi, e.get()).second) return false;
    if (e->outbound) {
      outbound_.push_back(e.get());
      flows_.clear();
    }
    all_.push_back(std::move(e));
    return true;
  }

  // Takes out the SAs with this SPI in the directions asked for.
  std::vector<std::unique_ptr<SaEntry>> Remove(uint32_t spi, bool inbound, bool outbound) {
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

  std::vector<std::unique_ptr<SaEntry>> Clear() {
    inBySpi_.clear();
    outBySpi_.clear();
    outbound_.clear();
    flows_.clear();
    return std::move(all_);
  }

  SaEntry* Inbound(uint32_t spi) const {
    auto it = inBySpi_.find(spi);
    return it == inBySpi_.end() ? nullptr : it->second;
  }
  SaEntry* OutboundBySpi(uint32_t spi) const {
    auto it = outBySpi_.find(spi);
    return it == outBySpi_.end() ? nullptr : it->second;
  }

  // The outbound SA for a packet from src to dst (4 or 16 bytes each, by family), or nullptr.
  SaEntry* Outbound(int family, const uint8_t* src, const uint8_t* dst) {
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
    size_t operator()(const Flow& f) const {
      uint64_t h = seed ^ f.family;
      for (int i = 0; i < 4; i++) {
        uint64_t w;
        std::memcpy(&w, f.addrs + 8 * i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
      }
      return static_cast<size_t>(h);
    }
  };
  static uint64_t RandomSeed() {
    uint64_t seed = 0x9e3779b97f4a7c15ULL;  // only if the RNG fails, which the ESP SAs would notice first
    RAND_bytes(reinterpret_cast<uint8_t*>(&seed), sizeof(seed));
    return seed;
  }
  std::vector<std::unique_ptr<SaEntry>> all_;
  std::vector<SaEntry*> outbound_;
  std::unordered_map<uint32_t, SaEntry*> inBySpi_, outBySpi_;
  std::unordered_map<Flow, SaEntry*, FlowHash> flows_{16, FlowHash{RandomSeed()}};
};

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
};

struct IkeDatagram {
  std::vector<uint8_t> data;
  sockaddr_storage from;
};

class DataPlane : public Napi::ObjectWrap<DataPlane> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DataPlane",
                       {
                           InstanceMethod<&DataPlane::AddOutbound>("addOutbound"),
                           InstanceMethod<&DataPlane::AddInbound>("addInbound"),
                           InstanceMethod<&DataPlane::Remove>("remove"),
                           InstanceMethod<&DataPlane::SetPeer>("setPeer"),
                           InstanceMethod<&DataPlane::Stats>("stats"),
                           InstanceMethod<&DataPlane::SendIke>("sendIke"),
                           InstanceMethod<&DataPlane::SendKeepalive>("sendKeepalive"),
                           InstanceMethod<&DataPlane::Port>("port"),
                           InstanceMethod<&DataPlane::Close>("close"),
                           InstanceMethod<&DataPlane::Ref>("ref"),
                           InstanceMethod<&DataPlane::Unref>("unref"),
                           InstanceMethod<&DataPlane::PlainEspError>("plainEspError"),
                       });
  }

  // new DataPlane(tunFd, bindAddress, port, onIke(message: Buffer, address: string, port: number))
  explicit DataPlane(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataPlane>(info) {
    Napi::Env env = info.Env();
    int64_t tunFd = 0, port = 0;
    if (!GetInt(info, 0, "tunFd", 0, 0x7fffffff, &tunFd)) return;
    if (info.Length() <= 1 || !info[1].IsString()) {
      ThrowType(env, "bindAddress must be a string");
      return;
    }
    const std::string bindAddress = info[1].As<Napi::String>().Utf8Value();
    if (!GetInt(info, 2, "port", 0, 65535, &port)) return;
    if (info.Length() <= 3 || !info[3].IsFunction()) {
      ThrowType(env, "onIke must be a function");
      return;
    }
    // The worker reads until EAGAIN: the TUN fd must not block.
    const int fl = fcntl(static_cast<int>(tunFd), F_GETFL);
    if (fl < 0 || fcntl(static_cast<int>(tunFd), F_SETFL, fl | O_NONBLOCK) < 0) {
      ThrowType(env, "tunFd is not an open file descriptor (" + Errno(errno) + ")");
      return;
    }
    tunFd_ = static_cast<int>(tunFd);
    ifreq ifr;
    std::memset(&ifr, 0, sizeof(ifr));
    vnet_ = ioctl(tunFd_, TUNGETIFF, &ifr) == 0 && (ifr.ifr_flags & IFF_VNET_HDR) != 0;
    family_ = bindAddress.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    sockaddr_storage ss;
    socklen_t sl;
    if (!ParseEndpoint(family_, bindAddress, port, &ss, &sl)) {
      ThrowRange(env, "bindAddress '" + bindAddress + "' is not an IPv4 or IPv6 address");
      return;
    }
    // Blocking socket: a full send buffer then slows the worker down (back pressure towards TUN) instead of
    // dropping; receives use MSG_DONTWAIT.
    udpFd_ = socket(family_, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (udpFd_ < 0) {
      Napi::Error::New(env, "socket() failed: " + Errno(errno)).ThrowAsJavaScriptException();
      return;
    }
    // Larger buffers absorb bursts of 64 packets from both sides; root may go above rmem_max/wmem_max.
    const int bufSize = 4 << 20;
    if (setsockopt(udpFd_, SOL_SOCKET, SO_RCVBUFFORCE, &bufSize, sizeof(bufSize)) != 0)
      setsockopt(udpFd_, SOL_SOCKET, SO_RCVBUF, &bufSize, sizeof(bufSize));
    if (setsockopt(udpFd_, SOL_SOCKET, SO_SNDBUFFORCE, &bufSize, sizeof(bufSize)) != 0)
      setsockopt(udpFd_, SOL_SOCKET, SO_SNDBUF, &bufSize, sizeof(bufSize));
    if (bind(udpFd_, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
      const int e = errno;
      CloseFds();
      std::string msg = "cannot bind UDP " + bindAddress + ":" + std::to_string(port) + ": " + Errno(e);
      if (e == EADDRINUSE) msg += " (another IKE daemon, or a gateway socket, already owns it: the data plane must own the NAT-T port)";
      if (e == EACCES) msg += " (ports below 1024 need root)";
      Napi::Error::New(env, msg).ThrowAsJavaScriptException();
      return;
    }
    // UDP GSO for sending runs of ESP datagrams, GRO for receiving them (see Send / FromUdp). A kernel
    // without them refuses the option: then every datagram travels alone.
    const int zero = 0, one = 1;
    gso_ = setsockopt(udpFd_, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
    setsockopt(udpFd_, SOL_UDP, UDP_GRO, &one, sizeof(one));
    rawOk_ = raw_.Open(family_, ss, &rawError_);
    wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakeFd_ < 0) {
      CloseFds();
      Napi::Error::New(env, "eventfd() failed: " + Errno(errno)).ThrowAsJavaScriptException();
      return;
    }
    onIke_ = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "dataplane-ike", 1024, 1);
    running_ = true;
    worker_ = std::thread([this] { Run(); });
    // Environment teardown (process exit, worker_threads terminate) without close(): stop the worker while
    // the threadsafe function still exists (hooks run in reverse order: ours before the function's own).
    env_ = env;
    hooked_ = napi_add_env_cleanup_hook(env, Teardown, this) == napi_ok;
  }

  ~DataPlane() override {
    if (hooked_) napi_remove_env_cleanup_hook(env_, Teardown, this);
    // Finalized without close(): stop the thread and free the fds. The SAs stay attached (their JS
    // objects may already be gone at environment teardown, so they are not touched here).
    StopWorker();
    for (auto& e : sas_.All()) e->handle.Reset();
  }

 private:
  // ---------- JS thread ----------

  bool CheckOpen(Napi::Env env) {
    if (!running_) Napi::Error::New(env, "this DataPlane is closed").ThrowAsJavaScriptException();
    return running_;
  }

  // addOutbound(sa: EspSa handle, localTs: string[], remoteTs: string[], peerAddress, peerPort)
  Napi::Value AddOutbound(const Napi::CallbackInfo& info) { return Add(info, true); }
  // addInbound(sa: EspSa handle, localTs: string[], remoteTs: string[])
  Napi::Value AddInbound(const Napi::CallbackInfo& info) { return Add(info, false); }

  Napi::Value Add(const Napi::CallbackInfo& info, bool outbound) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    auto e = std::make_unique<SaEntry>();
    if (!GetPrefixes(info, 1, "localTs", &e->localTs) || !GetPrefixes(info, 2, "remoteTs", &e->remoteTs))
      return env.Undefined();
    if (outbound) {
      if (info.Length() <= 3 || !info[3].IsString()) {
        ThrowType(env, "peer.address must be a string");
        return env.Undefined();
      }
      int64_t port = 0;
      if (!GetInt(info, 4, "peer.port", 1, 65535, &port)) return env.Undefined();
      if (!ParseEndpoint(family_, info[3].As<Napi::String>().Utf8Value(), port, &e->peer, &e->peerLen)) {
        ThrowRange(env, std::string("peer.address must be an ") + (family_ == AF_INET ? "IPv4" : "IPv6") +
                            " address (the family of the data plane's socket)");
        return env.Undefined();
      }
      e->plain = info.Length() > 5 && info[5].ToBoolean();
      if (e->plain && !rawOk_) {
        Napi::Error::New(env, "plain ESP is not available: " + rawError_).ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    const size_t transportArg = outbound ? 6 : 3;  // addOutbound(..., plain, transport) / addInbound(..., transport)
    e->transport = info.Length() > transportArg && info[transportArg].ToBoolean();
    if (info.Length() == 0) {
      ThrowType(env, "sa must be a native EspSa");
      return env.Undefined();
    }
    // Check the SA last: a successful AttachSa must not be followed by a throw that leaves it attached.
    std::string err;
    esp::EspSa* sa = esp::AttachSa(env, info[0], &err);
    if (sa == nullptr) {
      ThrowType(env, err);
      return env.Undefined();
    }
    const esp::SaInfo si = esp::InfoOf(sa);
    if (si.outbound != outbound) {
      esp::DetachSa(sa);
      ThrowType(env, outbound ? "addOutbound needs an outbound SA" : "addInbound needs an inbound SA");
      return env.Undefined();
    }
    e->spi = si.spi;
    e->outbound = outbound;
    e->sa = sa;
    e->ivLength = si.ivLength;
    e->handle = Napi::Persistent(info[0].As<Napi::Object>());
    const uint32_t spi = e->spi;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (sas_.Add(e)) return env.Undefined();
    }
    esp::DetachSa(sa);
    e->handle.Reset();
    ThrowRange(env, std::string("an ") + (outbound ? "outbound" : "inbound") + " SA with SPI " + std::to_string(spi) +
                        " is already installed");
    return env.Undefined();
  }

  // remove(spi, direction?: 'inbound' | 'outbound') -> number of SAs removed. The SA is usable from JS again.
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t spi = 0;
    if (!GetInt(info, 0, "spi", 0, 0xffffffffLL, &spi)) return env.Undefined();
    int which = 0;  // 0 both, 1 outbound, 2 inbound
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      const std::string d = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
      if (d != "outbound" && d != "inbound") {
        ThrowType(env, "direction must be 'outbound' or 'inbound'");
        return env.Undefined();
      }
      which = d == "outbound" ? 1 : 2;
    }
    std::vector<std::unique_ptr<SaEntry>> removed;
    {
      // After this block the worker cannot hold a pointer to a removed entry: it only uses entries while
      // holding mu_.
      std::lock_guard<std::mutex> lock(mu_);
      removed = sas_.Remove(static_cast<uint32_t>(spi), which != 1, which != 2);
    }
    for (auto& x : removed) {
      esp::DetachSa(x->sa);
      x->handle.Reset();
    }
    return Napi::Number::New(env, static_cast<double>(removed.size()));
  }

  // setPeer(spi, address, port) -> boolean: moves an outbound SA's peer (a NAT mapping changed, RFC 3947 5).
  Napi::Value SetPeer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t spi = 0, port = 0;
    if (!GetInt(info, 0, "spi", 0, 0xffffffffLL, &spi)) return env.Undefined();
    if (info.Length() <= 1 || !info[1].IsString()) {
      ThrowType(env, "peer.address must be a string");
      return env.Undefined();
    }
    if (!GetInt(info, 2, "peer.port", 1, 65535, &port)) return env.Undefined();
    sockaddr_storage ss;
    socklen_t sl;
    if (!ParseEndpoint(family_, info[1].As<Napi::String>().Utf8Value(), port, &ss, &sl)) {
      ThrowRange(env, std::string("peer.address must be an ") + (family_ == AF_INET ? "IPv4" : "IPv6") + " address");
      return env.Undefined();
    }
    std::lock_guard<std::mutex> lock(mu_);
    SaEntry* x = sas_.OutboundBySpi(static_cast<uint32_t>(spi));
    if (x == nullptr) return Napi::Boolean::New(env, false);
    x->peer = ss;
    x->peerLen = sl;
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    std::lock_guard<std::mutex> lock(mu_);
    const Counters& c = c_;
    o.Set("tunPackets", n(c.tunPackets));
    o.Set("tunBytes", n(c.tunBytes));
    o.Set("tsoPackets", n(c.tsoPackets));
    o.Set("groPackets", n(c.groPackets));
    o.Set("espSent", n(c.espSent));
    o.Set("espReceived", n(c.espReceived));
    o.Set("delivered", n(c.delivered));
    o.Set("ikeReceived", n(c.ikeReceived));
    o.Set("ikeSent", n(c.ikeSent));
    o.Set("keepalives", n(c.keepalives));
    Napi::Object d = Napi::Object::New(env);
    d.Set("noOutboundSa", n(c.noOutboundSa));
    d.Set("unknownSpi", n(c.unknownSpi));
    d.Set("authFailed", n(c.authFailed));
    d.Set("replay", n(c.replay));
    d.Set("selectorMismatch", n(c.selectorMismatch));
    d.Set("malformed", n(c.malformed));
    d.Set("seqOverflow", n(c.seqOverflow));
    d.Set("sendFailed", n(c.sendFailed));
    d.Set("tunWriteFailed", n(c.tunWriteFailed));
    d.Set("ikeQueueFull", n(c.ikeQueueFull));
    d.Set("dummy", n(c.dummy));
    d.Set("other", n(c.other));
    o.Set("drops", d);
    const auto& all = sas_.All();
    Napi::Array sas = Napi::Array::New(env, all.size());
    for (size_t i = 0; i < all.size(); i++) {
      const SaEntry& e = *all[i];
      Napi::Object s = Napi::Object::New(env);
      s.Set("spi", n(e.spi));
      s.Set("direction", Napi::String::New(env, e.outbound ? "outbound" : "inbound"));
      s.Set("packets", n(e.packets));
      s.Set("bytes", n(e.bytes));
      s.Set("authFailed", n(e.authFailed));
      s.Set("replay", n(e.replay));
      s.Set("selectorMismatch", n(e.selectorMismatch));
      s.Set("malformed", n(e.malformed));
      sas.Set(static_cast<uint32_t>(i), s);
    }
    o.Set("sas", sas);
    return o;
  }

  bool SendTo(const Napi::CallbackInfo& info, size_t addrArg, const uint8_t* data, size_t len) {
    Napi::Env env = info.Env();
    if (info.Length() <= addrArg || !info[addrArg].IsString()) return ThrowType(env, "address must be a string");
    int64_t port = 0;
    if (!GetInt(info, addrArg + 1, "port", 1, 65535, &port)) return false;
    sockaddr_storage ss;
    socklen_t sl;
    if (!ParseEndpoint(family_, info[addrArg].As<Napi::String>().Utf8Value(), port, &ss, &sl))
      return ThrowRange(env, std::string("address must be an ") + (family_ == AF_INET ? "IPv4" : "IPv6") + " address");
    // MSG_DONTWAIT: the JS thread never blocks on a full socket buffer; IKE retransmits.
    if (sendto(udpFd_, data, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
      Napi::Error::New(env, "sendto failed: " + Errno(errno)).ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // sendIke(message, address, port): the message goes out with the non-ESP marker in front (RFC 3948 2.2).
  Napi::Value SendIke(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    Bytes msg = GetBytes(info, 0, "message");
    if (!msg.ok) return env.Undefined();
    if (msg.size > kMaxPacket - 4 - 48) {
      ThrowRange(env, "message too long for one UDP datagram");
      return env.Undefined();
    }
    std::vector<uint8_t> d(4 + msg.size, 0);
    std::memcpy(d.data() + 4, msg.data, msg.size);
    if (SendTo(info, 1, d.data(), d.size())) {
      std::lock_guard<std::mutex> lock(mu_);
      c_.ikeSent++;
    }
    return env.Undefined();
  }

  // sendKeepalive(address, port): one octet 0xff (RFC 3948 2.3), for a peer behind NAT.
  Napi::Value SendKeepalive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    const uint8_t ka = 0xff;
    SendTo(info, 0, &ka, 1);
    return env.Undefined();
  }

  // plainEspError() -> '' when the raw ESP socket is open, else why not.
  Napi::Value PlainEspError(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), rawOk_ ? std::string() : rawError_);
  }

  Napi::Value Port(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(udpFd_, reinterpret_cast<sockaddr*>(&ss), &sl);
    int port = 0;
    EndpointAddress(ss, &port);
    return Napi::Number::New(env, port);
  }

  // ref() / unref(): whether the open data plane keeps the event loop alive (default: it does, like a socket).
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (running_) onIke_.Ref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (running_) onIke_.Unref(info.Env());
    return info.Env().Undefined();
  }

  // close(): stops the worker, closes the UDP socket and gives every SA back to JS. The TUN fd is the
  // caller's (it opened it) and stays open.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopWorker();
    for (auto& e : sas_.Clear()) {
      esp::DetachSa(e->sa);
      e->handle.Reset();
    }
    return info.Env().Undefined();
  }

  static void Teardown(void* arg) {
    auto* self = static_cast<DataPlane*>(arg);
    self->hooked_ = false;
    self->StopWorker();
  }

  void StopWorker() {
    if (!running_) return;
    running_ = false;
    stop_ = true;
    const uint64_t one = 1;
    if (write(wakeFd_, &one, sizeof(one)) < 0) {
      // eventfd writes only fail on counter overflow: the flag alone stops the loop at its next wake-up
    }
    if (worker_.joinable()) worker_.join();
    onIke_.Release();
    CloseFds();
  }

  void CloseFds() {
    if (udpFd_ >= 0) close(udpFd_);
    if (wakeFd_ >= 0) close(wakeFd_);
    udpFd_ = wakeFd_ = -1;
    raw_.Close();
  }

  // ---------- worker thread ----------

  void Run() {
    std::vector<uint8_t> tunBuf(kBatch * kSlot), udpBuf(kBatch * kSlot);
    pollfd fds[4] = {{tunFd_, POLLIN, 0}, {udpFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}, {raw_.fd(), POLLIN, 0}};
    while (!stop_) {
      if (poll(fds, 4, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[2].revents != 0) break;  // close()
      if (fds[0].revents & POLLIN) FromTun(tunBuf.data());
      if (fds[1].revents & POLLIN) FromUdp(udpBuf.data());
      if (fds[3].revents & POLLIN) FromRaw(udpBuf.data());
      // POLLERR/POLLHUP on TUN (device gone) would spin: stop instead
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;
    }
  }

  // Outbound: up to kBatch reads from TUN into the slots (a TSO super-packet fills several), then SealAndSend.
  void FromTun(uint8_t* buf) {
    size_t lens[kBatch];
    unsigned used = 0;
    auto slot = [&](unsigned i) { return buf + i * kSlot + kHeadroom; };
    for (unsigned reads = 0; reads < kBatch; reads++) {
      if (!vnet_) {
        const ssize_t r = read(tunFd_, slot(used), kMaxPacket);
        if (r <= 0) break;  // EAGAIN: drained
        lens[used++] = static_cast<size_t>(r);
      } else {
        VnetHdr h;
        iovec v[2] = {{&h, sizeof(h)}, {stage_.data(), kMaxPacket}};
        const ssize_t r = readv(tunFd_, v, 2);
        if (r <= 0) break;
        if (static_cast<size_t>(r) < sizeof(h)) continue;
        const size_t len = static_cast<size_t>(r) - sizeof(h);
        if ((h.gsoType & static_cast<uint8_t>(~kGsoEcn)) == kGsoNone) {
          if ((h.flags & kVnetNeedsCsum) && !FinishChecksum(stage_.data(), len, h)) {
            Count(&Counters::malformed);
            continue;
          }
          std::memcpy(slot(used), stage_.data(), len);
          lens[used++] = len;
        } else {
          TsoPlan t;
          if (!PlanTso(stage_.data(), len, h, &t)) {
            Count(&Counters::malformed);
            continue;
          }
          Count(&Counters::tsoPackets);
          for (unsigned i = 0; i < t.segments; i++) {
            if (used == kBatch) {
              SealAndSend(buf, lens, used);
              used = 0;
            }
            lens[used] = CutSegment(stage_.data(), t, i, slot(used));
            used++;
          }
        }
      }
      if (used == kBatch) {
        SealAndSend(buf, lens, used);
        used = 0;
      }
    }
    if (used != 0) SealAndSend(buf, lens, used);
  }

  void Count(uint64_t Counters::*field) {
    std::lock_guard<std::mutex> lock(mu_);
    c_.*field += 1;
  }

  // Seals the IP packets at slot i + kHeadroom (lens[i] octets) in place, each with the first outbound SA whose
  // selectors cover its addresses, and sends them.
  void SealAndSend(uint8_t* buf, const size_t* lens, unsigned count) {
    iovec iov[kBatch], rawIov[kBatch];
    sockaddr_storage to[kBatch], rawTo[kBatch];
    socklen_t toLen[kBatch], rawToLen[kBatch];
    unsigned n = 0, rn = 0;
    std::unique_lock<std::mutex> lock(mu_);
    for (unsigned i = 0; i < count; i++) {
      uint8_t* slot = buf + i * kSlot;
      const uint8_t* pkt = slot + kHeadroom;
      const size_t len = lens[i];
      c_.tunPackets++;
      c_.tunBytes += len;
      int family;
      const uint8_t *src, *dst;
      if (!IpAddrs(pkt, len, &family, &src, &dst)) {
        c_.malformed++;
        continue;
      }
      SaEntry* e = sas_.Outbound(family, src, dst);
      if (e == nullptr) {
        c_.noOutboundSa++;
        continue;
      }
      size_t skip = 0;  // transport mode: the IP header stays behind, its protocol is the next header
      uint8_t nh = family == AF_INET ? kNextIpv4 : kNextIpv6;
      if (e->transport && !transport::Payload(pkt, len, &skip, &nh)) {
        c_.malformed++;
        continue;
      }
      uint8_t* out = slot + kHeadroom + skip - 8 - e->ivLength;
      size_t outLen = 0;
      const uint8_t st = esp::SealPacket(e->sa, pkt + skip, len - skip, nh, out, &outLen);
      if (st != esp::kOk) {
        if (st == esp::kSeqOverflow) c_.seqOverflow++;
        else c_.other++;
        continue;
      }
      e->packets++;
      e->bytes += len;
      const unsigned k = e->plain ? rn++ : n++;
      (e->plain ? rawTo : to)[k] = e->peer;  // copied: the entry may be removed once the lock is released
      (e->plain ? rawToLen : toLen)[k] = e->peerLen;
      (e->plain ? rawIov : iov)[k] = {out, outLen};
    }
    lock.unlock();
    const unsigned sent = Send(iov, to, toLen, n) + raw_.Send(rawIov, rawTo, rawToLen, rn);
    lock.lock();
    c_.espSent += sent;
    c_.sendFailed += n + rn - sent;
  }

  // Sends n datagrams; returns how many the kernel took. With UDP GSO (Linux 4.18+, UDP_SEGMENT), a run of
  // datagrams to the same peer with the same length (the last may be shorter) goes down the stack as one
  // large packet and is cut into datagrams at the end (the device, or the receiving socket): one route
  // lookup and one trip through the IP layer per run instead of per packet. A bulk TCP flow through the
  // tunnel is exactly such runs.
  unsigned Send(iovec* iov, sockaddr_storage* to, socklen_t* toLen, unsigned n) {
    mmsghdr msgs[kBatch];
    unsigned segs[kBatch];  // datagrams in msgs[m]
    alignas(cmsghdr) char ctrl[kBatch][CMSG_SPACE(sizeof(uint16_t))];
    unsigned m = 0;
    for (unsigned i = 0; i < n;) {
      unsigned k = 1;
      const size_t seg = iov[i].iov_len;
      if (gso_) {
        // Stay under the 64 KiB IP datagram limit and the kernel's segment limit.
        while (i + k < n && k < kMaxGsoSegments && (k + 1) * seg <= kMaxGsoBytes && iov[i + k].iov_len <= seg &&
               iov[i + k - 1].iov_len == seg && toLen[i + k] == toLen[i] && std::memcmp(&to[i + k], &to[i], toLen[i]) == 0)
          k++;
      }
      msghdr& h = msgs[m].msg_hdr;
      h = {};
      h.msg_name = &to[i];
      h.msg_namelen = toLen[i];
      h.msg_iov = &iov[i];
      h.msg_iovlen = k;
      if (k > 1) {
        h.msg_control = ctrl[m];
        h.msg_controllen = sizeof(ctrl[m]);
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const uint16_t s = static_cast<uint16_t>(seg);
        std::memcpy(CMSG_DATA(c), &s, sizeof(s));
      }
      segs[m++] = k;
      i += k;
    }
    unsigned done = 0, sent = 0;
    while (done < m) {
      const int r = sendmmsg(udpFd_, msgs + done, m - done, 0);
      if (r > 0) {
        for (int j = 0; j < r; j++) sent += segs[done + j];
        done += static_cast<unsigned>(r);
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else {
        // The error belongs to msgs[done]. EIO: the route cannot do GSO (no checksum offload, xfrm): stop
        // using it. The message is lost either way, as a dropped datagram would be.
        if (r < 0 && errno == EIO && segs[done] > 1) gso_ = false;
        done++;
      }
    }
    return sent;
  }

  // Inbound: up to kBatch datagrams (each possibly a GRO bundle of same-size datagrams), classified
  // (RFC 3948 2.2/2.3), ESP opened in place, inner packets written to TUN.
  void FromUdp(uint8_t* buf) {
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    sockaddr_storage from[kBatch];
    alignas(cmsghdr) char ctrl[kBatch][CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(int))];
    for (unsigned i = 0; i < kBatch; i++) {
      iov[i] = {buf + i * kSlot, kSlot};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctrl[i];
      msgs[i].msg_hdr.msg_controllen = sizeof(ctrl[i]);
    }
    const int r = recvmmsg(udpFd_, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (r <= 0) return;
    const unsigned n = static_cast<unsigned>(r);
    out_.clear();
    std::unique_lock<std::mutex> lock(mu_);
    for (unsigned i = 0; i < n; i++) {
      uint8_t* d = buf + i * kSlot;
      const size_t len = msgs[i].msg_len;
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        c_.malformed++;
        continue;
      }
      size_t seg = len;  // GRO: the kernel joined datagrams of `seg` octets (the last may be shorter)
      for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          uint16_t s = 0;
          std::memcpy(&s, CMSG_DATA(c), sizeof(s));
          if (s != 0) seg = s;
        }
      }
      for (size_t off = 0; off < len; off += seg) Datagram(d + off, std::min(seg, len - off), from[i]);
    }
    WriteOut(lock);
  }

  // Inbound plain ESP: up to kBatch packets from the raw socket, opened as ESP in UDP is.
  void FromRaw(uint8_t* buf) {
    uint8_t* esp[kBatch];
    size_t len[kBatch];
    sockaddr_storage from[kBatch];
    const unsigned n = raw_.Receive(buf, kSlot, kBatch, esp, len, from);
    if (n == 0) return;
    out_.clear();
    std::unique_lock<std::mutex> lock(mu_);
    for (unsigned i = 0; i < n; i++) Esp(esp[i], len[i], from[i], false);
    WriteOut(lock);
  }

  // The inner packets of one receive batch (out_) to TUN, mu_ released meanwhile.
  void WriteOut(std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    unsigned joined = 0;
    const unsigned written = vnet_ ? WriteJoined(&joined) : WritePlain();
    lock.lock();
    c_.delivered += written;
    c_.tunWriteFailed += out_.size() - written;
    c_.groPackets += joined;
  }

  unsigned WritePlain() {
    unsigned written = 0;
    for (const iovec& v : out_)
      if (write(tunFd_, v.iov_base, v.iov_len) == static_cast<ssize_t>(v.iov_len)) written++;
    return written;
  }

  // With IFF_VNET_HDR: runs of segments of one TCP stream are joined into one write (dataplane_gso.h);
  // anything else goes alone behind an empty virtio_net_hdr. Returns the inner packets written; *joined
  // counts the writes that carried more than one.
  unsigned WriteJoined(unsigned* joined) {
    unsigned written = 0;
    iovec w[kMaxGsoSegments + 1];
    for (size_t i = 0; i < out_.size();) {
      VnetHdr h{};
      w[0] = {&h, sizeof(h)};
      const size_t k = JoinRun(out_.data() + i, out_.size() - i, kMaxGsoSegments, &h, w + 1);
      size_t bytes = 0;
      for (size_t j = 0; j <= k; j++) bytes += w[j].iov_len;
      if (writev(tunFd_, w, static_cast<int>(k + 1)) == static_cast<ssize_t>(bytes)) {
        written += static_cast<unsigned>(k);
        if (k > 1) (*joined)++;
      }
      i += k;
    }
    return written;
  }

  // One datagram received on the NAT-T port (mu_ held). ESP that passes every check is queued in out_.
  void Datagram(uint8_t* d, size_t len, const sockaddr_storage& from) {
    if (len == 1 && d[0] == 0xff) {
      c_.keepalives++;
      return;
    }
    if (len >= 4 && d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0) {
      c_.ikeReceived++;
      auto* ike = new IkeDatagram{std::vector<uint8_t>(d + 4, d + len), from};
      if (onIke_.NonBlockingCall(ike, DeliverIke) != napi_ok) {
        delete ike;
        c_.ikeQueueFull++;
      }
      return;
    }
    Esp(d, len, from, true);
  }

  // One ESP packet, from the NAT-T port (udp) or the raw socket (mu_ held). What passes every check is queued
  // in out_.
  void Esp(uint8_t* d, size_t len, const sockaddr_storage& from, bool udp) {
    if (len < 8) {
      c_.malformed++;
      return;
    }
    // espReceived counts only what authenticated below: forged or replayed datagrams go to the drops
    const uint32_t spi = (static_cast<uint32_t>(d[0]) << 24) | (static_cast<uint32_t>(d[1]) << 16) |
                         (static_cast<uint32_t>(d[2]) << 8) | d[3];
    SaEntry* e = sas_.Inbound(spi);
    if (e == nullptr) {
      c_.unknownSpi++;
      return;
    }
    uint8_t* inner = d + 8 + e->ivLength;
    size_t innerLen = 0;
    uint8_t nh = 0;
    const uint8_t st = esp::OpenPacket(e->sa, d, len, inner, &innerLen, &nh);
    if (st != esp::kOk) {
      if (st == esp::kAuthFailed) c_.authFailed++, e->authFailed++;
      else if (st == esp::kReplayed) c_.replay++, e->replay++;
      else if (st == esp::kMalformed) c_.malformed++, e->malformed++;
      else c_.other++;
      return;
    }
    c_.espReceived++;
    if (nh == kNextNone) {
      c_.dummy++;
      return;
    }
    if (e->transport) {
      Transport(e, d, len, inner, innerLen, nh, from, udp);
      return;
    }
    // Tunnel mode: the inner packet must be IP of the family the next header names, from an address
    // of the SA's remote selectors to one of its local selectors (RFC 4301 5.2: the inbound policy check).
    int family;
    const uint8_t *src, *dst;
    if ((nh != kNextIpv4 && nh != kNextIpv6) || !IpAddrs(inner, innerLen, &family, &src, &dst) ||
        (family == AF_INET) != (nh == kNextIpv4)) {
      c_.malformed++;
      e->malformed++;
      return;
    }
    if (!AnyContains(e->remoteTs, family, src) || !AnyContains(e->localTs, family, dst)) {
      c_.selectorMismatch++;
      e->selectorMismatch++;
      return;
    }
    e->packets++;
    e->bytes += innerLen;
    out_.push_back({inner, innerLen});
  }

  // Transport mode (esp_transport.h): the payload becomes an IPv4 packet again, from the peer's address as this
  // packet came from (the NAT's, behind one) to our address (the SA's local selector), its TCP / UDP checksum
  // made anew after a NAT (udp: RFC 3948 3.1.2). The peer's address must be in the SA's remote selectors.
  void Transport(SaEntry* e, uint8_t* d, size_t len, uint8_t* inner, size_t innerLen, uint8_t nh,
                 const sockaddr_storage& from, bool udp) {
    const uint8_t* src = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(&from)->sin_addr);
    if (from.ss_family != AF_INET || e->localTs.empty() || e->localTs[0].family != AF_INET ||
        !AnyContains(e->remoteTs, AF_INET, src)) {
      c_.selectorMismatch++;
      e->selectorMismatch++;
      return;
    }
    const size_t tail = static_cast<size_t>(d + len - (inner + innerLen));
    uint8_t* ip = transport::Rebuild(inner, innerLen, static_cast<size_t>(inner - d), tail, nh, src, e->localTs[0].addr, udp);
    if (ip == nullptr) {
      c_.malformed++;
      e->malformed++;
      return;
    }
    e->packets++;
    e->bytes += innerLen;
    out_.push_back({ip, innerLen + transport::kIpv4Header});
  }

  // Runs on the JS thread for each IKE datagram the worker queued.
  static void DeliverIke(Napi::Env env, Napi::Function cb, IkeDatagram* d) {
    std::unique_ptr<IkeDatagram> owned(d);
    if (env == nullptr || cb.IsEmpty()) return;  // tearing down
    int port = 0;
    const std::string address = EndpointAddress(d->from, &port);
    try {
      cb.Call({Napi::Buffer<uint8_t>::Copy(env, d->data.data(), d->data.size()), Napi::String::New(env, address),
               Napi::Number::New(env, port)});
    } catch (const Napi::Error& e) {
      // A throwing onIke becomes an uncaught exception of the process, as a throwing 'message' listener would.
      e.ThrowAsJavaScriptException();
    }
  }

  Counters c_;
  SaTable sas_;
  std::vector<iovec> out_;  // worker: inner packets of one receive batch, to write to TUN
  bool gso_ = false;        // worker after construction: UDP_SEGMENT usable
  bool vnet_ = false;       // the TUN fd has IFF_VNET_HDR (openTun with offload): virtio_net_hdr on every packet
  std::vector<uint8_t> stage_ = std::vector<uint8_t>(kMaxPacket);  // worker: one TSO super-packet
  std::mutex mu_;
  int tunFd_ = -1, udpFd_ = -1, wakeFd_ = -1;
  int family_ = AF_INET;
  bool running_ = false;            // JS thread
  napi_env env_ = nullptr;
  bool hooked_ = false;             // Teardown registered as an environment cleanup hook
  std::atomic<bool> stop_{false};   // JS thread -> worker
  std::thread worker_;
  Napi::ThreadSafeFunction onIke_;
  rawesp::RawEsp raw_;  // plain ESP (IP protocol 50), when CAP_NET_RAW allows it
  bool rawOk_ = false;
  std::string rawError_;
};

}  // namespace
}  // namespace dataplane
}  // namespace ike

namespace ike {
namespace dataplane {
namespace {

// openTun(name?: string, offload?: boolean) -> { fd, name, offload }: a TUN device (IFF_TUN: IP packets,
// IFF_NO_PI: no 4-octet packet information header), non-blocking. The device lives as long as the fd stays
// open. offload: IFF_VNET_HDR and TCP segmentation / checksum offload (dataplane_gso.h); `offload` in the
// result says whether the kernel accepted the offloads.
Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) {
      ThrowType(env, "name must be a string");
      return env.Undefined();
    }
    name = info[0].As<Napi::String>().Utf8Value();
    if (name.empty() || name.size() >= IFNAMSIZ || name.find_first_of("/ \t\n:") != std::string::npos) {
      ThrowRange(env, "name must be 1 to 15 characters without '/', ':' or white space (IFNAMSIZ)");
      return env.Undefined();
    }
  }
  bool offload = false;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsBoolean()) {
      ThrowType(env, "offload must be a boolean");
      return env.Undefined();
    }
    offload = info[1].As<Napi::Boolean>().Value();
  }
  const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    std::string msg = "cannot open /dev/net/tun: " + Errno(e);
    if (e == ENOENT || e == ENODEV || e == ENXIO)
      msg += ". The TUN driver is missing: load it (modprobe tun) or, in a container, pass the device (--device /dev/net/tun)";
    else if (e == EACCES || e == EPERM)
      msg += ". Opening it needs CAP_NET_ADMIN (run as root)";
    Napi::Error err = Napi::Error::New(env, msg);
    err.Set("code", Napi::String::New(env, e == ENOENT ? "ENOENT" : e == EPERM ? "EPERM" : e == EACCES ? "EACCES" : "ETUN"));
    err.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
  if (!name.empty()) std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    const int e = errno;
    close(fd);
    std::string msg = "cannot create TUN device" + (name.empty() ? "" : " '" + name + "'") + ": " + Errno(e);
    if (e == EPERM || e == EACCES) msg += ". Creating a TUN device needs CAP_NET_ADMIN (run as root)";
    if (e == EBUSY) msg += ". The name is taken by a device that is not a free TUN device";
    Napi::Error err = Napi::Error::New(env, msg);
    err.Set("code", Napi::String::New(env, e == EPERM ? "EPERM" : e == EACCES ? "EACCES" : e == EBUSY ? "EBUSY" : "ETUN"));
    err.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Without TUNSETOFFLOAD the kernel segments and checksums itself; the virtio header is then always "none".
  const bool offloaded = offload && ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0;
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Napi::Number::New(env, fd));
  o.Set("name", Napi::String::New(env, ifr.ifr_name));
  o.Set("offload", Napi::Boolean::New(env, offloaded));
  return o;
}


#ifdef IKE_TEST_HOOKS
// Test hooks for dataplane_gso.h, so its segmentation and joining can be checked without a TUN device
// (test build of the addon only: ikev1_native_test in binding.gyp).
// offloadCut(packet, gsoType, gsoSize, csumStart) -> Buffer[] (empty when the plan is refused)
Napi::Value OffloadCut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes pkt = GetBytes(info, 0, "packet");
  if (!pkt.ok) return env.Undefined();
  int64_t type = 0, gso = 0, start = 0;
  if (!GetInt(info, 1, "gsoType", 0, 255, &type) || !GetInt(info, 2, "gsoSize", 0, 65535, &gso) ||
      !GetInt(info, 3, "csumStart", 0, 65535, &start))
    return env.Undefined();
  VnetHdr h{};
  h.gsoType = static_cast<uint8_t>(type);
  h.gsoSize = static_cast<uint16_t>(gso);
  h.csumStart = static_cast<uint16_t>(start);
  TsoPlan t;
  Napi::Array out = Napi::Array::New(env);
  if (pkt.size > kMaxPacket || !PlanTso(pkt.data, pkt.size, h, &t)) return out;
  std::vector<uint8_t> seg(t.hdr + t.mss);
  for (unsigned i = 0; i < t.segments; i++) {
    const size_t n = CutSegment(pkt.data, t, i, seg.data());
    out.Set(i, Napi::Buffer<uint8_t>::Copy(env, seg.data(), n));
  }
  return out;
}

// offloadJoin(packets: Buffer[]) -> { count, header: {flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset},
// packet: Buffer }: the first run JoinRun takes, as it would be written (without the virtio header).
Napi::Value OffloadJoin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    ThrowType(env, "packets must be an array of Buffers");
    return env.Undefined();
  }
  Napi::Array a = info[0].As<Napi::Array>();
  if (a.Length() == 0 || a.Length() > kMaxGsoSegments) {
    ThrowRange(env, "packets must hold 1 to 64 packets");
    return env.Undefined();
  }
  std::vector<std::vector<uint8_t>> copies;  // JoinRun rewrites the first packet's headers
  std::vector<iovec> pkts;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsBuffer()) {
      ThrowType(env, "packets must be an array of Buffers");
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    copies.emplace_back(b.Data(), b.Data() + b.Length());
  }
  for (auto& c : copies) pkts.push_back({c.data(), c.size()});
  VnetHdr h{};
  std::vector<iovec> parts(pkts.size());
  const size_t k = JoinRun(pkts.data(), pkts.size(), kMaxGsoSegments, &h, parts.data());
  std::vector<uint8_t> joined;
  for (size_t j = 0; j < k; j++) {
    const uint8_t* p = static_cast<const uint8_t*>(parts[j].iov_base);
    joined.insert(joined.end(), p, p + parts[j].iov_len);
  }
  Napi::Object hdr = Napi::Object::New(env);
  hdr.Set("flags", Napi::Number::New(env, h.flags));
  hdr.Set("gsoType", Napi::Number::New(env, h.gsoType));
  hdr.Set("hdrLen", Napi::Number::New(env, h.hdrLen));
  hdr.Set("gsoSize", Napi::Number::New(env, h.gsoSize));
  hdr.Set("csumStart", Napi::Number::New(env, h.csumStart));
  hdr.Set("csumOffset", Napi::Number::New(env, h.csumOffset));
  Napi::Object o = Napi::Object::New(env);
  o.Set("count", Napi::Number::New(env, static_cast<double>(k)));
  o.Set("header", hdr);
  o.Set("packet", Napi::Buffer<uint8_t>::Copy(env, joined.data(), joined.size()));
  return o;
}

#endif  // IKE_TEST_HOOKS

}  // namespace
}  // namespace dataplane
}  // namespace ike

void InitDataplane(Napi::Env env, Napi::Object exports) {
  exports.Set("DataPlane", ike::dataplane::DataPlane::Define(env));
  exports.Set("openTun", Napi::Function::New(env, ike::dataplane::OpenTun, "openTun"));
#ifdef IKE_TEST_HOOKS
  Napi::Object hooks = Napi::Object::New(env);
  hooks.Set("cut", Napi::Function::New(env, ike::dataplane::OffloadCut, "cut"));
  hooks.Set("join", Napi::Function::New(env, ike::dataplane::OffloadJoin, "join"));
  exports.Set("dataplaneOffloadTest", hooks);
#endif
}
