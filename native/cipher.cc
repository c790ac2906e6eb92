// CBC encryption of IKE messages (RFC 2409 Appendix B): no padding here, the ISAKMP layer pads to whole
// blocks itself, so anything else is the caller's bug and gets a RangeError.
#include "ikecrypto.h"  // first: it sets OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/des.h>

#include <memory>
#include <mutex>
#include <vector>

#include "addon.h"

namespace ike {
namespace {

// Indexed by CbcCipherCode (codes.h).
struct CbcCipher {
  const char* name;
  size_t keyLen;
  size_t blockLen;
  EVP_CIPHER* evp;  // nullptr for DES, which the default provider lacks
};
CbcCipher g_ciphers[] = {
    {"AES-128-CBC", 16, 16, nullptr}, {"AES-192-CBC", 24, 16, nullptr}, {"AES-256-CBC", 32, 16, nullptr},
    {"DES-EDE3-CBC", 24, 8, nullptr}, {"DES-CBC", 8, 8, nullptr},
};
constexpr int kDes = kDesCbc;
constexpr int kCipherCount = kCbcCipherCount;
static_assert(sizeof g_ciphers / sizeof g_ciphers[0] == kCbcCipherCount, "one entry per CbcCipherCode");
std::once_flag g_once;

void FetchCiphers() {
  std::call_once(g_once, [] {
    for (int i = 0; i < kCipherCount; i++)
      if (i != kDes) g_ciphers[i].evp = EVP_CIPHER_fetch(nullptr, g_ciphers[i].name, nullptr);
    ERR_clear_error();
  });
}

EVP_CIPHER_CTX* ThreadCipherCtx() {
  thread_local std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)> c(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  return c.get();
}

// Single DES-CBC with the low-level API: OpenSSL 3 moved DES to the legacy provider, which Node does not
// load. DES is broken (56-bit key); the TS layer refuses it unless weak algorithms are allowed.
void DesCbc(const uint8_t* key, const uint8_t* iv, const uint8_t* in, uint8_t* out, size_t len, bool enc) {
  DES_cblock k, v;
  std::memcpy(k, key, 8);
  std::memcpy(v, iv, 8);
  DES_key_schedule ks;
  DES_set_key_unchecked(&k, &ks);
  DES_ncbc_encrypt(in, out, static_cast<long>(len), &ks, &v, enc ? DES_ENCRYPT : DES_DECRYPT);
  OPENSSL_cleanse(&ks, sizeof ks);
  OPENSSL_cleanse(k, sizeof k);
}

// cbcEncrypt / cbcDecrypt(out, cipher, key, iv, data): out (data.length bytes, from the caller) = the CBC
// transform of data. out may be data itself (in place).
Napi::Value Cbc(const Napi::CallbackInfo& info, bool enc) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  if (!out.ok) return env.Undefined();
  int64_t code;
  if (!GetInt(info, 1, "cipher", 0, kCipherCount - 1, &code)) return env.Undefined();
  Bytes key = GetBytes(info, 2, "key");
  if (!key.ok) return env.Undefined();
  Bytes iv = GetBytes(info, 3, "iv");
  if (!iv.ok) return env.Undefined();
  Bytes data = GetBytes(info, 4, "data");
  if (!data.ok) return env.Undefined();
  const CbcCipher& c = g_ciphers[code];
  if (key.size != c.keyLen) {
    ThrowRange(env, std::string(c.name) + " key must be " + std::to_string(c.keyLen) + " bytes");
    return env.Undefined();
  }
  if (iv.size != c.blockLen) {
    ThrowRange(env, std::string(c.name) + " IV must be " + std::to_string(c.blockLen) + " bytes");
    return env.Undefined();
  }
  if (data.size % c.blockLen != 0) {
    ThrowRange(env, std::string(c.name) + " data must be a whole number of " + std::to_string(c.blockLen) +
                        "-byte blocks");
    return env.Undefined();
  }
  if (data.size > 0x7fffffff) {
    ThrowRange(env, "data too long");
    return env.Undefined();
  }
  if (!CheckOutSize(info, out, data.size) || data.size == 0) return env.Undefined();
  // OpenSSL refuses partially overlapping buffers; work from a copy unless exactly in place.
  std::vector<uint8_t> copy;
  const uint8_t* in = data.data;
  if (in != out.data && in < out.data + out.size && out.data < in + data.size) {
    copy.assign(in, in + data.size);
    in = copy.data();
  }
  uint8_t ivCopy[16];
  std::memcpy(ivCopy, iv.data, iv.size);  // iv may alias out, which is written before the IV is read again
  if (code == kDes) {
    DesCbc(key.data, ivCopy, in, out.data, data.size, enc);
    return env.Undefined();
  }
  if (c.evp == nullptr) {
    ThrowRange(env, std::string(c.name) + " is not available in this OpenSSL");
    return env.Undefined();
  }
  EVP_CIPHER_CTX* ctx = ThreadCipherCtx();
  int n1 = 0, n2 = 0;
  bool ok = ctx && EVP_CipherInit_ex2(ctx, c.evp, key.data, ivCopy, enc ? 1 : 0, nullptr) &&
            EVP_CIPHER_CTX_set_padding(ctx, 0) &&
            EVP_CipherUpdate(ctx, out.data, &n1, in, static_cast<int>(data.size)) &&
            EVP_CipherFinal_ex(ctx, out.data + n1, &n2);
  if (!ok || static_cast<size_t>(n1 + n2) != data.size) ThrowOpenSsl(env, "CBC");
  return env.Undefined();
}

Napi::Value CbcEncrypt(const Napi::CallbackInfo& info) { return Cbc(info, true); }
Napi::Value CbcDecrypt(const Napi::CallbackInfo& info) { return Cbc(info, false); }

}  // namespace
}  // namespace ike

void InitCipher(Napi::Env env, Napi::Object exports) {
  using namespace ike;
  std::string missing;
  if (!OpenSslSymbolsPresent(&missing)) return;  // InitDh has already thrown
  FetchCiphers();
  exports.Set("cbcEncrypt", Napi::Function::New(env, CbcEncrypt, "cbcEncrypt"));
  exports.Set("cbcDecrypt", Napi::Function::New(env, CbcDecrypt, "cbcDecrypt"));
}
