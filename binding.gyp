{
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra"],
    "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17" }
  },
  "targets": [
    {
      # The sources that have no test hooks, compiled once for both addons.
      "target_name": "ikev1_common",
      "type": "static_library",
      "cflags": ["-fPIC"],
      "sources": ["native/dh.cc", "native/prf.cc", "native/cipher.cc", "native/udp.cc", "native/sockaddr.cc", "native/sig.cc"]
    },
    {
      # The production addon, the one the engine loads.
      "target_name": "ikev1_native",
      "dependencies": ["ikev1_common"],
      "sources": ["native/addon.cc", "native/esp.cc", "native/dataplane.cc"]
    },
    {
      # The same addon plus the benchmark and fault-injection hooks (IKE_TEST_HOOKS), for tests and
      # benchmarks only (nativeTestAddon() in ts/native.ts).
      "target_name": "ikev1_native_test",
      "dependencies": ["ikev1_common"],
      "defines": ["IKE_TEST_HOOKS"],
      "sources": ["native/addon.cc", "native/esp.cc", "native/dataplane.cc"]
    }
  ]
}
