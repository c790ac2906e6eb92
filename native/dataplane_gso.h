// TCP segmentation offload for the TUN device, done by the data plane (native/dataplane.cc).
//
// A TUN device opened with IFF_VNET_HDR and offloads (TUNSETOFFLOAD: TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
// hands out TCP "super-packets" of up to 64 KiB, each behind a virtio_net_hdr that says how to cut it
// (gso_size = MSS), and packets whose TCP/UDP checksum is left for the device to finish (NEEDS_CSUM).
// One read then carries ~45 MSS-sized segments instead of one: fewer system calls, and one trip through the
// kernel's TCP output path per 64 KiB. The data plane cuts the segments itself, each a normal IP packet
// with its own checksums, before sealing (what a NIC with TSO would do in hardware, or the kernel's GSO).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <sys/uio.h>

namespace ike {
namespace dataplane {

// struct virtio_net_hdr (linux/virtio_net.h), native byte order: a TUN device uses the host's order unless
// TUNSETVNETBE/LE says otherwise (little-endian hosts only here: x86-64, arm64).
struct VnetHdr {
  uint8_t flags;
  uint8_t gsoType;
  uint16_t hdrLen;
  uint16_t gsoSize;
  uint16_t csumStart;
  uint16_t csumOffset;
};
static_assert(sizeof(VnetHdr) == 10, "virtio_net_hdr is 10 octets");
constexpr uint8_t kVnetNeedsCsum = 1;
constexpr uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoTcpV6 = 4, kGsoEcn = 0x80;

// Internet checksum (RFC 1071) pieces. The one's complement sum does not depend on byte order, so it is
// summed in native order 32 bits at a time and stored back with memcpy, never swapped.
inline uint64_t SumBytes(const uint8_t* p, size_t len, uint64_t acc) {
  while (len >= 8) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + 4, 4);
    acc += a;
    acc += b;
    p += 8;
    len -= 8;
  }
  while (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    acc += w;
    p += 2;
    len -= 2;
  }
  if (len != 0) {
    uint16_t w = 0;
    std::memcpy(&w, p, 1);  // the odd octet is the first of a zero-padded 16-bit word, in memory order
    acc += w;
  }
  return acc;
}

inline uint16_t FoldComplement(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

inline void StoreChecksum(uint8_t* at, uint64_t acc) {
  const uint16_t c = FoldComplement(acc);
  std::memcpy(at, &c, 2);
}

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline void PutBe16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// NEEDS_CSUM: the checksum field holds the pseudo-header sum; the rest is summed from csum_start to the end.
inline bool FinishChecksum(uint8_t* pkt, size_t len, const VnetHdr& h) {
  if (static_cast<size_t>(h.csumStart) + h.csumOffset + 2 > len) return false;
  StoreChecksum(pkt + h.csumStart + h.csumOffset, SumBytes(pkt + h.csumStart, len - h.csumStart, 0));
  return true;
}

// Geometry of a TSO super-packet: IP header(s) up to l4 (= csum_start), TCP header, payload cut in mss pieces.
struct TsoPlan {
  size_t l4 = 0, hdr = 0, payload = 0, mss = 0;
  unsigned segments = 0;
  bool v6 = false;
};

inline bool PlanTso(const uint8_t* pkt, size_t len, const VnetHdr& h, TsoPlan* t) {
  const uint8_t type = h.gsoType & static_cast<uint8_t>(~kGsoEcn);
  if (type != kGsoTcpV4 && type != kGsoTcpV6) return false;
  t->v6 = type == kGsoTcpV6;
  if (len < 1 || (pkt[0] >> 4) != (t->v6 ? 6 : 4)) return false;
  t->l4 = h.csumStart;
  const size_t minIp = t->v6 ? 40 : static_cast<size_t>(pkt[0] & 15) * 4;
  if (t->l4 < minIp || minIp < 20 || t->l4 + 20 > len) return false;
  if (!t->v6 && t->l4 != minIp) return false;  // IPv4: TCP right after the header
  const size_t tcpLen = static_cast<size_t>(pkt[t->l4 + 12] >> 4) * 4;
  t->hdr = t->l4 + tcpLen;
  if (tcpLen < 20 || t->hdr > len || h.gsoSize == 0) return false;
  t->payload = len - t->hdr;
  t->mss = h.gsoSize;
  t->segments = static_cast<unsigned>((t->payload + t->mss - 1) / t->mss);
  return t->segments != 0;
}

// Writes segment i of the plan to dst (room for hdr + mss octets) as a complete IP packet; returns its length.
// Per segment: IP total / payload length, IPv4 identification + 1 per segment and header checksum, TCP
// sequence number, FIN/PSH only on the last segment, CWR only on the first, a full TCP checksum.
inline size_t CutSegment(const uint8_t* pkt, const TsoPlan& t, unsigned i, uint8_t* dst) {
  const size_t off = static_cast<size_t>(i) * t.mss;
  const size_t seg = t.payload - off < t.mss ? t.payload - off : t.mss;
  std::memcpy(dst, pkt, t.hdr);
  std::memcpy(dst + t.hdr, pkt + t.hdr + off, seg);
  const size_t total = t.hdr + seg;
  uint8_t* tcp = dst + t.l4;
  const size_t tcpTotal = total - t.l4;
  uint8_t pseudo[40];
  size_t pseudoLen;
  if (t.v6) {
    PutBe16(dst + 4, static_cast<uint32_t>(total - 40));
    std::memcpy(pseudo, dst + 8, 32);  // source, destination
    pseudo[32] = pseudo[33] = 0;
    PutBe16(pseudo + 34, static_cast<uint32_t>(tcpTotal));  // 32-bit upper-layer length
    pseudo[36] = pseudo[37] = pseudo[38] = 0;
    pseudo[39] = 6;
    pseudoLen = 40;
  } else {
    PutBe16(dst + 2, static_cast<uint32_t>(total));
    PutBe16(dst + 4, Be16(pkt + 4) + i);
    dst[10] = dst[11] = 0;
    StoreChecksum(dst + 10, SumBytes(dst, t.l4, 0));
    std::memcpy(pseudo, dst + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    PutBe16(pseudo + 10, static_cast<uint32_t>(tcpTotal));
    pseudoLen = 12;
  }
  const uint32_t seq = ((static_cast<uint32_t>(pkt[t.l4 + 4]) << 24) | (pkt[t.l4 + 5] << 16) | (pkt[t.l4 + 6] << 8) |
                        pkt[t.l4 + 7]) + static_cast<uint32_t>(off);
  tcp[4] = static_cast<uint8_t>(seq >> 24);
  tcp[5] = static_cast<uint8_t>(seq >> 16);
  tcp[6] = static_cast<uint8_t>(seq >> 8);
  tcp[7] = static_cast<uint8_t>(seq);
  if (i + 1 != t.segments) tcp[13] &= static_cast<uint8_t>(~0x09);  // FIN, PSH
  if (i != 0) tcp[13] &= static_cast<uint8_t>(~0x80);               // CWR
  tcp[16] = tcp[17] = 0;
  StoreChecksum(tcp + 16, SumBytes(tcp, tcpTotal, SumBytes(pseudo, pseudoLen, 0)));
  return total;
}

// ---------- receive side: joining TCP segments before the TUN write (user-space GRO) ----------
//
// The peer's segments arrive one ESP packet each. Written to TUN one by one, every one of them takes a trip
// through the kernel's IP and TCP receive path. Consecutive segments of one TCP stream are instead joined
// into one super-packet and written once, with a virtio_net_hdr that describes the segmentation (what the
// kernel's own GRO does for a NIC). Only plain cases are joined: no IP options / extension headers, same
// addresses, ports, ACK, window and TCP options, contiguous sequence numbers, ACK (+PSH on the last) only,
// equal segment sizes but the last, and each segment's checksum verified first (the kernel will not look at
// the pieces again).

struct TcpSeg {
  bool v6 = false;
  size_t ipLen = 0, hdr = 0, payload = 0;
};

// An unfragmented TCP/IP packet without IP options or extension headers, its lengths consistent.
inline bool ParseTcpSeg(const uint8_t* p, size_t len, TcpSeg* t) {
  if (len >= 40 && (p[0] >> 4) == 4) {
    if (p[0] != 0x45 || p[9] != 6 || Be16(p + 2) != len || (Be16(p + 6) & 0x3fff) != 0) return false;
    t->v6 = false;
    t->ipLen = 20;
  } else if (len >= 60 && (p[0] >> 4) == 6) {
    if (p[6] != 6 || static_cast<size_t>(Be16(p + 4)) + 40 != len) return false;
    t->v6 = true;
    t->ipLen = 40;
  } else {
    return false;
  }
  const size_t tcpLen = static_cast<size_t>(p[t->ipLen + 12] >> 4) * 4;
  if (tcpLen < 20 || t->ipLen + tcpLen > len) return false;
  t->hdr = t->ipLen + tcpLen;
  t->payload = len - t->hdr;
  return true;
}

inline uint64_t PseudoSum(const uint8_t* p, const TcpSeg& t, size_t tcpTotal) {
  uint8_t pseudo[40];
  if (t.v6) {
    std::memcpy(pseudo, p + 8, 32);
    pseudo[32] = static_cast<uint8_t>(tcpTotal >> 24);
    pseudo[33] = static_cast<uint8_t>(tcpTotal >> 16);
    PutBe16(pseudo + 34, static_cast<uint32_t>(tcpTotal));
    pseudo[36] = pseudo[37] = pseudo[38] = 0;
    pseudo[39] = 6;
    return SumBytes(pseudo, 40, 0);
  }
  std::memcpy(pseudo, p + 12, 8);
  pseudo[8] = 0;
  pseudo[9] = 6;
  PutBe16(pseudo + 10, static_cast<uint32_t>(tcpTotal));
  return SumBytes(pseudo, 12, 0);
}

inline bool TcpChecksumOk(const uint8_t* p, size_t len, const TcpSeg& t) {
  const size_t tcpTotal = len - t.ipLen;
  return FoldComplement(SumBytes(p + t.ipLen, tcpTotal, PseudoSum(p, t, tcpTotal))) == 0;
}

constexpr uint8_t kTcpAck = 0x10, kTcpPsh = 0x08;

// May segment q (payload qt.payload) follow a group that starts with g and holds `groupPayload` octets?
inline bool CanJoin(const uint8_t* g, const TcpSeg& gt, size_t groupPayload, const uint8_t* q, const TcpSeg& qt) {
  if (qt.v6 != gt.v6 || qt.hdr != gt.hdr || qt.payload == 0 || qt.payload > gt.payload) return false;
  if (gt.hdr + groupPayload + qt.payload > 65535) return false;
  const uint8_t flags = q[qt.ipLen + 13];
  if (flags != kTcpAck && flags != (kTcpAck | kTcpPsh)) return false;
  if (gt.v6) {
    // version / traffic class / flow label, next header, hop limit, addresses
    if (std::memcmp(g, q, 4) != 0 || std::memcmp(g + 6, q + 6, 34) != 0) return false;
  } else {
    // TOS, DF, TTL, protocol, addresses (not the identification or the checksum)
    if (g[1] != q[1] || g[6] != q[6] || g[8] != q[8] || std::memcmp(g + 12, q + 12, 8) != 0) return false;
  }
  const uint8_t* gtcp = g + gt.ipLen;
  const uint8_t* qtcp = q + qt.ipLen;
  // ports; then ACK number, data offset, window; then the options
  if (std::memcmp(gtcp, qtcp, 4) != 0 || std::memcmp(gtcp + 8, qtcp + 8, 5) != 0 || std::memcmp(gtcp + 14, qtcp + 14, 2) != 0)
    return false;
  if (std::memcmp(gtcp + 20, qtcp + 20, gt.hdr - gt.ipLen - 20) != 0) return false;
  const uint32_t gseq = (static_cast<uint32_t>(gtcp[4]) << 24) | (gtcp[5] << 16) | (gtcp[6] << 8) | gtcp[7];
  const uint32_t qseq = (static_cast<uint32_t>(qtcp[4]) << 24) | (qtcp[5] << 16) | (qtcp[6] << 8) | qtcp[7];
  return qseq == gseq + static_cast<uint32_t>(groupPayload);
}

// Turns the first segment's headers into those of the joined packet (total payload octets, PSH if the last
// segment had it) and fills the virtio_net_hdr: GSO by gso_size = the first segment's payload, checksum left
// partial (pseudo-header sum in the field), as the kernel's GRO leaves it.
inline void FinishJoin(uint8_t* g, const TcpSeg& gt, size_t totalPayload, bool psh, VnetHdr* h) {
  const size_t total = gt.hdr + totalPayload;
  if (gt.v6) {
    PutBe16(g + 4, static_cast<uint32_t>(total - 40));
  } else {
    PutBe16(g + 2, static_cast<uint32_t>(total));
    g[10] = g[11] = 0;
    StoreChecksum(g + 10, SumBytes(g, 20, 0));
  }
  uint8_t* tcp = g + gt.ipLen;
  if (psh) tcp[13] |= kTcpPsh;
  const uint16_t partial = static_cast<uint16_t>(~FoldComplement(PseudoSum(g, gt, total - gt.ipLen)));
  std::memcpy(tcp + 16, &partial, 2);
  h->flags = kVnetNeedsCsum;
  h->gsoType = gt.v6 ? kGsoTcpV6 : kGsoTcpV4;
  h->hdrLen = static_cast<uint16_t>(gt.hdr);
  h->gsoSize = static_cast<uint16_t>(gt.payload);
  h->csumStart = static_cast<uint16_t>(gt.ipLen);
  h->csumOffset = 16;
}

// The longest run at the start of pkts[0..n) that can be written as one packet (at most `max`). Fills
// parts[0..k) with what to write after the virtio_net_hdr: the first packet whole (its headers rewritten
// by FinishJoin when k > 1), then the payloads of the others. Returns k >= 1; *h is left empty when k == 1.
inline size_t JoinRun(const iovec* pkts, size_t n, size_t max, VnetHdr* h, iovec* parts) {
  uint8_t* g = static_cast<uint8_t*>(pkts[0].iov_base);
  const size_t glen = pkts[0].iov_len;
  parts[0] = pkts[0];
  TcpSeg gt;
  if (!ParseTcpSeg(g, glen, &gt) || gt.payload == 0 || g[gt.ipLen + 13] != kTcpAck || !TcpChecksumOk(g, glen, gt)) return 1;
  size_t k = 1, total = gt.payload;
  bool psh = false;
  while (k < n && k < max && !psh) {
    const uint8_t* q = static_cast<const uint8_t*>(pkts[k].iov_base);
    const size_t qlen = pkts[k].iov_len;
    TcpSeg qt;
    if (!ParseTcpSeg(q, qlen, &qt) || !CanJoin(g, gt, total, q, qt) || !TcpChecksumOk(q, qlen, qt)) break;
    parts[k] = {const_cast<uint8_t*>(q) + qt.hdr, qt.payload};
    total += qt.payload;
    psh = (q[qt.ipLen + 13] & kTcpPsh) != 0;
    k++;
    if (qt.payload < gt.payload) break;  // a short segment ends a GSO packet
  }
  if (k > 1) FinishJoin(g, gt, total, psh, h);
  return k;
}

}  // namespace dataplane
}  // namespace ike
