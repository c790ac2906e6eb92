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
#include <openssl/md5.h>
#include <openssl/sha.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "codes.h"
#include "common.h"

namespace ike {

constexpr size_t kMaxMdSize = 64;     // SHA-512
constexpr size_t kMaxMdBlock = 128;   // SHA-384/512 block

// The digests run through OpenSSL's one-shot low-level functions (MD5_Init, SHA256_Update, ...), which use
// the same assembly as the EVP providers but keep their state in a plain struct: no allocation, no provider
// dispatch, and an HMAC state keyed once is copied by assignment. For the 20-300 byte inputs of IKE this
// halves the cost of a prf compared with EVP_MD_CTX (whose init and copy allocate in OpenSSL 3.0).
union DigestCtx {
  MD5_CTX md5;
  SHA_CTX sha1;
  SHA256_CTX sha256;
  SHA512_CTX sha512;  // also SHA-384
};
struct DigestAlg {
  size_t size;
  size_t block;
  int (*init)(DigestCtx*);
  int (*update)(DigestCtx*, const void*, size_t);
  int (*final)(uint8_t*, DigestCtx*);
};
const DigestAlg* Digest(int alg);  // nullptr outside [0, kHashCount)

// Reads argument i as a hash code -> TypeError/RangeError otherwise.
inline bool GetHash(const Napi::CallbackInfo& info, size_t i, const DigestAlg** d) {
  int64_t v;
  if (!GetInt(info, i, "hash algorithm", 0, kHashCount - 1, &v)) return false;
  *d = Digest(static_cast<int>(v));
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

// HMAC (RFC 2104): H(K ^ opad | H(K ^ ipad | data)). Key() absorbs the two pad blocks once; each
// Begin/Update/Final then costs only the data, so KEYMAT / Appendix B expansion and SKEYID_d/_a/_e under one
// key pay the key schedule once. Lives on the stack; the destructor wipes the keyed states.
class Hmac {
 public:
  Hmac() = default;
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;
  ~Hmac() {
    OPENSSL_cleanse(&inner0_, sizeof inner0_);
    OPENSSL_cleanse(&outer0_, sizeof outer0_);
    OPENSSL_cleanse(&work_, sizeof work_);
  }

  size_t size() const { return d_->size; }

  void Key(const DigestAlg* d, const uint8_t* key, size_t keyLen) {
    d_ = d;
    uint8_t k[kMaxMdBlock];
    std::memset(k, 0, sizeof k);
    if (keyLen > d->block) {  // keys longer than the block are hashed first
      d->init(&work_);
      d->update(&work_, key, keyLen);
      d->final(k, &work_);
    } else if (keyLen > 0) {
      std::memcpy(k, key, keyLen);
    }
    uint8_t pad[kMaxMdBlock];
    for (size_t i = 0; i < d->block; i++) pad[i] = k[i] ^ 0x36;
    d->init(&inner0_);
    d->update(&inner0_, pad, d->block);
    for (size_t i = 0; i < d->block; i++) pad[i] = k[i] ^ 0x5c;
    d->init(&outer0_);
    d->update(&outer0_, pad, d->block);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
  }
  void Begin() { work_ = inner0_; }
  void Update(const uint8_t* p, size_t n) {
    if (n > 0) d_->update(&work_, p, n);
  }
  // Writes size() bytes to out.
  void Final(uint8_t* out) {
    uint8_t ih[kMaxMdSize];
    d_->final(ih, &work_);
    work_ = outer0_;
    d_->update(&work_, ih, d_->size);
    d_->final(out, &work_);
    OPENSSL_cleanse(ih, sizeof ih);
  }

 private:
  const DigestAlg* d_ = nullptr;
  DigestCtx inner0_;
  DigestCtx outer0_;
  DigestCtx work_;
};

// The output buffer argument i: a Uint8Array the caller allocated (Buffer.allocUnsafe is far cheaper than
// creating a Buffer from C++, which costs more than an HMAC of 64 bytes). Its length is part of the request.
struct OutBytes {
  uint8_t* data = nullptr;
  size_t size = 0;
  bool ok = false;
};
inline OutBytes GetOut(const Napi::CallbackInfo& info, size_t i) {
  OutBytes o;
  Bytes b = GetBytes(info, i, "out");
  if (!b.ok) return o;
  o.data = const_cast<uint8_t*>(b.data);
  o.size = b.size;
  o.ok = true;
  return o;
}
// out must be exactly `want` bytes.
inline bool CheckOutSize(const Napi::CallbackInfo& info, const OutBytes& o, size_t want) {
  if (o.size != want) return ThrowRange(info.Env(), "out must be " + std::to_string(want) + " bytes");
  return true;
}

// Per-thread BN_CTX, so a DH operation allocates no context (each pool thread gets its own).
BN_CTX* ThreadBnCtx();

// True when every OpenSSL function the addon calls is exported by this process (Node's bundled OpenSSL or
// a shared libcrypto). Node loads addons with lazy binding, so a missing symbol would otherwise kill the
// process on first call; checking at load turns it into a load error and ts/native.ts falls back to
// node:crypto. `missing` names the first absent symbol.
bool OpenSslSymbolsPresent(std::string* missing);

}  // namespace ike
