#!/bin/sh
# A musl C/C++ cross compiler out of zig (`zig cc` / `zig c++`), for scripts/prebuild.mjs's musl prebuilt addons:
#   CC="scripts/zig-cc.sh cc x86_64-linux-musl"  CXX="scripts/zig-cc.sh c++ x86_64-linux-musl"  (LINK as CXX)
# $ZIG is the zig binary (default: zig on PATH). zig links its own libc++, libc++abi and libunwind statically,
# so the addon needs only musl's libc.so at run time; baseline CPU (any x86-64 / ARMv8-A). When linking the
# shared object, a version script exports the two N-API entry points only: the static C++ runtime stays
# private (bound at link time, not interposed by or interposing on the host's libstdc++). OpenSSL and libuv
# symbols stay undefined, resolved from the node binary at load time, as in the glibc prebuild.
mode=$1
target=$2
shift 2
for a in "$@"; do
  if [ "$a" = -shared ]; then
    set -- "$@" -s "-Wl,--version-script=$(dirname "$0")/napi-exports.map"
    break
  fi
done
exec "${ZIG:-zig}" "$mode" -target "$target" -mcpu=baseline "$@"
