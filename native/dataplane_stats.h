// The data plane's counters as JavaScript objects, for DataPlane.stats() (dataplane.cc).
#pragma once
#include <napi.h>

#include <cstdint>

#include "dataplane.h"
#include "sa_table.h"

namespace ike {
namespace dataplane {

// The totals: the counters, drops by reason under `drops`.
Napi::Object CountersObject(Napi::Env env, const Counters& c);
// One SA's counters.
Napi::Object SaObject(Napi::Env env, const SaEntry& e);
// One worker: the SAs it owns and its traffic, so that the spread over the cores can be seen.
Napi::Object WorkerObject(Napi::Env env, const Counters& c, uint64_t sas);

}  // namespace dataplane
}  // namespace ike
