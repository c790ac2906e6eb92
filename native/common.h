// Shared argument checking for every entry point of the addon: a caller that passes the wrong
// type or size gets a TypeError/RangeError, never a crash.
#pragma once
#include <napi.h>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ike {

inline bool ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}
inline bool ThrowRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  return false;
}

// A view of a Buffer/Uint8Array argument. ok == false means an exception is pending.
struct Bytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool ok = false;
};

// One napi_get_typedarray_info call answers "is it a typed array, which kind, where, how long" (it fails
// with a status, not an exception, for anything else); the node-addon-api wrappers made three calls per
// argument, which added up on the handshake path where every crypto call passes several small buffers.
inline Bytes GetBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Bytes b;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (info.Length() <= i ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    ThrowType(info.Env(), std::string(name) + " must be a Buffer or Uint8Array");
    return b;
  }
  b.data = static_cast<const uint8_t*>(data);
  b.size = length;
  b.ok = true;
  return b;
}

// An integer argument in [lo, hi]. Returns false with an exception pending otherwise.
inline bool GetInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi,
                   int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    return ThrowType(info.Env(), std::string(name) + " must be a number");
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    return ThrowRange(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " +
                                      std::to_string(hi) + "]");
  }
  *out = static_cast<int64_t>(d);
  return true;
}

}  // namespace ike
