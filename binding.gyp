{
  # intel-ipsec-mb (libipsec-mb-dev) found: the ESP engine of native/esp_mb.cc is built in (IKE_HAVE_IPSEC_MB);
  # otherwise the addon has the OpenSSL EVP engine only. scripts/detect-ipsec-mb.mjs decides (and says how to
  # get the library when it is missing); IKE_NO_IPSEC_MB=1 forces the EVP-only build (the prebuilt binaries:
  # they must load where the library is not installed).
  # ike_test_hooks: the test binary is not built for a package (IKE_PRODUCTION_BUILD=1, scripts/install-native.mjs
  # and scripts/prebuild.mjs).
  "variables": {
    "ipsec_mb%": "<!(node scripts/detect-ipsec-mb.mjs)",
    "ike_test_hooks%": "<!(node -p \"process.env.IKE_PRODUCTION_BUILD === '1' ? 0 : 1\")"
  },
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra"],
    "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17" },
    "conditions": [["ipsec_mb==1", { "defines": ["IKE_HAVE_IPSEC_MB"], "libraries": ["-lIPSec_MB"] }]]
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
      "sources": ["native/addon.cc", "native/esp.cc", "native/esp_mb.cc", "native/dataplane.cc", "native/dataplane_worker.cc", "native/dataplane_handover.cc", "native/dataplane_stats.cc", "native/dataplane_sockets.cc", "native/sa_table.cc", "native/tun.cc", "native/raw_esp.cc"]
    }
  ],
  "conditions": [
    # The same addon plus the benchmark and fault-injection hooks (IKE_TEST_HOOKS), for tests and benchmarks
    # only (nativeTestAddon() in ts/native.ts).
    ["ike_test_hooks==1", {
      "targets": [
        {
          "target_name": "ikev1_native_test",
          "dependencies": ["ikev1_common"],
          "defines": ["IKE_TEST_HOOKS"],
          "sources": ["native/addon.cc", "native/esp.cc", "native/esp_mb.cc", "native/dataplane.cc", "native/dataplane_worker.cc", "native/dataplane_handover.cc", "native/dataplane_stats.cc", "native/dataplane_sockets.cc", "native/sa_table.cc", "native/tun.cc", "native/raw_esp.cc"]
        }
      ]
    }]
  ]
}
