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

// One packet of a batch call. Seal: in / len / nextHeader the payload, out where the ESP packet goes
// (SealedLength(len) octets; in place when in == out + 8 + ivLength); outLen its length. Open: in / len the ESP
// packet, out where the payload goes (len - 8 - ivLength octets; in place when out == in + 8 + ivLength);
// outLen and nextHeader its length and next header. status: the packet's Status either way.
struct PacketIo {
  const uint8_t* in;
  size_t len;
  uint8_t* out;
  size_t outLen;
  uint8_t nextHeader;
  uint8_t status;
};
// Worker thread, attached SAs only: n packets of one SA in order, with the same checks, sequence numbers,
// replay window and counters as sealBatch / openBatch (the same code: EspSa::SealMany / OpenMany), the
// intel-ipsec-mb engine running the crypto of many together. Returns how many succeeded.
size_t SealPackets(EspSa* sa, PacketIo* p, size_t n);
size_t OpenPackets(EspSa* sa, PacketIo* p, size_t n);

}  // namespace esp
}  // namespace ike
