// ECDSA over a digest the caller already has. IKEv1 signs HASH_I / HASH_R itself, the prf output, with no
// further hashing (strongSwan's SIGN_ECDSA_WITH_NULL, RFC 4754 section 8), and the signature travels as r | s,
// each as long as the curve's field. node:crypto always hashes what it signs for EC keys, so this one step
// goes through the OpenSSL that Node ships: EVP_PKEY_sign / EVP_PKEY_verify without a message digest set.
//
//   ecdsaSignDigest(pkcs8Der, digest) -> Buffer r | s
//   ecdsaVerifyDigest(spkiDer, digest, rs) -> boolean
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <vector>

#include "addon.h"
#include "common.h"

namespace ike::sig {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using SigPtr = std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)>;

// The field size in bytes of an EC key (32 for P-256, 48 for P-384, 66 for P-521), or 0 for any other key.
static int FieldBytes(EVP_PKEY* key) {
  if (EVP_PKEY_base_id(key) != EVP_PKEY_EC) return 0;
  return (EVP_PKEY_bits(key) + 7) / 8;
}

static bool DigestOk(const Napi::CallbackInfo& info, const Bytes& digest) {
  if (digest.size < 16 || digest.size > 64) return ThrowRange(info.Env(), "digest must be 16-64 bytes");
  return true;
}

Napi::Value EcdsaSignDigest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes der = GetBytes(info, 0, "pkcs8Der");
  if (!der.ok) return env.Undefined();
  Bytes digest = GetBytes(info, 1, "digest");
  if (!digest.ok || !DigestOk(info, digest)) return env.Undefined();
  const unsigned char* p = der.data;
  PkeyPtr key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size)), EVP_PKEY_free);
  int field = key ? FieldBytes(key.get()) : 0;
  if (field == 0) {
    ThrowType(env, "pkcs8Der is not an EC private key");
    return env.Undefined();
  }
  CtxPtr ctx(EVP_PKEY_CTX_new(key.get(), nullptr), EVP_PKEY_CTX_free);
  size_t len = 0;
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) <= 0 || EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data, digest.size) <= 0) {
    Napi::Error::New(env, "ECDSA signing failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<unsigned char> derSig(len);
  if (EVP_PKEY_sign(ctx.get(), derSig.data(), &len, digest.data, digest.size) <= 0) {
    Napi::Error::New(env, "ECDSA signing failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const unsigned char* q = derSig.data();
  SigPtr sig(d2i_ECDSA_SIG(nullptr, &q, static_cast<long>(len)), ECDSA_SIG_free);
  const BIGNUM *r = nullptr, *s = nullptr;
  if (sig) ECDSA_SIG_get0(sig.get(), &r, &s);
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, 2 * field);
  if (!sig || BN_bn2binpad(r, out.Data(), field) != field || BN_bn2binpad(s, out.Data() + field, field) != field) {
    Napi::Error::New(env, "ECDSA signature encoding failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return out;
}

Napi::Value EcdsaVerifyDigest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes der = GetBytes(info, 0, "spkiDer");
  if (!der.ok) return env.Undefined();
  Bytes digest = GetBytes(info, 1, "digest");
  if (!digest.ok || !DigestOk(info, digest)) return env.Undefined();
  Bytes rs = GetBytes(info, 2, "signature");
  if (!rs.ok) return env.Undefined();
  const unsigned char* p = der.data;
  PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size)), EVP_PKEY_free);
  int field = key ? FieldBytes(key.get()) : 0;
  if (field == 0) {
    ThrowType(env, "spkiDer is not an EC public key");
    return env.Undefined();
  }
  // A signature of the wrong length is not one: false, like any other that does not verify.
  if (rs.size != static_cast<size_t>(2 * field)) return Napi::Boolean::New(env, false);
  SigPtr sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(rs.data, field, nullptr);
  BIGNUM* s = BN_bin2bn(rs.data + field, field, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    Napi::Error::New(env, "out of memory").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  unsigned char* encoded = nullptr;
  int encodedLen = i2d_ECDSA_SIG(sig.get(), &encoded);
  if (encodedLen <= 0) return Napi::Boolean::New(env, false);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> hold(encoded, [](unsigned char* x) { OPENSSL_free(x); });
  CtxPtr ctx(EVP_PKEY_CTX_new(key.get(), nullptr), EVP_PKEY_CTX_free);
  bool ok = ctx && EVP_PKEY_verify_init(ctx.get()) > 0 &&
            EVP_PKEY_verify(ctx.get(), encoded, static_cast<size_t>(encodedLen), digest.data, digest.size) == 1;
  return Napi::Boolean::New(env, ok);
}

}  // namespace ike::sig

void InitSig(Napi::Env env, Napi::Object exports) {
  exports.Set("ecdsaSignDigest", Napi::Function::New(env, ike::sig::EcdsaSignDigest, "ecdsaSignDigest"));
  exports.Set("ecdsaVerifyDigest", Napi::Function::New(env, ike::sig::EcdsaVerifyDigest, "ecdsaVerifyDigest"));
}
