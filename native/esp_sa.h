// The ESP SA (native/esp.cc) as seen from other C++ code of the addon: the tunnel data plane
// (native/dataplane.cc) seals and opens with the same EspSa objects JavaScript created, without going
// through JavaScript per packet.
//
// Ownership rule: an SA attached to the data plane belongs to its worker thread (which uses the SA's
// OpenSSL context and counters without a lock, and builds that context itself if the SA's first packet
// comes through the data plane). While attached, every JavaScript method of that SA (sealBatch, openBatch,
// sealWithIv, stats, sequence, destroy) throws; DetachSa gives it back.
#pragma once
#include <napi.h>
#include <cstddef>
#include <cstdint>
#include <string>

#include "codes.h"  // Status: the per-packet results of the batch calls

namespace ike {
namespace esp {

class EspSa;  // defined in esp.cc

struct SaInfo {
  uint32_t spi;
  bool outbound;
  size_t ivLength;  // octets between the 8-octet ESP header and the ciphertext
};

// JS thread. The EspSa behind a JS EspSa object (checked by type tag), now attached. nullptr with
// *error set when v is not an EspSa, is destroyed, or is already attached.
EspSa* AttachSa(Napi::Env env, Napi::Value v, std::string* error);
// JS thread, once no other thread uses the SA any more.
void DetachSa(EspSa* sa);
SaInfo InfoOf(const EspSa* sa);
// Length of the ESP packet (SPI .. ICV) sealing a payload of this length makes.
size_t SealedLength(const EspSa* sa, size_t payloadLength);

// Worker thread, attached SAs only. Seal: payload `in` (len octets) into `out` (SealedLength(len) octets);
// in place when in == out + 8 + ivLength. Open: in place when out == in + 8 + ivLength, out needs
// len - 8 - ivLength octets. Both count in the SA's own statistics, as the batch calls do.
uint8_t SealPacket(EspSa* sa, const uint8_t* in, size_t len, uint8_t nextHeader, uint8_t* out, size_t* outLen);
uint8_t OpenPacket(EspSa* sa, const uint8_t* in, size_t len, uint8_t* out, size_t* payloadLen, uint8_t* nextHeader);

// One packet of a batch call. Seal: in / len / nextHeader the payload, out where the ESP packet goes (in place as
// for SealPacket); outLen its length. Open: in / len the ESP packet, out where the payload goes (in place as for
// OpenPacket); outLen and nextHeader its length and next header. status: the packet's Status either way.
struct PacketIo {
  const uint8_t* in;
  size_t len;
  uint8_t* out;
  size_t outLen;
  uint8_t nextHeader;
  uint8_t status;
};
// Worker thread, attached SAs only: n packets of one SA, exactly as n calls of SealPacket / OpenPacket in
// order would do them (sequence numbers, replay window, counters), but with the intel-ipsec-mb engine the
// crypto of many runs together, as sealBatch / openBatch do. Returns how many succeeded.
size_t SealPackets(EspSa* sa, PacketIo* p, size_t n);
size_t OpenPackets(EspSa* sa, PacketIo* p, size_t n);

}  // namespace esp
}  // namespace ike
