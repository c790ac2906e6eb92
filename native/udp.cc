// A UDP socket for the gateway's IKE ports that batches its system calls, where node:dgram pays for each
// datagram: one sendmsg per send, and a 64 KiB buffer allocated (and reallocated) per receive.
//
//   send()  --copy--> queue --sendmmsg x64--> kernel     (once per event-loop turn, at 64 queued, after
//                                                         holdMicros of handling, or flush())
//   kernel --recvmmsg x16--> preallocated slots --copy--> one Buffer per datagram --> one JS call each
//
// One call into JavaScript per datagram, as dgram makes: the microtasks and ticks of one datagram's
// handling run before the next is delivered (see Receive).
//
// Each received datagram also says which local address it arrived on (IP_PKTINFO / IPV6_PKTINFO), and a send
// may name the source address (the same control message): a socket bound to 0.0.0.0 / :: then answers from
// the address the peer wrote to, and NAT detection (RFC 3947 NAT-D) hashes that address, not the wildcard.
//
// Everything runs on the JavaScript thread: a uv_poll_t on the socket's fd tells when it is readable (always
// watched) and writable (watched only while datagrams wait for room in the send buffer).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "sockaddr.h"

namespace ike {
namespace udp {
namespace {

constexpr unsigned kSendBatch = 64;        // datagrams per sendmmsg, and the queue length that flushes at once
constexpr unsigned kRecvSlots = 16;        // datagrams per recvmmsg
constexpr size_t kSlotSize = 65536;        // any UDP payload fits (65507 over IPv4, 65527 over IPv6)
constexpr unsigned kRecvPerWake = 256;     // then back to the loop: a flood must not starve timers and sends
constexpr size_t kQueueMax = 4096;         // the send queue only grows while the socket buffer is full:
constexpr size_t kQueueMaxBytes = 16 << 20;  // beyond either bound datagrams are dropped, not buffered
constexpr size_t kMaxPayload4 = 65535 - 20 - 8, kMaxPayload6 = 65535 - 8;  // IP total / payload length field

std::string EndpointText(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

struct Outgoing {
  std::unique_ptr<uint8_t[]> data;
  size_t size = 0;
  sockaddr_storage to;
  socklen_t toLen = 0;
  sockaddr_storage from;  // the source address to send from; family AF_UNSPEC: the kernel's choice
};

// Room for one IP_PKTINFO or IPV6_PKTINFO control message, each way.
constexpr size_t kPktinfoSpace = CMSG_SPACE(sizeof(in6_pktinfo)) > CMSG_SPACE(sizeof(in_pktinfo))
                                     ? CMSG_SPACE(sizeof(in6_pktinfo))
                                     : CMSG_SPACE(sizeof(in_pktinfo));
union PktinfoBuffer {
  cmsghdr align;
  uint8_t bytes[kPktinfoSpace];
};

// The destination address of a received datagram from its control messages (AF_UNSPEC if none came).
sockaddr_storage ReceivedOn(const msghdr& h) {
  sockaddr_storage ss{};
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&h)); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
      v4->sin_family = AF_INET;
      v4->sin_addr = pi.ipi_addr;  // the header's destination (ipi_spec_dst is a routing guess)
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo pi;
      std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
      auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
      v6->sin6_family = AF_INET6;
      v6->sin6_addr = pi.ipi6_addr;
    }
  }
  return ss;
}

// The control message that makes a datagram leave from `from` (nothing for AF_UNSPEC); the message's length.
size_t SetSource(const sockaddr_storage& from, int socketFamily, PktinfoBuffer* buf) {
  std::memset(buf, 0, sizeof(*buf));
  cmsghdr* c = &buf->align;
  if (from.ss_family == AF_INET && socketFamily == AF_INET) {
    in_pktinfo pi{};
    pi.ipi_spec_dst = reinterpret_cast<const sockaddr_in*>(&from)->sin_addr;
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(pi));
    std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    return CMSG_SPACE(sizeof(pi));
  }
  if (from.ss_family == AF_INET6) {
    in6_pktinfo pi{};
    pi.ipi6_addr = reinterpret_cast<const sockaddr_in6*>(&from)->sin6_addr;  // IPv4-mapped for IPv4 peers
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(pi));
    std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    return CMSG_SPACE(sizeof(pi));
  }
  return 0;
}

struct SendFailure {
  int error;
  sockaddr_storage to;
};

class UdpSocket : public Napi::ObjectWrap<UdpSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UdpSocket",
                       {
                           InstanceMethod<&UdpSocket::Send>("send"),
                           InstanceMethod<&UdpSocket::Flush>("flush"),
                           InstanceMethod<&UdpSocket::Close>("close"),
                           InstanceMethod<&UdpSocket::RefLoop>("ref"),
                           InstanceMethod<&UdpSocket::UnrefLoop>("unref"),
                           InstanceMethod<&UdpSocket::Port>("port"),
                           InstanceMethod<&UdpSocket::Stats>("stats"),
                       });
  }

  // new UdpSocket(address, port, onMessage(datagram), onSendErrors(failures), recvBufferSize, sendBufferSize,
  //               holdMicros)
  //   datagram: [message: Buffer, address: string, port: number], one call each, in the order received
  //   failures: [errno: number, reason: string, address: string, port: number, ...]
  // Buffer sizes of 0 keep the kernel's defaults.
  explicit UdpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      ThrowType(env, "address must be a string");
      return;
    }
    const std::string address = info[0].As<Napi::String>().Utf8Value();
    int64_t port = 0, rcvbuf = 0, sndbuf = 0, hold = 0;
    if (!GetInt(info, 1, "port", 0, 65535, &port)) return;
    if (info.Length() < 4 || !info[2].IsFunction() || !info[3].IsFunction()) {
      ThrowType(env, "onMessage and onSendErrors must be functions");
      return;
    }
    if (!GetInt(info, 4, "recvBufferSize", 0, 0x7fffffff, &rcvbuf) ||
        !GetInt(info, 5, "sendBufferSize", 0, 0x7fffffff, &sndbuf) ||
        !GetInt(info, 6, "holdMicros", 0, 60'000'000, &hold))
      return;
    holdNs_ = static_cast<uint64_t>(hold) * 1000;
    // The family follows the address (a literal with ':' can only be IPv6).
    family_ = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    maxPayload_ = family_ == AF_INET ? kMaxPayload4 : kMaxPayload6;
    sockaddr_storage local;
    socklen_t localLen;
    if (!ParseEndpoint(family_, address, static_cast<int>(port), &local, &localLen)) {
      ThrowRange(env, "address '" + address + "' is not an IPv4 or IPv6 address");
      return;
    }
    const std::string where = EndpointText(address, static_cast<int>(port));
    const int fd = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ThrowErrno(env, errno, "socket", "socket for " + where);
      return;
    }
    // Dual stack like node:dgram's udp6 default: "::" also receives IPv4 (as ::ffff:a.b.c.d).
    const int zero = 0;
    if (family_ == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    // Which address each datagram came to (for IPv4 on a dual-stack socket too, as an IPv4-mapped address).
    const int one = 1;
    if (family_ == AF_INET) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    else setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    // Root (CAP_NET_ADMIN) may go beyond rmem_max / wmem_max; others get at most those.
    const int rb = static_cast<int>(rcvbuf), sb = static_cast<int>(sndbuf);
    if (rb > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb)) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
    if (sb > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof(sb)) != 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
    if (bind(fd, reinterpret_cast<const sockaddr*>(&local), localLen) != 0) {
      const int e = errno;
      close(fd);
      ThrowErrno(env, e, "bind", "bind " + where);
      return;
    }
    sockaddr_storage bound;
    socklen_t boundLen = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLen);
    EndpointAddress(bound, &port_);

    uv_loop_t* loop = nullptr;
    auto* poll = new uv_poll_t;
    int err = napi_get_uv_event_loop(env, &loop) == napi_ok ? uv_poll_init(loop, poll, fd) : UV_EINVAL;
    if (err != 0) {
      delete poll;  // uv_poll_init registers the handle only when it succeeds
      close(fd);
      ThrowErrno(env, -err, "uv_poll_init", "poll " + where);
      return;
    }
    fd_ = fd;
    poll_ = poll;
    poll_->data = this;
    Watch(false);

    slots_.reset(new uint8_t[kRecvSlots * kSlotSize]);  // not zeroed: pages are touched only as datagrams come
    for (unsigned i = 0; i < kRecvSlots; i++) {
      recvIov_[i] = {slots_.get() + i * kSlotSize, kSlotSize};
      recvMsgs_[i].msg_hdr.msg_iov = &recvIov_[i];
      recvMsgs_[i].msg_hdr.msg_iovlen = 1;
      recvMsgs_[i].msg_hdr.msg_name = &from_[i];
      recvMsgs_[i].msg_hdr.msg_control = recvControl_[i].bytes;
    }
    onMessage_ = Napi::Persistent(info[2].As<Napi::Function>());
    onSendErrors_ = Napi::Persistent(info[3].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "IkeUdpSocket");
    // An open socket stays alive (and keeps receiving) without a JS reference, as a dgram socket does.
    Ref();
    // Process exit or worker termination with the socket open: the handle must be closed before the loop is.
    env_ = env;
    hooked_ = napi_add_env_cleanup_hook(env, Teardown, this) == napi_ok;
  }

  // Finalized after close() (an open socket is held by Ref()), or at environment teardown, where Node-API
  // finalizes every wrapped object: then Teardown has usually closed it already, if not this does.
  ~UdpSocket() override { Shutdown(); }

 private:
  bool CheckOpen(Napi::Env env) {
    if (fd_ < 0) Napi::Error::New(env, "socket is closed").ThrowAsJavaScriptException();
    return fd_ >= 0;
  }

  // An Error like node's system errors: message "<what>: <strerror>", code (EADDRINUSE...), errno, syscall.
  static void ThrowErrno(Napi::Env env, int e, const char* syscall, const std::string& what) {
    Napi::Error err = Napi::Error::New(env, what + ": " + std::strerror(e));
    err.Set("code", Napi::String::New(env, uv_err_name(-e)));
    err.Set("errno", Napi::Number::New(env, -e));
    err.Set("syscall", Napi::String::New(env, syscall));
    err.ThrowAsJavaScriptException();
  }

  // send(message, address, port, prefix?, source?) -> false if the queue was full and the datagram was dropped.
  // source: the local address to send from (one the socket's address covers), '' or undefined: the kernel's.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    const Bytes msg = GetBytes(info, 0, "message");
    if (!msg.ok) return env.Undefined();
    if (info.Length() < 2 || !info[1].IsString()) {
      ThrowType(env, "address must be a string");
      return env.Undefined();
    }
    int64_t port = 0;
    if (!GetInt(info, 2, "port", 1, 65535, &port)) return env.Undefined();
    Bytes prefix;
    prefix.ok = true;
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      prefix = GetBytes(info, 3, "prefix");
      if (!prefix.ok) return env.Undefined();
    }
    const size_t size = prefix.size + msg.size;
    if (size > maxPayload_) {
      ThrowRange(env, "datagram of " + std::to_string(size) + " bytes: at most " + std::to_string(maxPayload_) +
                          " fit in one UDP datagram over " + (family_ == AF_INET ? "IPv4" : "IPv6"));
      return env.Undefined();
    }
    Outgoing d;
    const std::string address = info[1].As<Napi::String>().Utf8Value();
    if (!ParseEndpoint(family_, address, static_cast<int>(port), &d.to, &d.toLen)) {
      ThrowRange(env, "address '" + address + "' is not an " +
                          (family_ == AF_INET ? "IPv4 address" : "IPv6 or IPv4 address") + " (the socket's family)");
      return env.Undefined();
    }
    d.from.ss_family = AF_UNSPEC;
    if (info.Length() > 4 && !info[4].IsUndefined()) {
      const std::string source = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : std::string("?");
      socklen_t len;
      if (!source.empty() && !ParseEndpoint(family_, source, 0, &d.from, &len)) {
        ThrowRange(env, "source '" + source + "' is not an address of the socket's family");
        return env.Undefined();
      }
    }
    if (queue_.size() >= kQueueMax || queuedBytes_ + size > kQueueMaxBytes) {
      queueFull_++;
      return Napi::Boolean::New(env, false);
    }
    d.data.reset(new uint8_t[size > 0 ? size : 1]);
    d.size = size;
    if (prefix.size > 0) std::memcpy(d.data.get(), prefix.data, prefix.size);
    if (msg.size > 0) std::memcpy(d.data.get() + prefix.size, msg.data, msg.size);
    queuedBytes_ += size;
    if (queue_.empty()) oldestAt_ = uv_hrtime();
    queue_.push_back(std::move(d));
    if ((queue_.size() >= kSendBatch || uv_hrtime() - oldestAt_ >= holdNs_) && !waitingWritable_) {
      WriteQueue(false);
    }
    return Napi::Boolean::New(env, true);
  }

  // flush(): writes what is queued now, unless the socket buffer is full (then the poll handle retries when
  // the socket is writable again).
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (!waitingWritable_) {
      WriteQueue(false);
    }
    return env.Undefined();
  }

  // close(): one last non-blocking attempt at the queue (what does not fit in the socket buffer is dropped),
  // then the socket is gone. Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return env.Undefined();
    WriteQueue(false);
    Shutdown();
    onMessage_.Reset();  // they reach back to the JS wrapper: a closed socket must not keep it alive
    onSendErrors_.Reset();
    context_.reset();
    Unref();
    return env.Undefined();
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    if (CheckOpen(info.Env())) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }
  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    if (CheckOpen(info.Env())) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value Port(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_); }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
    o.Set("received", n(received_));
    o.Set("sent", n(sent_));
    o.Set("sendErrors", n(sendErrors_));
    o.Set("truncated", n(truncated_));
    o.Set("queueFull", n(queueFull_));
    o.Set("batches", n(batches_));
    o.Set("queued", n(queue_.size()));
    return o;
  }

  // ---------- the socket ----------

  // Readable always; writable only while the queue waits for room, or every turn would wake up for nothing.
  void Watch(bool writable) {
    waitingWritable_ = writable;
    uv_poll_start(poll_, UV_READABLE | (writable ? UV_WRITABLE : 0), OnPoll);
  }

  // Drain, then the failures it met to JS (fromLoop: see ReportFailures).
  void WriteQueue(bool fromLoop) {
    Drain();
    ReportFailures(fromLoop);
  }

  // Writes the queue in order, 64 datagrams per sendmmsg, until it is empty or the socket buffer is full.
  // sendmmsg stops at the first datagram that fails and returns how many went before it (the error itself is
  // lost), so the next call starts with that datagram and gets its errno: a full buffer leaves it queued, any
  // other error drops it alone (failures_, for the JS callback).
  void Drain() {
    while (!queue_.empty()) {
      const unsigned n = static_cast<unsigned>(std::min<size_t>(queue_.size(), kSendBatch));
      for (unsigned i = 0; i < n; i++) {
        Outgoing& d = queue_[i];
        sendIov_[i] = {d.data.get(), d.size};
        msghdr& h = sendMsgs_[i].msg_hdr;
        h = msghdr{};
        h.msg_name = &d.to;
        h.msg_namelen = d.toLen;
        h.msg_iov = &sendIov_[i];
        h.msg_iovlen = 1;
        const size_t control = SetSource(d.from, family_, &sendControl_[i]);
        if (control > 0) {
          h.msg_control = sendControl_[i].bytes;
          h.msg_controllen = control;
        }
      }
      const int r = sendmmsg(fd_, sendMsgs_, n, MSG_DONTWAIT);
      if (r > 0) {
        for (int i = 0; i < r; i++) {
          queuedBytes_ -= queue_.front().size;
          queue_.pop_front();
        }
        sent_ += static_cast<uint64_t>(r);
        continue;
      }
      const int e = r < 0 ? errno : EAGAIN;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
        if (poll_ != nullptr && !waitingWritable_) Watch(true);
        return;
      }
      failures_.push_back({e, queue_.front().to});
      sendErrors_++;
      queuedBytes_ -= queue_.front().size;
      queue_.pop_front();
    }
    if (poll_ != nullptr && waitingWritable_) Watch(false);
  }

  // What runs from the poll callback talks to JavaScript through Node-API directly and stops at the first
  // failing status. When the environment stops running JS (a worker terminated, process.exit()), every call
  // fails: node-addon-api would make that a C++ exception, or abort the process when not even the Error can
  // be made. Then the datagrams of this wake-up are simply not delivered.

  // Hands the failures of the last Drain to JS: [errno, reason, address, port, ...]. From the poll callback
  // (fromLoop) through napi_make_callback, so that the microtasks and ticks it queues run afterwards; from a
  // JS call (send, flush) as a plain call, whose exception goes back to that caller.
  void ReportFailures(bool fromLoop) {
    if (failures_.empty()) return;
    std::vector<SendFailure> failures;
    failures.swap(failures_);
    if (onSendErrors_.IsEmpty()) return;
    Scope scope(env_);
    napi_value a;
    if (!scope.ok || napi_create_array_with_length(env_, failures.size() * 4, &a) != napi_ok) return;
    uint32_t k = 0;
    for (const SendFailure& f : failures) {
      int port = 0;
      const std::string address = EndpointAddress(f.to, &port);
      if (!SetElement(a, k++, Int(-f.error)) || !SetElement(a, k++, Str(std::strerror(f.error))) ||
          !SetElement(a, k++, Str(address)) || !SetElement(a, k++, Int(port)))
        return;
    }
    Call(onSendErrors_, a, fromLoop);
  }

  // Reads until the socket is empty or kRecvPerWake datagrams came, in recvmmsg batches, and hands each
  // datagram to JS in a call of its own, as dgram does: the microtasks and ticks one datagram's handling
  // queues run before the next datagram arrives. (The gateway's exchanges count on that: given two of a
  // batch at once, a machine still awaiting inside the first would see the second mid-step.) The system
  // calls are what is batched; the 64 KiB allocation per datagram of libuv's reads is gone either way.
  void Receive() {
    for (unsigned total = 0; total < kRecvPerWake && fd_ >= 0;) {
      for (unsigned i = 0; i < kRecvSlots; i++) {
        recvMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        recvMsgs_[i].msg_hdr.msg_controllen = sizeof(PktinfoBuffer);
      }
      const int r = recvmmsg(fd_, recvMsgs_, kRecvSlots, MSG_DONTWAIT, nullptr);
      if (r < 0) {
        if (errno == EINTR) continue;
        break;  // EAGAIN: done; anything else (an ICMP error reported here): this wake-up ends, polling goes on
      }
      if (r == 0) break;
      total += static_cast<unsigned>(r);
      batches_++;
      for (int i = 0; i < r && fd_ >= 0 && !onMessage_.IsEmpty(); i++) {  // onMessage may close the socket
        const msghdr& h = recvMsgs_[i].msg_hdr;
        if (h.msg_flags & MSG_TRUNC) {
          truncated_++;
          continue;
        }
        received_++;
        const uint64_t start = uv_hrtime();
        if (!Deliver(static_cast<const uint8_t*>(recvIov_[i].iov_base), recvMsgs_[i].msg_len, from_[i], ReceivedOn(h)))
          return;
        if (fd_ >= 0 && !queue_.empty() && !waitingWritable_) {
          const uint64_t now = uv_hrtime();
          if (now - start >= holdNs_ || now - oldestAt_ >= holdNs_) {
            WriteQueue(true);
          }
        }
      }
      if (r < static_cast<int>(kRecvSlots)) break;  // drained: spare the recvmmsg that would say EAGAIN
    }
  }

  // One datagram to onMessage as [message, address, port, local address ('' if unknown)]; false if JS cannot
  // be reached any more.
  bool Deliver(const uint8_t* data, size_t len, const sockaddr_storage& from, const sockaddr_storage& to) {
    Scope scope(env_);
    int port = 0, unused = 0;
    const std::string address = EndpointAddress(from, &port);
    const std::string local = to.ss_family == AF_UNSPEC ? std::string() : EndpointAddress(to, &unused);
    napi_value one, buf;
    void* copy = nullptr;
    return scope.ok && napi_create_array_with_length(env_, 4, &one) == napi_ok &&
           napi_create_buffer_copy(env_, len, data, &copy, &buf) == napi_ok && SetElement(one, 0, buf) &&
           SetElement(one, 1, Str(address)) && SetElement(one, 2, Int(port)) && SetElement(one, 3, Str(local)) &&
           Call(onMessage_, one, true);
  }

  // fn(arg) with this socket as `this`. fromLoop: no JS below on the stack, so through napi_make_callback with
  // the socket's async context, like a dgram 'message', and an exception becomes the process's uncaught
  // exception. False if JS cannot be reached.
  bool Call(const Napi::FunctionReference& ref, napi_value arg, bool fromLoop) {
    napi_value fn = nullptr, self = nullptr, result;
    if (ref.IsEmpty() || napi_get_reference_value(env_, ref, &fn) != napi_ok || fn == nullptr ||
        napi_get_reference_value(env_, _ref, &self) != napi_ok || self == nullptr)
      return false;
    if (!fromLoop) return napi_call_function(env_, self, fn, 1, &arg, &result) == napi_ok;
    const napi_status st = napi_make_callback(env_, *context_, self, fn, 1, &arg, &result);
    if (st == napi_pending_exception) {
      napi_value e;
      if (napi_get_and_clear_last_exception(env_, &e) != napi_ok) return false;
      return napi_fatal_exception(env_, e) == napi_ok;
    }
    return st == napi_ok;
  }

  bool SetElement(napi_value array, uint32_t i, napi_value v) {
    return v != nullptr && napi_set_element(env_, array, i, v) == napi_ok;
  }
  napi_value Int(int v) {
    napi_value r = nullptr;
    return napi_create_int32(env_, v, &r) == napi_ok ? r : nullptr;
  }
  napi_value Str(const std::string& s) {
    napi_value r = nullptr;
    return napi_create_string_utf8(env_, s.data(), s.size(), &r) == napi_ok ? r : nullptr;
  }

  // A handle scope that may fail to open (ok false), closed on the way out.
  struct Scope {
    napi_env env;
    napi_handle_scope scope = nullptr;
    bool ok;
    explicit Scope(napi_env e) : env(e), ok(napi_open_handle_scope(e, &scope) == napi_ok) {}
    ~Scope() {
      if (ok) napi_close_handle_scope(env, scope);
    }
  };

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    static_cast<UdpSocket*>(handle->data)->OnEvents(status, events);
  }

  void OnEvents(int status, int events) {
    if (status < 0) {
      // libuv stops the handle when the socket reports POLLERR (a pending socket error). Reading SO_ERROR
      // clears it; then poll again. A descriptor that cannot even answer that stays unwatched.
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return;
      Watch(waitingWritable_);
      events = UV_READABLE | (waitingWritable_ ? UV_WRITABLE : 0);
    }
    // Held while in here: JS may close the socket (dropping the reference an open socket keeps on itself),
    // and the object must outlive this call. Raw Node-API, see ReportFailures.
    Scope scope(env_);
    uint32_t refs = 0;
    if (!scope.ok || napi_reference_ref(env_, _ref, &refs) != napi_ok) return;
    if (events & UV_WRITABLE) {
      WriteQueue(true);
    }
    if ((events & UV_READABLE) && fd_ >= 0) Receive();
    napi_reference_unref(env_, _ref, &refs);
  }

  // Stops polling, frees the handle (in its close callback: libuv owns it until then), closes the fd.
  void Shutdown() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    queue_.clear();
    queuedBytes_ = 0;
    waitingWritable_ = false;
    if (hooked_) napi_remove_env_cleanup_hook(env_, Teardown, this);
    hooked_ = false;
  }

  // Environment cleanup hook: no JS any more, only the handle and the fd.
  static void Teardown(void* arg) {
    auto* self = static_cast<UdpSocket*>(arg);
    self->hooked_ = false;
    self->Shutdown();
  }

  int fd_ = -1;
  int family_ = AF_INET;
  int port_ = 0;
  size_t maxPayload_ = kMaxPayload4;
  uv_poll_t* poll_ = nullptr;
  bool waitingWritable_ = false;
  napi_env env_ = nullptr;
  bool hooked_ = false;
  Napi::FunctionReference onMessage_, onSendErrors_;
  std::unique_ptr<Napi::AsyncContext> context_;

  std::deque<Outgoing> queue_;
  size_t queuedBytes_ = 0;
  uint64_t oldestAt_ = 0;  // uv_hrtime() when the queue last went from empty to not
  // How long a queued datagram may wait for company while JavaScript keeps working (holdMicros).
  uint64_t holdNs_ = 100'000;
  std::vector<SendFailure> failures_;
  mmsghdr sendMsgs_[kSendBatch];
  iovec sendIov_[kSendBatch];
  PktinfoBuffer sendControl_[kSendBatch];

  std::unique_ptr<uint8_t[]> slots_;
  mmsghdr recvMsgs_[kRecvSlots] = {};
  iovec recvIov_[kRecvSlots];
  sockaddr_storage from_[kRecvSlots];
  PktinfoBuffer recvControl_[kRecvSlots];

  uint64_t received_ = 0, sent_ = 0, sendErrors_ = 0, truncated_ = 0, queueFull_ = 0, batches_ = 0;
};

}  // namespace
}  // namespace udp
}  // namespace ike

void InitUdp(Napi::Env env, Napi::Object exports) { exports.Set("UdpSocket", ike::udp::UdpSocket::Define(env)); }
