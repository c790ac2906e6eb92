// The TUN device of the data plane: openTun() for JavaScript, and the test hooks of its offload code
// (dataplane_gso.h).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "dataplane.h"
#include "dataplane_gso.h"

namespace ike {
namespace dataplane {
namespace {

// Throws the error of a failed open of /dev/net/tun or TUNSETIFF, with what to do about it and a code.
void ThrowTunError(Napi::Env env, bool opening, int e, const std::string& name, bool multi) {
  std::string msg;
  if (opening) {
    msg = "cannot open /dev/net/tun: " + Errno(e);
    if (e == ENOENT || e == ENODEV || e == ENXIO)
      msg += ". The TUN driver is missing: load it (modprobe tun) or, in a container, pass the device (--device /dev/net/tun)";
    else if (e == EACCES || e == EPERM)
      msg += ". Opening it needs CAP_NET_ADMIN (run as root)";
  } else {
    msg = std::string(multi ? "cannot create multi-queue TUN device" : "cannot create TUN device") +
          (name.empty() ? "" : " '" + name + "'") + ": " + Errno(e);
    if (e == EPERM || e == EACCES) msg += ". Creating a TUN device needs CAP_NET_ADMIN (run as root)";
    if (e == EBUSY) msg += ". The name is taken by a device that is not a free TUN device";
    // A device of that name made without IFF_MULTI_QUEUE (or with other flags) refuses more queues, and a
    // kernel before 3.8 knows no multi-queue TUN at all.
    if (multi && e == EINVAL)
      msg += ". The kernel refused a multi-queue TUN device (IFF_MULTI_QUEUE): an older device of that name without it, or a kernel "
             "before 3.8; delete the device or use one worker";
  }
  Napi::Error err = Napi::Error::New(env, msg);
  const char* code = e == ENOENT && opening ? "ENOENT" : e == EPERM ? "EPERM" : e == EACCES ? "EACCES" : e == EBUSY ? "EBUSY" : "ETUN";
  err.Set("code", Napi::String::New(env, code));
  err.ThrowAsJavaScriptException();
}

// openTun(name?: string, offload?: boolean, queues?: number) -> { fd, fds, name, offload }: a TUN device
// (IFF_TUN: IP packets, IFF_NO_PI: no 4-octet packet information header), non-blocking. The device lives as
// long as one of its fds stays open. offload: IFF_VNET_HDR and TCP segmentation / checksum offload
// (dataplane_gso.h); `offload` in the result says whether the kernel accepted the offloads. queues > 1:
// IFF_MULTI_QUEUE, one fd per queue (fds; fd is the first), one per data plane worker; the kernel spreads
// the packets routed into the device over the queues by flow.
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
  int64_t queues = 1;
  if (info.Length() > 2 && !info[2].IsUndefined() && !GetInt(info, 2, "queues", 1, 64, &queues)) return env.Undefined();
  const bool multi = queues > 1;
  std::vector<int> fds;
  auto fail = [&](bool opening, int e) {
    for (int fd : fds) close(fd);
    ThrowTunError(env, opening, e, name, multi);
    return env.Undefined();
  };
  bool offloaded = offload;
  for (int64_t q = 0; q < queues; q++) {
    const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail(true, errno);
    ifreq ifr;
    std::memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0) | (multi ? IFF_MULTI_QUEUE : 0);
    if (!name.empty()) std::memcpy(ifr.ifr_name, name.data(), name.size());
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      const int e = errno;
      close(fd);
      return fail(false, e);
    }
    fds.push_back(fd);
    name = ifr.ifr_name;  // the later queues attach to the device the first one made
    // Without TUNSETOFFLOAD the kernel segments and checksums itself; the virtio header is then always "none".
    offloaded = offloaded && ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) == 0;
  }
  Napi::Object o = Napi::Object::New(env);
  Napi::Array all = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) all.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
  o.Set("fd", Napi::Number::New(env, fds[0]));
  o.Set("fds", all);
  o.Set("name", Napi::String::New(env, name));
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

void InitTun(Napi::Env env, Napi::Object exports) {
  exports.Set("openTun", Napi::Function::New(env, OpenTun, "openTun"));
#ifdef IKE_TEST_HOOKS
  Napi::Object hooks = Napi::Object::New(env);
  hooks.Set("cut", Napi::Function::New(env, OffloadCut, "cut"));
  hooks.Set("join", Napi::Function::New(env, OffloadJoin, "join"));
  exports.Set("dataplaneOffloadTest", hooks);
#endif
}

}  // namespace dataplane
}  // namespace ike
