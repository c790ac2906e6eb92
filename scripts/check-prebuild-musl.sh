#!/bin/sh
# Loads the musl prebuilt addons (prebuilds/linux-{x64,arm64}/ikev1_native.musl.node, from `npm run prebuild`
# with zig) in a musl runtime and checks them with scripts/check-prebuild.mjs, against this host's glibc node
# as the reference: x64 natively, arm64 under qemu-aarch64. As root on Debian (x64), with zig ($ZIG or on PATH):
#   ZIG=/path/to/zig scripts/check-prebuild-musl.sh
# The runtime is Bun's musl build from npm (@oven/bun-linux-{x64,aarch64}-musl): npm has no musl Node, and Bun
# loads N-API addons. It runs under musl's own loader (Debian's package musl; for arm64 the arm64 .deb unpacked
# into a root for qemu -L). Two things a musl Node has and this Bun lacks are supplied to it:
#   - libstdc++ / libgcc_s (Bun's musl build is linked to them): Debian's glibc-built ones;
#   - OpenSSL's libcrypto symbols (a musl Node exports them: linked to libcrypto.so.3 as Alpine's nodejs, or
#     with OpenSSL built in; Bun has BoringSSL inside, none exported): Debian's libcrypto.so.3, LD_PRELOADed.
# Those glibc-built libraries take a few glibc symbols that musl lacks: scripts/musl-glibc-shim.c (built here
# with zig) gives them. The addon itself is linked to musl's libc.so only (readelf -d), its C++ runtime static.
# Work files in $IKE_MUSL_CHECK_DIR (default /tmp/ike-musl-check), kept for the next run.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
w=${IKE_MUSL_CHECK_DIR:-/tmp/ike-musl-check}
zig=${ZIG:-zig}
bun_version=1.4.5
ref=$(command -v node)
mkdir -p "$w"

# Debian: the x64 musl loader, qemu-user, the glibc libraries; arm64's as files only (apt-get download)
pkgs=
[ -e /lib/ld-musl-x86_64.so.1 ] || pkgs="$pkgs musl"
command -v qemu-aarch64 >/dev/null || pkgs="$pkgs qemu-user"
[ -e /usr/lib/x86_64-linux-gnu/libcrypto.so.3 ] || pkgs="$pkgs libssl3"
if [ -n "$pkgs" ]; then apt-get update -q && apt-get install -y -q $pkgs; fi
if [ ! -e "$w/arm64/lib/ld-musl-aarch64.so.1" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -q; }
  rm -rf "$w/debs" && mkdir -p "$w/debs"
  (cd "$w/debs" && apt-get download musl:arm64 libstdc++6:arm64 libgcc-s1:arm64 libssl3:arm64)
  for d in "$w"/debs/*.deb; do dpkg -x "$d" "$w/arm64"; done
fi

# npm: Bun's musl builds (their package.json says libc musl: --force installs them on this glibc host)
if [ ! -x "$w/npm/node_modules/@oven/bun-linux-aarch64-musl/bin/bun" ]; then
  npm install --prefix "$w/npm" --no-save --no-package-lock --force --no-audit --no-fund \
    "@oven/bun-linux-x64-musl@$bun_version" "@oven/bun-linux-aarch64-musl@$bun_version"
fi

# one library folder per architecture: the glibc-built libraries and the shim, under the name libstdc++ asks for
mkdir -p "$w/x64lib" "$w/arm64lib"
cp -L /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libcrypto.so.3 "$w/x64lib/"
cp -L "$w/arm64/usr/lib/aarch64-linux-gnu/libstdc++.so.6" "$w/arm64/lib/aarch64-linux-gnu/libgcc_s.so.1" "$w/arm64/usr/lib/aarch64-linux-gnu/libcrypto.so.3" "$w/arm64lib/"
"$zig" cc -target x86_64-linux-musl -shared -fPIC -O2 -Wl,-soname,ld-linux-x86-64.so.2 -o "$w/x64lib/ld-linux-x86-64.so.2" "$root/scripts/musl-glibc-shim.c"
"$zig" cc -target aarch64-linux-musl -shared -fPIC -O2 -Wl,-soname,ld-linux-aarch64.so.1 -o "$w/arm64lib/ld-linux-aarch64.so.1" "$root/scripts/musl-glibc-shim.c" 2>/dev/null

# the libc, libcrypto and addon the process has mapped after loading the addon (/proc/self/maps): musl's only
maps='const f = process.argv[process.argv.length - 1]; require(f);
const seen = [...new Set(require("fs").readFileSync("/proc/self/maps", "utf8").split("\n").map((l) => l.split(/\s+/)[5]).filter((p) => /musl|libc\.so|libcrypto|ikev1_native/.test(p ?? "")))];
console.log("mapped: " + seen.join(" "));'

status=0
for arch in x64 arm64; do
  f="$root/prebuilds/linux-$arch/ikev1_native.musl.node"
  [ -e "$f" ] || { echo "check-prebuild-musl: no $f"; status=1; continue; }
  if [ $arch = x64 ]; then
    set -- env LD_LIBRARY_PATH="$w/x64lib" LD_PRELOAD="$w/x64lib/ld-linux-x86-64.so.2:$w/x64lib/libcrypto.so.3" "$w/npm/node_modules/@oven/bun-linux-x64-musl/bin/bun"
  else
    set -- qemu-aarch64 -L "$w/arm64" -E LD_LIBRARY_PATH="$w/arm64lib" -E LD_PRELOAD="$w/arm64lib/ld-linux-aarch64.so.1:$w/arm64lib/libcrypto.so.3" "$w/npm/node_modules/@oven/bun-linux-aarch64-musl/bin/bun"
  fi
  echo "check-prebuild-musl: linux-$arch: $(readelf -d "$f" | grep NEEDED | sed 's/.*Shared library: //' | tr '\n' ' ')"
  "$@" -e "$maps" "$f" || status=1
  "$@" "$root/scripts/check-prebuild.mjs" "$f" --reference "$ref" || status=1
done
exit $status
