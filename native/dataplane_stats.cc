// The data plane's counters as JavaScript objects (dataplane_stats.h).
#include "dataplane_stats.h"

#include <initializer_list>
#include <utility>

namespace ike {
namespace dataplane {
namespace {

// An object of named counters.
Napi::Object Numbers(Napi::Env env, std::initializer_list<std::pair<const char*, uint64_t>> fields) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& f : fields) o.Set(f.first, Napi::Number::New(env, static_cast<double>(f.second)));
  return o;
}

}  // namespace

Napi::Object CountersObject(Napi::Env env, const Counters& c) {
  Napi::Object o = Numbers(env, {{"tunPackets", c.tunPackets},
                                 {"tunBytes", c.tunBytes},
                                 {"tsoPackets", c.tsoPackets},
                                 {"groPackets", c.groPackets},
                                 {"espSent", c.espSent},
                                 {"espReceived", c.espReceived},
                                 {"delivered", c.delivered},
                                 {"ikeReceived", c.ikeReceived},
                                 {"ikeSent", c.ikeSent},
                                 {"keepalives", c.keepalives},
                                 {"handedOver", c.handedOver}});
  o.Set("drops", Numbers(env, {{"noOutboundSa", c.noOutboundSa},
                               {"unknownSpi", c.unknownSpi},
                               {"authFailed", c.authFailed},
                               {"replay", c.replay},
                               {"selectorMismatch", c.selectorMismatch},
                               {"malformed", c.malformed},
                               {"seqOverflow", c.seqOverflow},
                               {"sendFailed", c.sendFailed},
                               {"tunWriteFailed", c.tunWriteFailed},
                               {"ikeQueueFull", c.ikeQueueFull},
                               {"dummy", c.dummy},
                               {"other", c.other},
                               {"handoverDropped", c.handoverDropped}}));
  return o;
}

Napi::Object SaObject(Napi::Env env, const SaEntry& e) {
  Napi::Object s = Numbers(env, {{"spi", e.spi},
                                 {"packets", e.packets},
                                 {"bytes", e.bytes},
                                 {"authFailed", e.authFailed},
                                 {"replay", e.replay},
                                 {"selectorMismatch", e.selectorMismatch},
                                 {"malformed", e.malformed}});
  s.Set("direction", Napi::String::New(env, e.outbound ? "outbound" : "inbound"));
  return s;
}

Napi::Object WorkerObject(Napi::Env env, const Counters& c, uint64_t sas) {
  return Numbers(env, {{"sas", sas},
                       {"tunPackets", c.tunPackets},
                       {"espSent", c.espSent},
                       {"espReceived", c.espReceived},
                       {"delivered", c.delivered},
                       {"handedOver", c.handedOver}});
}

}  // namespace dataplane
}  // namespace ike
