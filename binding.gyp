{
  "targets": [
    {
      "target_name": "ikev1_native",
      "sources": [
        "native/addon.cc",
        "native/dh.cc",
        "native/prf.cc",
        "native/cipher.cc",
        "native/esp.cc",
        "native/dataplane.cc",
        "native/udp.cc",
        "native/sockaddr.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "CLANG_CXX_LANGUAGE_STANDARD": "c++17" }
    }
  ]
}
