// The second ESP crypto engine: Intel's Multi-Buffer Crypto for IPsec library (intel-ipsec-mb, the library
// DPDK and VPP use). It works on many packets at once (one AES / SHA lane per packet, up to 16 lanes with
// AVX-512 / VAES), where OpenSSL's EVP (native/esp.cc, the fallback engine) encrypts one packet at a time.
//
// Only the crypto lives here; the ESP framing (header, IV, trailer, padding check, replay window, counters)
// stays in esp.cc so that both engines frame packets with the same code. esp.cc describes each packet as an
// Op, hands a batch of them to Run(), and reads the results after Run() returns.
//
// Built only when binding.gyp found the library (IKE_HAVE_IPSEC_MB); otherwise Available() is false and
// every SA uses EVP.
//
// Threads: one IMB_MGR per thread (thread_local, made on the thread's first use, freed at its exit), since a
// manager keeps jobs in flight between calls. Only the job API (get_next_job / submit / flush) is used, never
// the burst API: in version 1.3 a manager used by both lost jobs on flush.
#pragma once
#include <cstddef>
#include <cstdint>

#include "esp_hmac.h"  // HashAlg

namespace ike {
namespace esp {
namespace mb {

enum class Cipher { AesCbc, AesGcm, ChaChaPoly };

// True when the addon was built with intel-ipsec-mb and this CPU runs one of its AES-NI managers (SSE, AVX,
// AVX2 or AVX-512). Decided once per process.
bool Available();
// "intel-ipsec-mb 1.3.0 avx512", or why the engine is unavailable. For status output and benchmarks.
const char* Describe();

// The per-SA key schedule: expanded AES keys, GHASH keys, or the HMAC inner / outer states. Built on the
// thread that owns the SA (it uses that thread's manager's key expansion). nullptr when memory runs out.
struct Keys;
Keys* NewKeys(Cipher cipher, const uint8_t* encKey, size_t encKeyLength, HashAlg hash, const uint8_t* integKey,
              size_t integKeyLength);
void FreeKeys(Keys* keys);  // wipes the key material; nullptr is fine

// One packet. Set by the caller; `ok` is written by Run(). The pointers must stay valid until Run() returns.
struct Op {
  const uint8_t* src;     // the ESP packet (SPI ...): where the hash starts and the cipher offset counts from
  uint8_t* dst;           // where the cipher output goes (src + cipherOffset for in place)
  size_t cipherOffset;    // 8 + IV length
  size_t cipherLength;    // a multiple of 16 for CBC
  size_t hashLength;      // HMAC: octets hashed from src (header | IV | ciphertext)
  const uint8_t* iv;      // CBC: the 16-octet IV
  uint8_t nonce[12];      // AEAD: salt | explicit IV
  uint8_t aad[8];         // AEAD: SPI | sequence number (ESN SAs stay on EVP)
  uint8_t* tag;           // seal: the ICV position; open: `computed`
  size_t tagLength;
  uint8_t computed[32];   // open: the ICV computed over the received packet, for the caller to compare
  bool ok;
};

// Runs ops[0..n) on this thread's manager, all with the same keys and direction; every op has completed (ok set)
// on return. Seal: encrypt then MAC. Open: MAC (into op.computed) and decrypt, the caller compares the ICV and
// wipes the plaintext of a forgery.
void Run(const Keys* keys, bool seal, Op* ops, size_t n);

#ifdef IKE_TEST_HOOKS
// The raw intel-ipsec-mb loop for `ike bench esp`: `batch` buffers of `size` octets (rounded up to 16 for CBC)
// sealed or opened `iterations` times through the job API alone, no ESP framing. Nanoseconds, or -1 when
// the engine is unavailable or the algorithm unsupported.
double RawBench(Cipher cipher, size_t encKeyLength, HashAlg hash, size_t tagLength, bool seal, size_t size,
                size_t batch, size_t iterations);
#endif

}  // namespace mb
}  // namespace esp
}  // namespace ike
