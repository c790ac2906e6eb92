// Helpers used only by the ESP data path (esp.cc): typed-array arguments, big-endian loads/stores.
// Kept apart from common.h, which other parts of the addon share.
#pragma once
#include <napi.h>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common.h"

namespace ike {
namespace esp {

// A typed-array argument of element type T (Uint8Array/Buffer or Uint32Array). `data` is writable: the
// batch calls write statuses, lengths and packets into caller-owned memory. A detached or empty array
// gives data == nullptr and length 0, which every bounds check below rejects before a dereference.
template <typename T>
struct View {
  T* data = nullptr;
  size_t length = 0;  // in elements
  bool ok = false;
};

template <typename T>
inline View<T> GetView(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type want,
                       const char* typeName) {
  View<T> v;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value arrayBuffer;
  size_t byteOffset = 0;
  // One napi_get_typedarray_info call per argument (it answers napi_invalid_arg for anything that is not a
  // typed array): the batch entry points pay these per batch, not per packet.
  if (info.Length() <= i ||
      napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, &arrayBuffer, &byteOffset) != napi_ok ||
      type != want) {
    ThrowType(info.Env(), std::string(name) + " must be a " + typeName);
    return v;
  }
  if (data != nullptr && length != 0) {  // data already points at element 0 (byteOffset applied)
    v.data = static_cast<T*>(data);
    v.length = length;
  }
  v.ok = true;
  return v;
}

inline View<uint8_t> GetU8(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return GetView<uint8_t>(info, i, name, napi_uint8_array, "Buffer or Uint8Array");
}
inline View<uint32_t> GetU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return GetView<uint32_t>(info, i, name, napi_uint32_array, "Uint32Array");
}

inline bool GetBool(const Napi::CallbackInfo& info, size_t i, const char* name, bool* out) {
  if (info.Length() <= i || !info[i].IsBoolean()) return ThrowType(info.Env(), std::string(name) + " must be a boolean");
  *out = info[i].As<Napi::Boolean>().Value();
  return true;
}

inline bool GetString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) return ThrowType(info.Env(), std::string(name) + " must be a string");
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline uint32_t GetBe32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}
inline void PutBe64(uint8_t* p, uint64_t v) {
  PutBe32(p, static_cast<uint32_t>(v >> 32));
  PutBe32(p + 4, static_cast<uint32_t>(v));
}

// True when [off, off + len) lies inside a buffer of `size` bytes (no overflow: all values fit in 64 bits).
inline bool InBounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

// True when the byte ranges [a, a + al) and [b, b + bl) share at least one byte.
inline bool Overlaps(const uint8_t* a, size_t al, const uint8_t* b, size_t bl) {
  uintptr_t x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return al != 0 && bl != 0 && x < y + bl && y < x + al;
}

}  // namespace esp
}  // namespace ike
