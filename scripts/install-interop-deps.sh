#!/usr/bin/env bash
# Install what the interop tests (test/interop/) need, from Debian's packages:
#   strongSwan 5.9.8 (charon + swanctl + the kernel-libipsec user-space ESP plugin), tshark/dumpcap
#   (capture + decryption checks), ping and ip (namespaces), iperf3 (throughput through the tunnel),
#   iptables (the NAT router of test/interop/nat.test.ts), libipsec-mb-dev (intel-ipsec-mb: the addon's
#   second ESP engine, native/esp_mb.cc, built in when binding.gyp finds it; so CI builds and tests both engines),
#   Libreswan 4.10's pluto (test/interop/libreswan.test.ts; see below for why it is unpacked, not installed),
#   vpnc, the real Cisco-style client of test/interop/vpnc.test.ts, and ike-scan (with psk-crack) for
#   test/interop/ike-scan.test.ts.
# Idempotent: packages already installed are skipped, and nothing is fetched when all are present.
# Must run as root (CI runs it before `npm install`). Set IKE_SKIP_INTEROP_DEPS=1 to skip it.
set -euo pipefail

if [ "${IKE_SKIP_INTEROP_DEPS:-0}" = 1 ]; then
  echo "install-interop-deps: skipped (IKE_SKIP_INTEROP_DEPS=1)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-interop-deps: not root; the interop tests will be skipped" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-interop-deps: no apt-get (not Debian/Ubuntu); install strongSwan 5.9 + tshark yourself" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# tshark pulls wireshark-common, which asks whether non-root users may capture: answer "no" up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections

# libstrongswan-standard-plugins brings the openssl plugin (ECP groups, AES-GCM); it is only a
# "Recommends" of strongswan-charon, and recommends are not installed below.
# libcharon-extauth-plugins ships xauth-generic (the remote-access tests' XAUTH with swanctl secrets).
# openssl (the command) makes the certificate tests' CA chains (test/ike/pki.ts) and `ike demo --auth cert`'s.
want=(strongswan-charon strongswan-swanctl libstrongswan-standard-plugins libcharon-extra-plugins
      libcharon-extauth-plugins libstrongswan-extra-plugins tshark iputils-ping iproute2 iperf3 iptables openssl
      libipsec-mb-dev vpnc ike-scan)
# Libreswan: Debian's package conflicts with strongSwan's (both ship /usr/sbin/ipsec and the ipsec service), so
# apt would remove strongSwan. Its programs are unpacked instead into /usr/libexec/ipsec, where pluto looks for
# addconn and whack by compiled-in path and which strongSwan (/usr/lib/ipsec) does not use; the libraries and
# tools they need (the package's Depends) are installed as packages.
want+=(libnss3-tools libnss3 libnspr4 libevent-core-2.1-7 libevent-pthreads-2.1-7 libldns3 libunbound8 libcurl3-nss
       libcap-ng0 libaudit1 libldap-2.5-0 libpam0g libselinux1 libsystemd0 libcrypt1 dns-root-data)
missing=()
for p in "${want[@]}"; do
  # "install ok installed" only: a removed package leaves a "deinstall ... config-files" entry
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-interop-deps: installing ${missing[*]}"
  apt-get update -qq
  updated=1
  # --no-install-recommends keeps the strongswan-starter/ipsec service out: the tests run charon themselves
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x /usr/libexec/ipsec/pluto ]; then
  echo "install-interop-deps: unpacking Libreswan's programs into /usr/libexec/ipsec"
  [ "$updated" = 1 ] || apt-get update -qq
  tmp=$(mktemp -d)
  # the download runs as root in a directory _apt cannot write: say so instead of warning
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root libreswan >/dev/null)
  dpkg-deb -x "$tmp"/libreswan_*.deb "$tmp/root"
  mkdir -p /usr/libexec
  cp -a "$tmp/root/usr/libexec/ipsec" /usr/libexec/ipsec
  rm -rf "$tmp"
fi

# A system charon started by the package (if any) is never used: each test charon gets a private /run.

# Debian/Ubuntu ship AppArmor profiles for charon and swanctl that only allow their system paths
# (/etc/strongswan*, /run/charon.*). The tests give each charon its own config, log and vici socket
# under $IKE_INTEROP_DIR (default /tmp/ike-interop), which an enforcing profile denies. Where AppArmor
# is active, unload those two profiles from the kernel (until the next reload / boot). This is a CI /
# test machine step; skip it with IKE_KEEP_APPARMOR=1 and point IKE_INTEROP_DIR somewhere allowed.
if [ "${IKE_KEEP_APPARMOR:-0}" != 1 ] && [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] \
   && command -v apparmor_parser >/dev/null 2>&1; then
  for prof in /etc/apparmor.d/usr.lib.ipsec.charon /etc/apparmor.d/usr.sbin.swanctl; do
    if [ -f "$prof" ] && grep -q "$(basename "$prof" | sed 's/^usr\./\/usr\//; s/\./\//g')" /sys/kernel/security/apparmor/profiles 2>/dev/null; then
      apparmor_parser -R "$prof" && echo "install-interop-deps: unloaded AppArmor profile $prof"
    fi
  done
fi
echo "install-interop-deps: strongSwan $(/usr/lib/ipsec/charon --version 2>&1 | head -1 || echo '?')"
echo "install-interop-deps: $(tshark --version 2>/dev/null | head -1 || echo 'tshark ?')"
echo "install-interop-deps: intel-ipsec-mb $(dpkg-query -W -f='${Version}' libipsec-mb-dev 2>/dev/null || echo '?')"
echo "install-interop-deps: $(/usr/libexec/ipsec/pluto --version 2>&1 | head -1 || echo 'Libreswan ?')"
echo "install-interop-deps: $(vpnc --version 2>&1 | head -1 || echo 'vpnc ?')"
