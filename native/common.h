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

inline Bytes GetBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Bytes b;
  if (info.Length() <= i || !info[i].IsTypedArray()) {
    ThrowType(info.Env(), std::string(name) + " must be a Buffer or Uint8Array");
    return b;
  }
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), std::string(name) + " must be a Buffer or Uint8Array");
    return b;
  }
  Napi::Uint8Array u8 = ta.As<Napi::Uint8Array>();
  b.data = u8.Data();
  b.size = u8.ByteLength();
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
