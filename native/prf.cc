// HMAC prf, hashes and the IKEv1 key derivations of RFC 2409 section 5 and Appendix B, plus RAND_bytes and a
// constant-time comparison. Every function takes its data as several buffers so JavaScript never concatenates.
#include "ikecrypto.h"  // first: it sets OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/rand.h>

#include <memory>
#include <mutex>
#include <vector>

#include "addon.h"

namespace ike {

namespace {
const char* const kMdNames[kHashCount] = {"MD5", "SHA1", "SHA2-256", "SHA2-384", "SHA2-512"};
EVP_MD* g_md[kHashCount];
std::once_flag g_mdOnce;

// Upper bounds that keep a typo from allocating gigabytes; far above anything IKE needs.
constexpr int64_t kMaxDerived = 1 << 16;  // KEYMAT / Ka bytes
constexpr int64_t kMaxRandom = 1 << 26;   // 64 MiB
}  // namespace

const EVP_MD* Md(int alg) {
  std::call_once(g_mdOnce, [] {
    for (int i = 0; i < kHashCount; i++) g_md[i] = EVP_MD_fetch(nullptr, kMdNames[i], nullptr);
  });
  if (alg < 0 || alg >= kHashCount) return nullptr;
  return g_md[alg];
}

Hmac& ThreadHmac() {
  thread_local Hmac h;
  return h;
}
EVP_MD_CTX* ThreadMdCtx() {
  thread_local std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> c(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return c.get();
}
BN_CTX* ThreadBnCtx() {
  thread_local std::unique_ptr<BN_CTX, void (*)(BN_CTX*)> c(BN_CTX_new(), BN_CTX_free);
  return c.get();
}

namespace {

using Buf = Napi::Buffer<uint8_t>;

// Collects arguments [from, Length()) as byte views; names them "data[i]" in errors.
bool GetParts(const Napi::CallbackInfo& info, size_t from, std::vector<Bytes>* parts) {
  for (size_t i = from; i < info.Length(); i++) {
    Bytes b = GetBytes(info, i, ("data[" + std::to_string(i - from) + "]").c_str());
    if (!b.ok) return false;
    parts->push_back(b);
  }
  return true;
}

Napi::Value Fail(Napi::Env env, const char* what) {
  ThrowOpenSsl(env, what);
  return env.Undefined();
}

// hash(alg, ...data) -> H(data[0] | data[1] | ...)
Napi::Value Hash(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  std::vector<Bytes> parts;
  if (!GetParts(info, 1, &parts)) return env.Undefined();
  EVP_MD_CTX* c = ThreadMdCtx();
  uint8_t out[kMaxMdSize];
  unsigned int n = 0;
  bool ok = c && EVP_DigestInit_ex(c, md, nullptr);
  for (const Bytes& p : parts) ok = ok && (p.size == 0 || EVP_DigestUpdate(c, p.data, p.size));
  ok = ok && EVP_DigestFinal_ex(c, out, &n);
  if (!ok) return Fail(env, "hash");
  return Buf::Copy(env, out, n);
}

// prf(alg, key, ...data) -> HMAC(key, data[0] | data[1] | ...)
Napi::Value Prf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes key = GetBytes(info, 1, "key");
  if (!key.ok) return env.Undefined();
  std::vector<Bytes> parts;
  if (!GetParts(info, 2, &parts)) return env.Undefined();
  Hmac& h = ThreadHmac();
  uint8_t out[kMaxMdSize];
  bool ok = h.Key(md, key.data, key.size) && h.Begin();
  for (const Bytes& p : parts) ok = ok && h.Update(p.data, p.size);
  ok = ok && h.Final(out);
  if (!ok) return Fail(env, "prf");
  Napi::Value r = Buf::Copy(env, out, h.size());
  OPENSSL_cleanse(out, sizeof out);
  return r;
}

// skeyidPsk(alg, psk, Ni_b, Nr_b) -> prf(psk, Ni_b | Nr_b)
Napi::Value SkeyidPsk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes psk = GetBytes(info, 1, "psk");
  if (!psk.ok) return env.Undefined();
  Bytes ni = GetBytes(info, 2, "nonceI");
  if (!ni.ok) return env.Undefined();
  Bytes nr = GetBytes(info, 3, "nonceR");
  if (!nr.ok) return env.Undefined();
  Hmac& h = ThreadHmac();
  uint8_t out[kMaxMdSize];
  if (!(h.Key(md, psk.data, psk.size) && h.Begin() && h.Update(ni.data, ni.size) && h.Update(nr.data, nr.size) &&
        h.Final(out)))
    return Fail(env, "prf");
  Napi::Value r = Buf::Copy(env, out, h.size());
  OPENSSL_cleanse(out, sizeof out);
  return r;
}

// skeyidSig(alg, Ni_b, Nr_b, g^xy) -> prf(Ni_b | Nr_b, g^xy)
Napi::Value SkeyidSig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes ni = GetBytes(info, 1, "nonceI");
  if (!ni.ok) return env.Undefined();
  Bytes nr = GetBytes(info, 2, "nonceR");
  if (!nr.ok) return env.Undefined();
  Bytes gxy = GetBytes(info, 3, "gxy");
  if (!gxy.ok) return env.Undefined();
  std::vector<uint8_t> key(ni.size + nr.size);
  if (ni.size) std::memcpy(key.data(), ni.data, ni.size);
  if (nr.size) std::memcpy(key.data() + ni.size, nr.data, nr.size);
  Hmac& h = ThreadHmac();
  uint8_t out[kMaxMdSize];
  if (!(h.Key(md, key.data(), key.size()) && h.Begin() && h.Update(gxy.data, gxy.size) && h.Final(out)))
    return Fail(env, "prf");
  return Buf::Copy(env, out, h.size());
}

// phase1Keys(alg, SKEYID, g^xy, CKY-I, CKY-R) -> SKEYID_d | SKEYID_a | SKEYID_e (3 * hash length), keyed once.
Napi::Value Phase1Keys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes skeyid = GetBytes(info, 1, "skeyid");
  if (!skeyid.ok) return env.Undefined();
  Bytes gxy = GetBytes(info, 2, "gxy");
  if (!gxy.ok) return env.Undefined();
  Bytes ci = GetBytes(info, 3, "cookieI");
  if (!ci.ok) return env.Undefined();
  Bytes cr = GetBytes(info, 4, "cookieR");
  if (!cr.ok) return env.Undefined();
  if (ci.size != 8 || cr.size != 8) {
    ThrowRange(env, "ISAKMP cookies must be 8 bytes");
    return env.Undefined();
  }
  Hmac& h = ThreadHmac();
  if (!h.Key(md, skeyid.data, skeyid.size)) return Fail(env, "prf");
  size_t n = h.size();
  Buf out = Buf::New(env, 3 * n);
  uint8_t* d = out.Data();
  // SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0); _a and _e prepend the previous key and count on.
  for (uint8_t i = 0; i < 3; i++) {
    bool ok = h.Begin() && (i == 0 || h.Update(d + (i - 1) * n, n)) && h.Update(gxy.data, gxy.size) &&
              h.Update(ci.data, 8) && h.Update(cr.data, 8) && h.Update(&i, 1) && h.Final(d + i * n);
    if (!ok) return Fail(env, "prf");
  }
  return out;
}

// encryptionKey(alg, SKEYID_e, length) -> Ka (RFC 2409 Appendix B): SKEYID_e itself when long enough (its
// leading bytes), else K1 | K2 | ... with K1 = prf(SKEYID_e, 0x00), Kn = prf(SKEYID_e, Kn-1).
Napi::Value EncryptionKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes e = GetBytes(info, 1, "skeyidE");
  if (!e.ok) return env.Undefined();
  int64_t len;
  if (!GetInt(info, 2, "length", 1, kMaxDerived, &len)) return env.Undefined();
  size_t want = static_cast<size_t>(len);
  if (want <= e.size) return Buf::Copy(env, e.data, want);
  Hmac& h = ThreadHmac();
  if (!h.Key(md, e.data, e.size)) return Fail(env, "prf");
  size_t n = h.size();
  size_t blocks = (want + n - 1) / n;
  std::vector<uint8_t> k(blocks * n);
  const uint8_t zero = 0;
  for (size_t i = 0; i < blocks; i++) {
    bool ok = h.Begin() && (i == 0 ? h.Update(&zero, 1) : h.Update(&k[(i - 1) * n], n)) && h.Final(&k[i * n]);
    if (!ok) return Fail(env, "prf");
  }
  Napi::Value r = Buf::Copy(env, k.data(), want);
  OPENSSL_cleanse(k.data(), k.size());
  return r;
}

bool GetBlockSize(const Napi::CallbackInfo& info, size_t i, const EVP_MD* md, size_t* out) {
  int64_t v;
  if (!GetInt(info, i, "blockSize", 1, EVP_MD_get_size(md), &v)) return false;
  *out = static_cast<size_t>(v);
  return true;
}

// phase1Iv(alg, g^xi, g^xr, blockSize) -> hash(g^xi | g^xr) truncated to the cipher block.
Napi::Value Phase1Iv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes gi = GetBytes(info, 1, "gxi");
  if (!gi.ok) return env.Undefined();
  Bytes gr = GetBytes(info, 2, "gxr");
  if (!gr.ok) return env.Undefined();
  size_t bs;
  if (!GetBlockSize(info, 3, md, &bs)) return env.Undefined();
  EVP_MD_CTX* c = ThreadMdCtx();
  uint8_t out[kMaxMdSize];
  unsigned int n = 0;
  if (!(c && EVP_DigestInit_ex(c, md, nullptr) && EVP_DigestUpdate(c, gi.data, gi.size) &&
        EVP_DigestUpdate(c, gr.data, gr.size) && EVP_DigestFinal_ex(c, out, &n)))
    return Fail(env, "hash");
  return Buf::Copy(env, out, bs);
}

// phase2Iv(alg, last phase-1 CBC block, message ID, blockSize) -> hash(block | M-ID as 4 bytes big-endian).
Napi::Value Phase2Iv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes last = GetBytes(info, 1, "lastBlock");
  if (!last.ok) return env.Undefined();
  int64_t mid;
  if (!GetInt(info, 2, "messageId", 0, 0xffffffffLL, &mid)) return env.Undefined();
  size_t bs;
  if (!GetBlockSize(info, 3, md, &bs)) return env.Undefined();
  uint8_t m[4] = {static_cast<uint8_t>(mid >> 24), static_cast<uint8_t>(mid >> 16), static_cast<uint8_t>(mid >> 8),
                  static_cast<uint8_t>(mid)};
  EVP_MD_CTX* c = ThreadMdCtx();
  uint8_t out[kMaxMdSize];
  unsigned int n = 0;
  if (!(c && EVP_DigestInit_ex(c, md, nullptr) && EVP_DigestUpdate(c, last.data, last.size) &&
        EVP_DigestUpdate(c, m, 4) && EVP_DigestFinal_ex(c, out, &n)))
    return Fail(env, "hash");
  return Buf::Copy(env, out, bs);
}

// keymat(alg, SKEYID_d, g(qm)^xy | null, protocol, SPI, Ni_b, Nr_b, length) (RFC 2409 section 5.5):
// K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), Kn = prf(SKEYID_d, Kn-1 | same).
Napi::Value Keymat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const EVP_MD* md;
  if (!GetHash(info, 0, &md)) return env.Undefined();
  Bytes d = GetBytes(info, 1, "skeyidD");
  if (!d.ok) return env.Undefined();
  Bytes gxy;
  gxy.ok = true;
  if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) {
    gxy = GetBytes(info, 2, "gxy");
    if (!gxy.ok) return env.Undefined();
  }
  int64_t proto;
  if (!GetInt(info, 3, "protocol", 0, 255, &proto)) return env.Undefined();
  Bytes spi = GetBytes(info, 4, "spi");
  if (!spi.ok) return env.Undefined();
  Bytes ni = GetBytes(info, 5, "nonceI");
  if (!ni.ok) return env.Undefined();
  Bytes nr = GetBytes(info, 6, "nonceR");
  if (!nr.ok) return env.Undefined();
  int64_t len;
  if (!GetInt(info, 7, "length", 1, kMaxDerived, &len)) return env.Undefined();
  Hmac& h = ThreadHmac();
  if (!h.Key(md, d.data, d.size)) return Fail(env, "prf");
  size_t n = h.size();
  size_t want = static_cast<size_t>(len);
  size_t blocks = (want + n - 1) / n;
  std::vector<uint8_t> k(blocks * n);
  const uint8_t p = static_cast<uint8_t>(proto);
  for (size_t i = 0; i < blocks; i++) {
    bool ok = h.Begin() && (i == 0 || h.Update(&k[(i - 1) * n], n)) && h.Update(gxy.data, gxy.size) &&
              h.Update(&p, 1) && h.Update(spi.data, spi.size) && h.Update(ni.data, ni.size) &&
              h.Update(nr.data, nr.size) && h.Final(&k[i * n]);
    if (!ok) return Fail(env, "prf");
  }
  Napi::Value r = Buf::Copy(env, k.data(), want);
  OPENSSL_cleanse(k.data(), k.size());
  return r;
}

// randomBytes(length) from OpenSSL's CSPRNG.
Napi::Value RandomBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t len;
  if (!GetInt(info, 0, "length", 0, kMaxRandom, &len)) return env.Undefined();
  Buf out = Buf::New(env, static_cast<size_t>(len));
  if (len > 0 && RAND_bytes(out.Data(), static_cast<int>(len)) != 1) return Fail(env, "RAND_bytes");
  return out;
}

// timingSafeEqual(a, b): false for different lengths (lengths are public), else CRYPTO_memcmp.
Napi::Value TimingSafeEqual(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes a = GetBytes(info, 0, "a");
  if (!a.ok) return env.Undefined();
  Bytes b = GetBytes(info, 1, "b");
  if (!b.ok) return env.Undefined();
  if (a.size != b.size) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, a.size == 0 || CRYPTO_memcmp(a.data, b.data, a.size) == 0);
}

// hashInfo(alg) -> [digest length, available]: lets the TS layer check the provider without guessing.
Napi::Value HashAvailable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t v;
  if (!GetInt(info, 0, "hash algorithm", 0, kHashCount - 1, &v)) return env.Undefined();
  const EVP_MD* md = Md(static_cast<int>(v));
  return Napi::Number::New(env, md ? EVP_MD_get_size(md) : 0);
}

}  // namespace
}  // namespace ike

void InitPrf(Napi::Env env, Napi::Object exports) {
  using namespace ike;
  Md(0);  // fetch the digests now, on the main thread
  exports.Set("hash", Napi::Function::New(env, Hash, "hash"));
  exports.Set("prf", Napi::Function::New(env, Prf, "prf"));
  exports.Set("skeyidPsk", Napi::Function::New(env, SkeyidPsk, "skeyidPsk"));
  exports.Set("skeyidSig", Napi::Function::New(env, SkeyidSig, "skeyidSig"));
  exports.Set("phase1Keys", Napi::Function::New(env, Phase1Keys, "phase1Keys"));
  exports.Set("encryptionKey", Napi::Function::New(env, EncryptionKey, "encryptionKey"));
  exports.Set("phase1Iv", Napi::Function::New(env, Phase1Iv, "phase1Iv"));
  exports.Set("phase2Iv", Napi::Function::New(env, Phase2Iv, "phase2Iv"));
  exports.Set("keymat", Napi::Function::New(env, Keymat, "keymat"));
  exports.Set("randomBytes", Napi::Function::New(env, RandomBytes, "randomBytes"));
  exports.Set("timingSafeEqual", Napi::Function::New(env, TimingSafeEqual, "timingSafeEqual"));
  exports.Set("hashSize", Napi::Function::New(env, HashAvailable, "hashSize"));
}
