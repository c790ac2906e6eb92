// The numbers JavaScript and the addon exchange: the hash and IKE cipher codes the crypto entry points take,
// and the per-packet statuses the ESP batch calls return. ts/native-codes.ts has the same numbers; the addon
// exports these as `codes` (addon.cc) and test/native/codes.test.ts checks the two agree.
#pragma once
#include <cstdint>

namespace ike {

// Hash algorithm of hash / prf / key derivation calls (argument 1 of prf.cc's entry points).
enum HashAlg : int { kMd5 = 0, kSha1 = 1, kSha256 = 2, kSha384 = 3, kSha512 = 4, kHashCount = 5 };

// IKE message cipher of cbcEncrypt / cbcDecrypt (cipher.cc), the index into its cipher table.
enum CbcCipherCode : int { kAes128Cbc = 0, kAes192Cbc = 1, kAes256Cbc = 2, kDesEde3Cbc = 3, kDesCbc = 4, kCbcCipherCount = 5 };

namespace esp {
// Per-packet results of the ESP batch calls (same numbers as EspStatus in ts/esp/types.ts).
enum Status : uint8_t {
  kOk = 0,
  kReplayed = 1,      // replay window: duplicate or left of the window (or sequence number 0)
  kAuthFailed = 2,    // ICV mismatch
  kMalformed = 3,     // length impossible for the algorithm, or padding bytes not 1, 2, 3, ...
  kWrongSpi = 4,      // the packet belongs to another SA
  kSeqOverflow = 5,   // outbound counter exhausted: rekey
  kBadBounds = 6,     // offset/length outside the buffer, output too small, or overlapping input
  kCryptoError = 7,   // OpenSSL reported an error (not expected)
};
}  // namespace esp

}  // namespace ike
