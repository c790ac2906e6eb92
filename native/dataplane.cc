// Tunnel data plane: a TUN device and a UDP socket on the NAT-T port, joined by a native worker thread
// (dataplane_worker.h) that seals and opens ESP in UDP (RFC 4303, RFC 3948) without JavaScript on the
// per-packet path. This file is the JavaScript face of it: the DataPlane class installs and removes SAs,
// reads counters and sends IKE.
//
// Port 4500 belongs to the data plane: datagrams with the non-ESP marker (IKE) go up to a JS callback
// (threadsafe function), and sendIke() writes IKE messages out with the marker in front.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "dataplane.h"
#include "dataplane_sockets.h"
#include "dataplane_stats.h"
#include "dataplane_worker.h"
#include "esp_sa.h"
#include "sa_table.h"
#include "sockaddr.h"

namespace ike {
namespace dataplane {

void InitTun(Napi::Env env, Napi::Object exports);  // tun.cc

namespace {

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

  // new DataPlane(tunFds: number | number[], bindAddress, port, onIke(message: Buffer, address: string, port: number))
  // One worker per TUN fd: the queues of a multi-queue TUN device (openTun with queues), or one plain fd.
  explicit DataPlane(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataPlane>(info) {
    Napi::Env env = info.Env();
    std::vector<int> tunFds;
    int64_t port = 0;
    if (!GetTunFds(info, &tunFds)) return;
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
    family_ = bindAddress.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    sockaddr_storage ss;
    socklen_t sl;
    if (!ParseEndpoint(family_, bindAddress, port, &ss, &sl)) {
      ThrowRange(env, "bindAddress '" + bindAddress + "' is not an IPv4 or IPv6 address");
      return;
    }
    std::string err;
    onIke_ = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "dataplane-ike", 1024, 1);
    rawOk_ = true;
    if (!MakeWorkers(tunFds, ss, sl, bindAddress, &err)) {
      StopAll();
      workers_.clear();
      onIke_.Release();
      Napi::Error::New(env, err).ThrowAsJavaScriptException();
      return;
    }
    running_ = true;
    // Environment teardown (process exit, worker_threads terminate) without close(): stop the workers while
    // the threadsafe function still exists (hooks run in reverse order: ours before the function's own).
    env_ = env;
    hooked_ = napi_add_env_cleanup_hook(env, Teardown, this) == napi_ok;
  }

  ~DataPlane() override {
    if (hooked_) napi_remove_env_cleanup_hook(env_, Teardown, this);
    // Finalized without close(): stop the threads and free the fds. The SAs stay attached (their JS
    // objects may already be gone at environment teardown, so they are not touched here).
    StopWorkers();
    for (auto& w : workers_)
      for (auto& e : w->Sas().All()) e->handle.Reset();
  }

 private:
  // The first argument: one fd, or 1 to 64 fds (one per worker).
  static bool GetTunFds(const Napi::CallbackInfo& info, std::vector<int>* out) {
    Napi::Env env = info.Env();
    if (info.Length() > 0 && info[0].IsArray()) {
      Napi::Array a = info[0].As<Napi::Array>();
      if (a.Length() == 0 || a.Length() > 64) return ThrowRange(env, "tunFds must hold 1 to 64 fds (one per worker)");
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value v = a.Get(i);
        const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
        if (!(d >= 0 && d <= 0x7fffffff) || d != static_cast<double>(static_cast<int>(d)))
          return ThrowType(env, "tunFds[" + std::to_string(i) + "] must be a file descriptor");
        out->push_back(static_cast<int>(d));
      }
      return true;
    }
    int64_t fd = 0;
    if (!GetInt(info, 0, "tunFd", 0, 0x7fffffff, &fd)) return false;
    out->push_back(static_cast<int>(fd));
    return true;
  }

  // One worker per TUN fd, each with its UDP socket on the port (and a raw ESP socket when allowed); with
  // several, the sockets share the port (SO_REUSEPORT) and the kernel steers by SPI (dataplane_sockets.h).
  bool MakeWorkers(const std::vector<int>& tunFds, sockaddr_storage ss, socklen_t sl, const std::string& bindAddress,
                   std::string* err) {
    const unsigned n = static_cast<unsigned>(tunFds.size());
    auto sink = [this](const uint8_t* d, size_t len, const sockaddr_storage& from) { return QueueIke(d, len, from); };
    const std::string where = bindAddress + ":" + std::to_string(ntohs(PortOf(ss)));
    // SO_REUSEPORT would let us join a group that another process (another data plane) already holds on the
    // port, silently sharing its traffic: a plain bind first must succeed, as it must with one worker.
    bool unused = false;
    if (n > 1 && PortOf(ss) != 0) {
      const int probe = OpenUdp(family_, ss, sl, where, false, &unused, err);
      if (probe < 0) return false;
      close(probe);
    }
    for (unsigned i = 0; i < n; i++) {
      bool vnet = false, gso = false;
      if (!PrepareTun(tunFds[i], &vnet, err)) return false;
      const int udp = OpenUdp(family_, ss, sl, where, n > 1, &gso, err);
      if (udp < 0) return false;
      workers_.push_back(std::make_unique<Worker>(i, tunFds[i], vnet, udp, gso, sink));
      if (i == 0) {  // port 0: the others bind the port the kernel chose for the first
        sockaddr_storage bound;
        socklen_t bl = sizeof(bound);
        if (getsockname(udp, reinterpret_cast<sockaddr*>(&bound), &bl) == 0) PortOf(ss) = PortOf(bound);
      }
      rawesp::RawEsp& raw = workers_[i]->Raw();
      if (rawOk_) rawOk_ = raw.Open(family_, ss, &rawError_) && (n == 1 || SteerRaw(raw.fd(), family_, n, i, &rawError_));
    }
    // Plain ESP on every worker or on none.
    if (!rawOk_)
      for (auto& w : workers_) w->Raw().Close();
    if (n > 1 && !SteerUdp(workers_[0]->UdpFd(), n, err)) return false;
    std::vector<Worker*> all;
    for (auto& w : workers_) all.push_back(w.get());
    for (auto& w : workers_) w->SetPeers(all);
    for (auto& w : workers_)
      if (!w->Start(err)) return false;
    return true;
  }

  // The port field (network order) of an IPv4 or IPv6 socket address.
  static in_port_t& PortOf(sockaddr_storage& ss) {
    return ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port;
  }

  // The worker reads until EAGAIN: the TUN fd must not block. *vnet: it carries virtio_net_hdr (offload).
  static bool PrepareTun(int fd, bool* vnet, std::string* err) {
    const int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
      *err = "tunFd is not an open file descriptor (" + Errno(errno) + ")";
      return false;
    }
    ifreq ifr;
    std::memset(&ifr, 0, sizeof(ifr));
    *vnet = ioctl(fd, TUNGETIFF, &ifr) == 0 && (ifr.ifr_flags & IFF_VNET_HDR) != 0;
    return true;
  }

  // Worker thread: one IKE datagram to JavaScript.
  bool QueueIke(const uint8_t* d, size_t len, const sockaddr_storage& from) {
    auto* ike = new IkeDatagram{std::vector<uint8_t>(d, d + len), from};
    if (onIke_.NonBlockingCall(ike, DeliverIke) == napi_ok) return true;
    delete ike;
    return false;
  }

  // ---------- JS thread ----------

  bool CheckOpen(Napi::Env env) {
    if (!running_) Napi::Error::New(env, "this DataPlane is closed").ThrowAsJavaScriptException();
    return running_;
  }

  // The worker that owns the inbound SA with this SPI.
  Worker& OwnerOf(uint32_t spi) { return *workers_[spi % workers_.size()]; }

  // addOutbound(sa: EspSa handle, localTs: string[], remoteTs: string[], peerAddress, peerPort, plain, transport, pairSpi)
  Napi::Value AddOutbound(const Napi::CallbackInfo& info) { return Add(info, true); }
  // addInbound(sa: EspSa handle, localTs: string[], remoteTs: string[], transport)
  Napi::Value AddInbound(const Napi::CallbackInfo& info) { return Add(info, false); }

  // The arguments of addOutbound / addInbound after the SA, into e. False with an exception pending.
  bool ParseSpec(const Napi::CallbackInfo& info, bool outbound, SaEntry* e) {
    Napi::Env env = info.Env();
    if (!GetPrefixes(info, 1, "localTs", &e->localTs) || !GetPrefixes(info, 2, "remoteTs", &e->remoteTs)) return false;
    if (outbound) {
      if (info.Length() <= 3 || !info[3].IsString()) return ThrowType(env, "peer.address must be a string");
      int64_t port = 0;
      if (!GetInt(info, 4, "peer.port", 1, 65535, &port)) return false;
      if (!ParseEndpoint(family_, info[3].As<Napi::String>().Utf8Value(), port, &e->peer, &e->peerLen))
        return ThrowRange(env, std::string("peer.address must be an ") + (family_ == AF_INET ? "IPv4" : "IPv6") +
                                   " address (the family of the data plane's socket)");
      e->plain = info.Length() > 5 && info[5].ToBoolean();
      if (e->plain && !rawOk_) {
        Napi::Error::New(env, "plain ESP is not available: " + rawError_).ThrowAsJavaScriptException();
        return false;
      }
    }
    const size_t transportArg = outbound ? 6 : 3;
    e->transport = info.Length() > transportArg && info[transportArg].ToBoolean();
    // addOutbound(..., transport, pairSpi): the worker of the inbound SA of the same child owns this one too
    pair_ = -1;
    if (outbound && info.Length() > 7 && !info[7].IsUndefined() && !GetInt(info, 7, "pairSpi", 0, 0xffffffffLL, &pair_))
      return false;
    if (info.Length() == 0) return ThrowType(env, "sa must be a native EspSa");
    return true;
  }

  Napi::Value Add(const Napi::CallbackInfo& info, bool outbound) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    auto e = std::make_unique<SaEntry>();
    if (!ParseSpec(info, outbound, e.get())) return env.Undefined();
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
    e->owner = static_cast<unsigned>((outbound && pair_ >= 0 ? static_cast<uint32_t>(pair_) : spi) % workers_.size());
    if (Install(e)) return env.Undefined();
    esp::DetachSa(sa);
    e->handle.Reset();
    ThrowRange(env, std::string("an ") + (outbound ? "outbound" : "inbound") + " SA with SPI " + std::to_string(spi) +
                        " is already installed");
    return env.Undefined();
  }

  // The entry into its owner's table; an outbound one then as a route (no SA) into every other worker's, so
  // that each worker can tell whose a TUN packet is. Routes go in after the owner has the SA: a packet
  // handed to the owner always finds it. False when the owner has an SA of that direction and SPI.
  bool Install(std::unique_ptr<SaEntry>& e) {
    Worker& owner = *workers_[e->owner];
    std::vector<std::unique_ptr<SaEntry>> routes;
    if (e->outbound) {
      for (auto& w : workers_) {
        if (w.get() == &owner) continue;
        auto r = std::make_unique<SaEntry>();
        r->spi = e->spi;
        r->outbound = true;
        r->owner = e->owner;
        r->localTs = e->localTs;
        r->remoteTs = e->remoteTs;
        routes.push_back(std::move(r));
      }
    }
    const uint32_t spi = e->spi;
    const bool outbound = e->outbound;
    {
      std::lock_guard<std::mutex> lock(owner.Mu());
      if (!owner.Sas().Add(e)) return false;
    }
    if (!outbound) return true;
    outOwner_[spi] = owner.Index();
    size_t k = 0;
    for (auto& w : workers_) {
      if (w.get() == &owner) continue;
      std::lock_guard<std::mutex> lock(w->Mu());
      w->Sas().Add(routes[k++]);  // cannot collide: the routes of an SPI come and go with its owner's entry
    }
    return true;
  }

  // Takes an outbound SA out: the routes first, then the owner's entry, the mirror of Install.
  std::vector<std::unique_ptr<SaEntry>> Uninstall(uint32_t spi) {
    auto it = outOwner_.find(spi);
    if (it == outOwner_.end()) return {};
    const unsigned owner = it->second;
    outOwner_.erase(it);
    for (auto& w : workers_) {
      if (w->Index() == owner) continue;
      std::lock_guard<std::mutex> lock(w->Mu());
      w->Sas().Remove(spi, false, true);
    }
    std::lock_guard<std::mutex> lock(workers_[owner]->Mu());
    return workers_[owner]->Sas().Remove(spi, false, true);
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
    // Once out of a table, no worker holds a pointer to the entry: a worker only uses entries while holding
    // its mutex.
    std::vector<std::unique_ptr<SaEntry>> removed;
    if (which != 2) removed = Uninstall(static_cast<uint32_t>(spi));
    if (which != 1) {
      Worker& w = OwnerOf(static_cast<uint32_t>(spi));
      std::lock_guard<std::mutex> lock(w.Mu());
      for (auto& x : w.Sas().Remove(static_cast<uint32_t>(spi), true, false)) removed.push_back(std::move(x));
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
    auto it = outOwner_.find(static_cast<uint32_t>(spi));
    if (it == outOwner_.end()) return Napi::Boolean::New(env, false);
    Worker& w = *workers_[it->second];
    std::lock_guard<std::mutex> lock(w.Mu());
    SaEntry* x = w.Sas().OutboundBySpi(static_cast<uint32_t>(spi));
    if (x == nullptr) return Napi::Boolean::New(env, false);
    x->peer = ss;
    x->peerLen = sl;
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Counters total;
    Napi::Array sas = Napi::Array::New(env);
    Napi::Array each = Napi::Array::New(env, workers_.size());
    uint32_t k = 0;
    for (auto& w : workers_) {
      std::lock_guard<std::mutex> lock(w->Mu());
      total.Add(w->Stats());
      uint64_t owned = 0;
      for (const auto& e : w->Sas().All()) {
        if (e->sa == nullptr) continue;  // a route to another worker's SA
        sas.Set(k++, SaObject(env, *e));
        owned++;
      }
      each.Set(w->Index(), WorkerObject(env, w->Stats(), owned));
    }
    Napi::Object o = CountersObject(env, total);
    o.Set("sas", sas);
    o.Set("workers", each);
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
    if (sendto(workers_[0]->UdpFd(), data, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
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
      std::lock_guard<std::mutex> lock(workers_[0]->Mu());
      workers_[0]->Stats().ikeSent++;
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
    getsockname(workers_[0]->UdpFd(), reinterpret_cast<sockaddr*>(&ss), &sl);
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

  // close(): stops the workers, closes the sockets and gives every SA back to JS. The TUN fd is the
  // caller's (it opened it) and stays open.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopWorkers();
    outOwner_.clear();
    for (auto& w : workers_) {
      for (auto& e : w->Sas().Clear()) {
        if (e->sa != nullptr) esp::DetachSa(e->sa);
        e->handle.Reset();
      }
    }
    return info.Env().Undefined();
  }

  static void Teardown(void* arg) {
    auto* self = static_cast<DataPlane*>(arg);
    self->hooked_ = false;
    self->StopWorkers();
  }

  void StopWorkers() {
    if (!running_) return;
    running_ = false;
    StopAll();
    onIke_.Release();
  }

  // Every worker halted before any closes its fds: a running one may still wake another.
  void StopAll() {
    for (auto& w : workers_) w->Halt();
    for (auto& w : workers_) w->Stop();
  }

  // Runs on the JS thread for each IKE datagram a worker queued.
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

  std::vector<std::unique_ptr<Worker>> workers_;
  std::unordered_map<uint32_t, unsigned> outOwner_;  // JS thread: the owner of each outbound SA, by SPI
  int64_t pair_ = -1;  // JS thread, during addOutbound: the SPI of the inbound pair, -1 when not given
  int family_ = AF_INET;
  bool running_ = false;  // JS thread
  napi_env env_ = nullptr;
  bool hooked_ = false;  // Teardown registered as an environment cleanup hook
  Napi::ThreadSafeFunction onIke_;
  bool rawOk_ = false;
  std::string rawError_;
};

}  // namespace
}  // namespace dataplane
}  // namespace ike

void InitDataplane(Napi::Env env, Napi::Object exports) {
  exports.Set("DataPlane", ike::dataplane::DataPlane::Define(env));
  ike::dataplane::InitTun(env, exports);
}
