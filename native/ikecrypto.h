// Pieces shared by dh.cc, prf.cc and cipher.cc: the digest table (fetched once), a small HMAC over
// EVP_MD_CTX that can be keyed once and reused, per-thread scratch contexts, and OpenSSL error reporting.
#pragma once
// The addon uses a few OpenSSL 3 "deprecated" low-level APIs on purpose (EC_POINT arithmetic for the
// IKE x|y encoding without an EVP_PKEY round trip, DES_ncbc_encrypt because plain DES lives only in the
// legacy provider that Node does not load). They are still exported by Node's OpenSSL 3.0.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "common.h"

namespace ike {

// Hash algorithm codes shared with ts/crypto/native.ts (HASH_CODE there).
enum HashAlg : int { kMd5 = 0, kSha1 = 1, kSha256 = 2, kSha384 = 3, kSha512 = 4, kHashCount = 5 };
constexpr size_t kMaxMdSize = 64;     // SHA-512
constexpr size_t kMaxMdBlock = 128;   // SHA-384/512 block

// The EVP_MD for a code, fetched once per process (EVP_MD_fetch is slow; the handles are immutable and
// safe to share between threads). Returns nullptr if the provider lacks the digest.
const EVP_MD* Md(int alg);

// Reads argument i as a hash code -> TypeError/RangeError otherwise.
inline bool GetHash(const Napi::CallbackInfo& info, size_t i, const EVP_MD** md) {
  int64_t v;
  if (!GetInt(info, i, "hash algorithm", 0, kHashCount - 1, &v)) return false;
  *md = Md(static_cast<int>(v));
  if (*md == nullptr) return ThrowRange(info.Env(), "hash algorithm not available in this OpenSSL");
  return true;
}

// Throws an Error carrying OpenSSL's last error text (only for "cannot happen" failures such as malloc).
inline void ThrowOpenSsl(Napi::Env env, const char* what) {
  unsigned long e = ERR_get_error();
  char buf[256];
  buf[0] = 0;
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  Napi::Error::New(env, std::string(what) + " failed" + (buf[0] ? std::string(": ") + buf : std::string()))
      .ThrowAsJavaScriptException();
}

// HMAC (RFC 2104) over EVP digests: H(K ^ opad | H(K ^ ipad | data)). Keying absorbs the two pad blocks
// once; each Begin/Final pair then costs only the data, so KEYMAT / Appendix B expansion and SKEYID_* with
// one key pay the key schedule once. A hand-rolled HMAC is used because EVP_MAC re-parses params on every
// init, which dominates for the short inputs IKE feeds it.
class Hmac {
 public:
  Hmac() : inner0_(EVP_MD_CTX_new()), outer0_(EVP_MD_CTX_new()), work_(EVP_MD_CTX_new()) {}
  ~Hmac() {
    EVP_MD_CTX_free(inner0_);
    EVP_MD_CTX_free(outer0_);
    EVP_MD_CTX_free(work_);
  }
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;

  size_t size() const { return size_; }

  bool Key(const EVP_MD* md, const uint8_t* key, size_t keyLen) {
    if (!inner0_ || !outer0_ || !work_) return false;
    size_ = static_cast<size_t>(EVP_MD_get_size(md));
    size_t block = static_cast<size_t>(EVP_MD_get_block_size(md));
    uint8_t k[kMaxMdBlock];
    std::memset(k, 0, sizeof k);
    if (keyLen > block) {  // RFC 2104: keys longer than the block are hashed first
      unsigned int n = 0;
      if (!EVP_DigestInit_ex(work_, md, nullptr) || !EVP_DigestUpdate(work_, key, keyLen) ||
          !EVP_DigestFinal_ex(work_, k, &n))
        return false;
    } else if (keyLen > 0) {
      std::memcpy(k, key, keyLen);
    }
    uint8_t pad[kMaxMdBlock];
    for (size_t i = 0; i < block; i++) pad[i] = k[i] ^ 0x36;
    bool ok = EVP_DigestInit_ex(inner0_, md, nullptr) && EVP_DigestUpdate(inner0_, pad, block);
    for (size_t i = 0; i < block; i++) pad[i] = k[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(outer0_, md, nullptr) && EVP_DigestUpdate(outer0_, pad, block);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    return ok;
  }
  bool Begin() { return EVP_MD_CTX_copy_ex(work_, inner0_) == 1; }
  bool Update(const uint8_t* d, size_t n) { return n == 0 || EVP_DigestUpdate(work_, d, n) == 1; }
  // Writes size() bytes to out.
  bool Final(uint8_t* out) {
    uint8_t ih[kMaxMdSize];
    unsigned int n = 0;
    bool ok = EVP_DigestFinal_ex(work_, ih, &n) && EVP_MD_CTX_copy_ex(work_, outer0_) &&
              EVP_DigestUpdate(work_, ih, n) && EVP_DigestFinal_ex(work_, out, &n);
    OPENSSL_cleanse(ih, sizeof ih);
    return ok;
  }

 private:
  EVP_MD_CTX* inner0_;
  EVP_MD_CTX* outer0_;
  EVP_MD_CTX* work_;
  size_t size_ = 0;
};

// Per-thread scratch objects, so a call allocates no OpenSSL contexts. Only used synchronously within one call.
Hmac& ThreadHmac();
EVP_MD_CTX* ThreadMdCtx();
BN_CTX* ThreadBnCtx();

}  // namespace ike
