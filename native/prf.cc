// HMAC prf, hashes and the IKEv1 key derivations of RFC 2409 section 5 and Appendix B, plus RAND_bytes and a
// constant-time comparison. Every function takes its data as several buffers so JavaScript never concatenates.
#include "ikecrypto.h"  // first: it sets OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/rand.h>
#if !defined(_WIN32)
#include <dlfcn.h>
#endif

#include <memory>
#include <mutex>
#include <vector>

#include "addon.h"

namespace ike {

namespace {
template <typename Ctx, Ctx DigestCtx::*member, int (*Init)(Ctx*), int (*Update)(Ctx*, const void*, size_t),
          int (*Final)(unsigned char*, Ctx*)>
struct Ops {
  static int init(DigestCtx* c) { return Init(&(c->*member)); }
  static int update(DigestCtx* c, const void* d, size_t n) { return Update(&(c->*member), d, n); }
  static int final(uint8_t* out, DigestCtx* c) { return Final(out, &(c->*member)); }
};
template <typename O>
constexpr DigestAlg Make(size_t size, size_t block) {
  return DigestAlg{size, block, &O::init, &O::update, &O::final};
}
const DigestAlg kDigests[kHashCount] = {
    Make<Ops<MD5_CTX, &DigestCtx::md5, MD5_Init, MD5_Update, MD5_Final>>(16, 64),
    Make<Ops<SHA_CTX, &DigestCtx::sha1, SHA1_Init, SHA1_Update, SHA1_Final>>(20, 64),
    Make<Ops<SHA256_CTX, &DigestCtx::sha256, SHA256_Init, SHA256_Update, SHA256_Final>>(32, 64),
    Make<Ops<SHA512_CTX, &DigestCtx::sha512, SHA384_Init, SHA384_Update, SHA384_Final>>(48, 128),
    Make<Ops<SHA512_CTX, &DigestCtx::sha512, SHA512_Init, SHA512_Update, SHA512_Final>>(64, 128),
};

// Upper bounds that keep a typo from allocating gigabytes; far above anything IKE needs.
constexpr int64_t kMaxDerived = 1 << 16;  // KEYMAT / Ka bytes
constexpr int64_t kMaxRandom = 1 << 26;   // 64 MiB
}  // namespace

const DigestAlg* Digest(int alg) { return alg >= 0 && alg < kHashCount ? &kDigests[alg] : nullptr; }

BN_CTX* ThreadBnCtx() {
  thread_local std::unique_ptr<BN_CTX, void (*)(BN_CTX*)> c(BN_CTX_new(), BN_CTX_free);
  return c.get();
}

bool OpenSslSymbolsPresent(std::string* missing) {
#if defined(_WIN32)
  (void)missing;
  return true;  // resolved at link time against node.lib
#else
  static const char* const kNames[] = {
      "MD5_Init", "MD5_Update", "MD5_Final", "SHA1_Init", "SHA1_Update", "SHA1_Final", "SHA256_Init",
      "SHA256_Update", "SHA256_Final", "SHA384_Init", "SHA384_Update", "SHA384_Final", "SHA512_Init",
      "SHA512_Update", "SHA512_Final", "RAND_bytes", "CRYPTO_memcmp", "BN_get_rfc2409_prime_768",
      "BN_get_rfc2409_prime_1024", "BN_get_rfc3526_prime_1536", "BN_get_rfc3526_prime_2048",
      "BN_get_rfc3526_prime_3072", "BN_get_rfc3526_prime_4096", "BN_get_rfc3526_prime_6144",
      "BN_get_rfc3526_prime_8192", "BN_mod_exp_mont_consttime", "BN_MONT_CTX_set", "BN_mod_mul_montgomery",
      "BN_to_montgomery", "BN_from_montgomery", "BN_priv_rand_ex", "BN_priv_rand_range_ex", "BN_lebin2bn",
      "BN_bn2lebinpad", "BN_bn2binpad", "BN_secure_new", "EC_GROUP_new_by_curve_name", "EC_POINT_mul",
      "EC_POINT_set_affine_coordinates", "EC_POINT_get_affine_coordinates", "EC_POINT_is_on_curve",
      "DES_set_key_unchecked", "DES_ncbc_encrypt", "EVP_CIPHER_fetch", "EVP_CipherInit_ex2",
      "EVP_CipherUpdate", "EVP_CipherFinal_ex"};
  for (const char* n : kNames) {
    if (dlsym(RTLD_DEFAULT, n) == nullptr) {
      *missing = n;
      return false;
    }
  }
  return true;
#endif
}

namespace {

// Arguments [from, Length()) as byte views, without allocating: at most kMaxParts of them.
constexpr size_t kMaxParts = 32;
struct Parts {
  Bytes v[kMaxParts];
  size_t n = 0;
};
bool GetParts(const Napi::CallbackInfo& info, size_t from, Parts* parts) {
  if (info.Length() > from + kMaxParts) return ThrowRange(info.Env(), "at most 32 data buffers");
  for (size_t i = from; i < info.Length(); i++) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;  // one call per buffer, as in GetBytes
    if (napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr) != napi_ok ||
        type != napi_uint8_array)
      return ThrowType(info.Env(), "data[" + std::to_string(i - from) + "] must be a Buffer or Uint8Array");
    parts->v[parts->n++] = Bytes{static_cast<const uint8_t*>(data), length, true};
  }
  return true;
}

// Every function below writes its result into the caller's `out` buffer (argument 0) and returns nothing;
// results are computed into local storage first, so `out` may alias an input.

// hash(out, alg, ...data): out = H(data[0] | data[1] | ...), out.length = digest length.
Napi::Value Hash(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  Parts parts;
  if (!out.ok || !GetHash(info, 1, &d) || !CheckOutSize(info, out, d->size) || !GetParts(info, 2, &parts))
    return env.Undefined();
  DigestCtx c;
  d->init(&c);
  for (size_t i = 0; i < parts.n; i++)
    if (parts.v[i].size) d->update(&c, parts.v[i].data, parts.v[i].size);
  uint8_t md[kMaxMdSize];
  d->final(md, &c);
  std::memcpy(out.data, md, d->size);
  return env.Undefined();
}

// The computations, apart from the argument checks of the functions that call them: each derivation is
// written once, for its own function and for Phase1KeysPsk, which chains four of them in one call.

// md = HMAC(key, parts[0] | parts[1] | ...)
void HmacParts(const DigestAlg* d, const Bytes& key, const Parts& parts, uint8_t* md) {
  Hmac h;
  h.Key(d, key.data, key.size);
  h.Begin();
  for (size_t i = 0; i < parts.n; i++) h.Update(parts.v[i].data, parts.v[i].size);
  h.Final(md);
}

// K1 | K2 | ... into out (whole length), Kn = prf(key, [Kn-1 |] suffix...), first block's prefix optional.
// Shared by Appendix B (Ka) and KEYMAT; computed in a local buffer because out may alias an input.
template <typename Block>
void Expand(Hmac& h, OutBytes out, Block block) {
  const size_t n = h.size();
  const size_t blocks = (out.size + n - 1) / n;
  std::vector<uint8_t> k(blocks * n);
  for (size_t i = 0; i < blocks; i++) {
    h.Begin();
    block(i, i == 0 ? nullptr : &k[(i - 1) * n]);
    h.Final(&k[i * n]);
  }
  std::memcpy(out.data, k.data(), out.size);
  OPENSSL_cleanse(k.data(), k.size());
}

// md = SKEYID = prf(psk, Ni_b | Nr_b) (RFC 2409 section 5, pre-shared keys).
void DeriveSkeyidPsk(const DigestAlg* d, const Bytes& psk, const Bytes& ni, const Bytes& nr, uint8_t* md) {
  Hmac h;
  h.Key(d, psk.data, psk.size);
  h.Begin();
  h.Update(ni.data, ni.size);
  h.Update(nr.data, nr.size);
  h.Final(md);
}

// o = SKEYID_d | SKEYID_a | SKEYID_e (3 digests; o must not overlap the inputs). SKEYID_d = prf(SKEYID,
// g^xy | CKY-I | CKY-R | 0); _a and _e prepend the previous key and count on. The cookies are 8 bytes.
void DeriveSkeyidChildren(const DigestAlg* d, const uint8_t* skeyid, size_t skeyidLen, const Bytes& gxy,
                          const uint8_t* ci, const uint8_t* cr, uint8_t* o) {
  Hmac h;
  h.Key(d, skeyid, skeyidLen);
  const size_t n = d->size;
  for (uint8_t i = 0; i < 3; i++) {
    h.Begin();
    if (i > 0) h.Update(o + (i - 1) * n, n);
    h.Update(gxy.data, gxy.size);
    h.Update(ci, 8);
    h.Update(cr, 8);
    h.Update(&i, 1);
    h.Final(o + i * n);
  }
}

// out = Ka (RFC 2409 Appendix B): the leading bytes of SKEYID_e when it is long enough, else K1 | K2 | ...
// with K1 = prf(SKEYID_e, 0x00), Kn = prf(SKEYID_e, Kn-1). out may alias e.
void DeriveKa(const DigestAlg* d, const uint8_t* e, size_t eLen, OutBytes out) {
  if (out.size <= eLen) {
    std::memmove(out.data, e, out.size);
    return;
  }
  Hmac h;
  h.Key(d, e, eLen);
  const size_t n = d->size;
  const uint8_t zero = 0;
  Expand(h, out, [&](size_t, const uint8_t* prev) { prev ? h.Update(prev, n) : h.Update(&zero, 1); });
}

// md = hash(a | b), the whole digest (the IVs: g^xi | g^xr in phase 1, last block | M-ID in phase 2).
void HashPair(const DigestAlg* d, const uint8_t* a, size_t aLen, const uint8_t* b, size_t bLen, uint8_t* md) {
  DigestCtx c;
  d->init(&c);
  if (aLen) d->update(&c, a, aLen);
  if (bLen) d->update(&c, b, bLen);
  d->final(md, &c);
}

// prf(out, alg, key, ...data): out = HMAC(key, data[0] | data[1] | ...).
Napi::Value Prf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  Parts parts;
  if (!out.ok || !GetHash(info, 1, &d) || !CheckOutSize(info, out, d->size)) return env.Undefined();
  Bytes key = GetBytes(info, 2, "key");
  if (!key.ok || !GetParts(info, 3, &parts)) return env.Undefined();
  uint8_t md[kMaxMdSize];
  HmacParts(d, key, parts, md);
  std::memcpy(out.data, md, d->size);
  OPENSSL_cleanse(md, sizeof md);
  return env.Undefined();
}

// skeyidPsk(out, alg, psk, Ni_b, Nr_b): out = prf(psk, Ni_b | Nr_b).
Napi::Value SkeyidPsk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d) || !CheckOutSize(info, out, d->size)) return env.Undefined();
  Bytes psk = GetBytes(info, 2, "psk");
  if (!psk.ok) return env.Undefined();
  Bytes ni = GetBytes(info, 3, "nonceI");
  if (!ni.ok) return env.Undefined();
  Bytes nr = GetBytes(info, 4, "nonceR");
  if (!nr.ok) return env.Undefined();
  uint8_t md[kMaxMdSize];
  DeriveSkeyidPsk(d, psk, ni, nr, md);
  std::memcpy(out.data, md, d->size);
  OPENSSL_cleanse(md, sizeof md);
  return env.Undefined();
}

// skeyidSig(out, alg, Ni_b, Nr_b, g^xy): out = prf(Ni_b | Nr_b, g^xy).
Napi::Value SkeyidSig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d) || !CheckOutSize(info, out, d->size)) return env.Undefined();
  Bytes ni = GetBytes(info, 2, "nonceI");
  if (!ni.ok) return env.Undefined();
  Bytes nr = GetBytes(info, 3, "nonceR");
  if (!nr.ok) return env.Undefined();
  Bytes gxy = GetBytes(info, 4, "gxy");
  if (!gxy.ok) return env.Undefined();
  std::vector<uint8_t> key(ni.size + nr.size);
  if (ni.size) std::memcpy(key.data(), ni.data, ni.size);
  if (nr.size) std::memcpy(key.data() + ni.size, nr.data, nr.size);
  Hmac h;
  h.Key(d, key.data(), key.size());
  h.Begin();
  h.Update(gxy.data, gxy.size);
  uint8_t md[kMaxMdSize];
  h.Final(md);
  std::memcpy(out.data, md, d->size);
  OPENSSL_cleanse(md, sizeof md);
  return env.Undefined();
}

// phase1Keys(out, alg, SKEYID, g^xy, CKY-I, CKY-R): out = SKEYID_d | SKEYID_a | SKEYID_e (3 * digest length).
Napi::Value Phase1Keys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d) || !CheckOutSize(info, out, 3 * d->size)) return env.Undefined();
  Bytes skeyid = GetBytes(info, 2, "skeyid");
  if (!skeyid.ok) return env.Undefined();
  Bytes gxy = GetBytes(info, 3, "gxy");
  if (!gxy.ok) return env.Undefined();
  Bytes ci = GetBytes(info, 4, "cookieI");
  if (!ci.ok) return env.Undefined();
  Bytes cr = GetBytes(info, 5, "cookieR");
  if (!cr.ok) return env.Undefined();
  if (ci.size != 8 || cr.size != 8) {
    ThrowRange(env, "ISAKMP cookies must be 8 bytes");
    return env.Undefined();
  }
  const size_t n = d->size;
  uint8_t o[3 * kMaxMdSize];  // local: out may alias an input
  DeriveSkeyidChildren(d, skeyid.data, skeyid.size, gxy, ci.data, cr.data, o);
  std::memcpy(out.data, o, 3 * n);
  OPENSSL_cleanse(o, sizeof o);
  return env.Undefined();
}

// encryptionKey(out, alg, SKEYID_e): out = Ka of out.length bytes (RFC 2409 Appendix B): the leading bytes of
// SKEYID_e when it is long enough, else K1 | K2 | ... with K1 = prf(SKEYID_e, 0x00), Kn = prf(SKEYID_e, Kn-1).
Napi::Value EncryptionKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d)) return env.Undefined();
  Bytes e = GetBytes(info, 2, "skeyidE");
  if (!e.ok) return env.Undefined();
  if (out.size < 1 || out.size > static_cast<size_t>(kMaxDerived)) {
    ThrowRange(env, "out must be 1 to 65536 bytes");
    return env.Undefined();
  }
  DeriveKa(d, e.data, e.size, out);
  return env.Undefined();
}

// phase1Iv(out, alg, g^xi, g^xr): out = hash(g^xi | g^xr) truncated to out.length (the cipher block).
Napi::Value Phase1Iv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d)) return env.Undefined();
  Bytes gi = GetBytes(info, 2, "gxi");
  if (!gi.ok) return env.Undefined();
  Bytes gr = GetBytes(info, 3, "gxr");
  if (!gr.ok) return env.Undefined();
  if (out.size < 1 || out.size > d->size) {
    ThrowRange(env, "out (the IV) must be 1 to " + std::to_string(d->size) + " bytes");
    return env.Undefined();
  }
  uint8_t md[kMaxMdSize];
  HashPair(d, gi.data, gi.size, gr.data, gr.size, md);
  std::memcpy(out.data, md, out.size);
  return env.Undefined();
}

// phase2Iv(out, alg, last phase-1 CBC block, message ID): out = hash(block | M-ID, 4 bytes big-endian),
// truncated to out.length.
Napi::Value Phase2Iv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d)) return env.Undefined();
  Bytes last = GetBytes(info, 2, "lastBlock");
  if (!last.ok) return env.Undefined();
  int64_t mid;
  if (!GetInt(info, 3, "messageId", 0, 0xffffffffLL, &mid)) return env.Undefined();
  if (out.size < 1 || out.size > d->size) {
    ThrowRange(env, "out (the IV) must be 1 to " + std::to_string(d->size) + " bytes");
    return env.Undefined();
  }
  uint8_t m[4] = {static_cast<uint8_t>(mid >> 24), static_cast<uint8_t>(mid >> 16), static_cast<uint8_t>(mid >> 8),
                  static_cast<uint8_t>(mid)};
  uint8_t md[kMaxMdSize];
  HashPair(d, last.data, last.size, m, 4, md);
  std::memcpy(out.data, md, out.size);
  return env.Undefined();
}

// keymat(out, alg, SKEYID_d, g(qm)^xy | null, protocol, SPI, Ni_b, Nr_b) (RFC 2409 section 5.5), out.length
// bytes: K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), Kn = prf(SKEYID_d, Kn-1 | same).
Napi::Value Keymat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d)) return env.Undefined();
  Bytes skeyidD = GetBytes(info, 2, "skeyidD");
  if (!skeyidD.ok) return env.Undefined();
  Bytes gxy;
  gxy.ok = true;
  if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
    gxy = GetBytes(info, 3, "gxy");
    if (!gxy.ok) return env.Undefined();
  }
  int64_t proto;
  if (!GetInt(info, 4, "protocol", 0, 255, &proto)) return env.Undefined();
  Bytes spi = GetBytes(info, 5, "spi");
  if (!spi.ok) return env.Undefined();
  Bytes ni = GetBytes(info, 6, "nonceI");
  if (!ni.ok) return env.Undefined();
  Bytes nr = GetBytes(info, 7, "nonceR");
  if (!nr.ok) return env.Undefined();
  if (out.size < 1 || out.size > static_cast<size_t>(kMaxDerived)) {
    ThrowRange(env, "out must be 1 to 65536 bytes");
    return env.Undefined();
  }
  Hmac h;
  h.Key(d, skeyidD.data, skeyidD.size);
  const size_t n = d->size;
  const uint8_t p = static_cast<uint8_t>(proto);
  Expand(h, out, [&](size_t, const uint8_t* prev) {
    if (prev) h.Update(prev, n);
    h.Update(gxy.data, gxy.size);
    h.Update(&p, 1);
    h.Update(spi.data, spi.size);
    h.Update(ni.data, ni.size);
    h.Update(nr.data, nr.size);
  });
  return env.Undefined();
}

// phase1KeysPsk(out, alg, psk, Ni_b, Nr_b, g^xy, CKY-I, CKY-R, g^xi, g^xr, keyLength, ivLength): everything phase 1
// with a pre-shared key derives once g^xy is known, in one crossing: out = SKEYID | SKEYID_d | SKEYID_a |
// SKEYID_e | Ka (keyLength) | IV (ivLength), the same values as skeyidPsk, phase1Keys, encryptionKey and
// phase1Iv one after the other.
Napi::Value Phase1KeysPsk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  const DigestAlg* d;
  if (!out.ok || !GetHash(info, 1, &d)) return env.Undefined();
  const char* names[] = {"psk", "nonceI", "nonceR", "gxy", "cookieI", "cookieR", "gxi", "gxr"};
  Bytes in[8];
  for (size_t i = 0; i < 8; i++) {
    in[i] = GetBytes(info, 2 + i, names[i]);
    if (!in[i].ok) return env.Undefined();
  }
  const Bytes &psk = in[0], &ni = in[1], &nr = in[2], &gxy = in[3], &ci = in[4], &cr = in[5], &gi = in[6], &gr = in[7];
  int64_t keyLen, ivLen;
  if (!GetInt(info, 10, "keyLength", 1, kMaxDerived, &keyLen) ||
      !GetInt(info, 11, "ivLength", 1, static_cast<int64_t>(d->size), &ivLen))
    return env.Undefined();
  if (ci.size != 8 || cr.size != 8) {
    ThrowRange(env, "ISAKMP cookies must be 8 bytes");
    return env.Undefined();
  }
  const size_t n = d->size;
  if (!CheckOutSize(info, out, 4 * n + static_cast<size_t>(keyLen + ivLen))) return env.Undefined();
  std::vector<uint8_t> o(out.size);  // local: out may alias an input
  uint8_t* skeyid = o.data();
  DeriveSkeyidPsk(d, psk, ni, nr, skeyid);
  DeriveSkeyidChildren(d, skeyid, n, gxy, ci.data, cr.data, skeyid + n);
  uint8_t* ka = skeyid + 4 * n;
  DeriveKa(d, skeyid + 3 * n, n, OutBytes{ka, static_cast<size_t>(keyLen), true});
  uint8_t md[kMaxMdSize];
  HashPair(d, gi.data, gi.size, gr.data, gr.size, md);
  std::memcpy(ka + keyLen, md, static_cast<size_t>(ivLen));
  std::memcpy(out.data, o.data(), o.size());
  OPENSSL_cleanse(o.data(), o.size());
  return env.Undefined();
}

// prfEqual(alg, key, expected, ...data): HMAC(key, data[0] | data[1] | ...) == expected, compared in constant
// time (false for a different length, which is public): verifying a HASH payload without a round trip of the
// computed value through JavaScript.
Napi::Value PrfEqual(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DigestAlg* d;
  Parts parts;
  if (!GetHash(info, 0, &d)) return env.Undefined();
  Bytes key = GetBytes(info, 1, "key");
  if (!key.ok) return env.Undefined();
  Bytes expected = GetBytes(info, 2, "expected");
  if (!expected.ok || !GetParts(info, 3, &parts)) return env.Undefined();
  uint8_t md[kMaxMdSize];
  HmacParts(d, key, parts, md);
  const bool equal = expected.size == d->size && CRYPTO_memcmp(md, expected.data, d->size) == 0;
  OPENSSL_cleanse(md, sizeof md);
  return Napi::Boolean::New(env, equal);
}

// randomBytes(out): fills out from OpenSSL's CSPRNG.
Napi::Value RandomBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OutBytes out = GetOut(info, 0);
  if (!out.ok) return env.Undefined();
  if (out.size > static_cast<size_t>(kMaxRandom)) {
    ThrowRange(env, "at most 64 MiB of random bytes per call");
    return env.Undefined();
  }
  if (out.size > 0 && RAND_bytes(out.data, static_cast<int>(out.size)) != 1) ThrowOpenSsl(env, "RAND_bytes");
  return env.Undefined();
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

// hashSize(alg) -> digest length in bytes.
Napi::Value HashSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DigestAlg* d;
  if (!GetHash(info, 0, &d)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(d->size));
}

}  // namespace
}  // namespace ike

void InitPrf(Napi::Env env, Napi::Object exports) {
  using namespace ike;
  std::string missing;
  if (!OpenSslSymbolsPresent(&missing)) return;  // InitDh has already thrown
  exports.Set("hash", Napi::Function::New(env, Hash, "hash"));
  exports.Set("prf", Napi::Function::New(env, Prf, "prf"));
  exports.Set("skeyidPsk", Napi::Function::New(env, SkeyidPsk, "skeyidPsk"));
  exports.Set("skeyidSig", Napi::Function::New(env, SkeyidSig, "skeyidSig"));
  exports.Set("phase1Keys", Napi::Function::New(env, Phase1Keys, "phase1Keys"));
  exports.Set("encryptionKey", Napi::Function::New(env, EncryptionKey, "encryptionKey"));
  exports.Set("phase1Iv", Napi::Function::New(env, Phase1Iv, "phase1Iv"));
  exports.Set("phase2Iv", Napi::Function::New(env, Phase2Iv, "phase2Iv"));
  exports.Set("keymat", Napi::Function::New(env, Keymat, "keymat"));
  exports.Set("phase1KeysPsk", Napi::Function::New(env, Phase1KeysPsk, "phase1KeysPsk"));
  exports.Set("prfEqual", Napi::Function::New(env, PrfEqual, "prfEqual"));
  exports.Set("randomBytes", Napi::Function::New(env, RandomBytes, "randomBytes"));
  exports.Set("timingSafeEqual", Napi::Function::New(env, TimingSafeEqual, "timingSafeEqual"));
  exports.Set("hashSize", Napi::Function::New(env, HashSize, "hashSize"));
}
