// The data plane's counters as JavaScript objects (dataplane_stats.h).
#include "dataplane_stats.h"

namespace ike {
namespace dataplane {

Napi::Object CountersObject(Napi::Env env, const Counters& c) {
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
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
  o.Set("handedOver", n(c.handedOver));
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
  d.Set("handoverDropped", n(c.handoverDropped));
  o.Set("drops", d);
  return o;
}

Napi::Object SaObject(Napi::Env env, const SaEntry& e) {
  auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
  Napi::Object s = Napi::Object::New(env);
  s.Set("spi", n(e.spi));
  s.Set("direction", Napi::String::New(env, e.outbound ? "outbound" : "inbound"));
  s.Set("packets", n(e.packets));
  s.Set("bytes", n(e.bytes));
  s.Set("authFailed", n(e.authFailed));
  s.Set("replay", n(e.replay));
  s.Set("selectorMismatch", n(e.selectorMismatch));
  s.Set("malformed", n(e.malformed));
  return s;
}

Napi::Object WorkerObject(Napi::Env env, const Counters& c, uint64_t sas) {
  auto n = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
  Napi::Object x = Napi::Object::New(env);
  x.Set("sas", n(sas));
  x.Set("tunPackets", n(c.tunPackets));
  x.Set("espSent", n(c.espSent));
  x.Set("espReceived", n(c.espReceived));
  x.Set("delivered", n(c.delivered));
  x.Set("handedOver", n(c.handedOver));
  return x;
}

}  // namespace dataplane
}  // namespace ike
