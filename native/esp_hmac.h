// HMAC (RFC 2104) for the ESP integrity algorithms HMAC-MD5-96 (RFC 2403), HMAC-SHA1-96 (RFC 2404) and HMAC-SHA2-256-128,
// -384-192, -512-256 (RFC 4868), keyed once per SA.
//
// Why not EVP_MAC / HMAC_CTX: in OpenSSL 3 re-initialising an HMAC with the same key (EVP_MAC_init with a
// NULL key, HMAC_Init_ex with a NULL key) duplicates a provider digest context, i.e. a malloc and free per
// packet. Here the inner and outer states after the key block (K ^ ipad, K ^ opad) are computed once in the
// constructor and copied (plain struct copies) for each packet; the block functions underneath are the same
// OpenSSL assembly (SHA-NI / AVX2) that EVP uses.
#pragma once
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED  // SHA*_Init/Update/Final are deprecated in 3.0 but exported by node
#endif
#include <openssl/crypto.h>
#include <openssl/md5.h>
#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ike {
namespace esp {

enum class HashAlg { None, Md5, Sha1, Sha256, Sha384, Sha512 };

class HmacKey {
 public:
  static constexpr size_t kMaxDigest = 64;

  ~HmacKey() { Wipe(); }

  void Wipe() {
    OPENSSL_cleanse(&inner_, sizeof(inner_));
    OPENSSL_cleanse(&outer_, sizeof(outer_));
  }

  static size_t DigestLength(HashAlg h) {
    switch (h) {
      case HashAlg::Md5: return 16;
      case HashAlg::Sha1: return 20;
      case HashAlg::Sha256: return 32;
      case HashAlg::Sha384: return 48;
      case HashAlg::Sha512: return 64;
      default: return 0;
    }
  }
  static size_t BlockLength(HashAlg h) { return (h == HashAlg::Sha384 || h == HashAlg::Sha512) ? 128 : 64; }

  void Init(HashAlg h, const uint8_t* key, size_t keyLen) {
    hash_ = h;
    const size_t block = BlockLength(h);
    uint8_t k[128] = {0};
    if (keyLen > block) {
      // RFC 2104: keys longer than the block are hashed first (ESP keys never are, but a caller may pass one).
      Ctx c;
      Start(&c);
      Feed(&c, key, keyLen);
      Finish(&c, k);
    } else if (keyLen != 0) {
      std::memcpy(k, key, keyLen);
    }
    uint8_t pad[128];
    for (size_t i = 0; i < block; i++) pad[i] = k[i] ^ 0x36;
    Start(&inner_);
    Feed(&inner_, pad, block);
    for (size_t i = 0; i < block; i++) pad[i] = k[i] ^ 0x5c;
    Start(&outer_);
    Feed(&outer_, pad, block);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
  }

  // out = HMAC(key, a | b | c) (full digest); any part may be empty. ESP with ESN appends the high-order
  // sequence bits after the packet (RFC 4303 2.2.1), hence three parts.
  void Compute(const uint8_t* a, size_t al, const uint8_t* b, size_t bl, const uint8_t* c, size_t cl,
               uint8_t* out) const {
    Ctx x = inner_;
    if (al) Feed(&x, a, al);
    if (bl) Feed(&x, b, bl);
    if (cl) Feed(&x, c, cl);
    uint8_t d[kMaxDigest];
    Finish(&x, d);
    x = outer_;
    Feed(&x, d, DigestLength(hash_));
    Finish(&x, out);
    OPENSSL_cleanse(&x, sizeof(x));
  }

 private:
  union Ctx {
    MD5_CTX md5;
    SHA_CTX sha1;
    SHA256_CTX sha256;
    SHA512_CTX sha512;  // also SHA-384
  };

  void Start(Ctx* c) const {
    switch (hash_) {
      case HashAlg::Md5: MD5_Init(&c->md5); break;
      case HashAlg::Sha1: SHA1_Init(&c->sha1); break;
      case HashAlg::Sha256: SHA256_Init(&c->sha256); break;
      case HashAlg::Sha384: SHA384_Init(&c->sha512); break;
      case HashAlg::Sha512: SHA512_Init(&c->sha512); break;
      default: break;
    }
  }
  void Feed(Ctx* c, const uint8_t* p, size_t n) const {
    switch (hash_) {
      case HashAlg::Md5: MD5_Update(&c->md5, p, n); break;
      case HashAlg::Sha1: SHA1_Update(&c->sha1, p, n); break;
      case HashAlg::Sha256: SHA256_Update(&c->sha256, p, n); break;
      case HashAlg::Sha384: SHA384_Update(&c->sha512, p, n); break;
      case HashAlg::Sha512: SHA512_Update(&c->sha512, p, n); break;
      default: break;
    }
  }
  void Finish(Ctx* c, uint8_t* out) const {
    switch (hash_) {
      case HashAlg::Md5: MD5_Final(out, &c->md5); break;
      case HashAlg::Sha1: SHA1_Final(out, &c->sha1); break;
      case HashAlg::Sha256: SHA256_Final(out, &c->sha256); break;
      case HashAlg::Sha384: SHA384_Final(out, &c->sha512); break;
      case HashAlg::Sha512: SHA512_Final(out, &c->sha512); break;
      default: break;
    }
  }

  HashAlg hash_ = HashAlg::None;
  Ctx inner_{};
  Ctx outer_{};
};

}  // namespace esp
}  // namespace ike
