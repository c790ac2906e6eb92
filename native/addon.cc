#include "addon.h"

#include "codes.h"

// The numbers of codes.h, so that a test can compare them with ts/native-codes.ts.
static void InitCodes(Napi::Env env, Napi::Object exports) {
  Napi::Object codes = Napi::Object::New(env);
  Napi::Object hash = Napi::Object::New(env);
  hash.Set("md5", static_cast<int>(ike::kMd5));
  hash.Set("sha1", static_cast<int>(ike::kSha1));
  hash.Set("sha256", static_cast<int>(ike::kSha256));
  hash.Set("sha384", static_cast<int>(ike::kSha384));
  hash.Set("sha512", static_cast<int>(ike::kSha512));
  codes.Set("hash", hash);
  Napi::Object cipher = Napi::Object::New(env);
  cipher.Set("aes-128-cbc", static_cast<int>(ike::kAes128Cbc));
  cipher.Set("aes-192-cbc", static_cast<int>(ike::kAes192Cbc));
  cipher.Set("aes-256-cbc", static_cast<int>(ike::kAes256Cbc));
  cipher.Set("des-ede3-cbc", static_cast<int>(ike::kDesEde3Cbc));
  cipher.Set("des-cbc", static_cast<int>(ike::kDesCbc));
  codes.Set("cipher", cipher);
  Napi::Object status = Napi::Object::New(env);
  status.Set("OK", static_cast<int>(ike::esp::kOk));
  status.Set("REPLAYED", static_cast<int>(ike::esp::kReplayed));
  status.Set("AUTH_FAILED", static_cast<int>(ike::esp::kAuthFailed));
  status.Set("MALFORMED", static_cast<int>(ike::esp::kMalformed));
  status.Set("WRONG_SPI", static_cast<int>(ike::esp::kWrongSpi));
  status.Set("SEQ_OVERFLOW", static_cast<int>(ike::esp::kSeqOverflow));
  status.Set("BAD_BOUNDS", static_cast<int>(ike::esp::kBadBounds));
  status.Set("CRYPTO_ERROR", static_cast<int>(ike::esp::kCryptoError));
  codes.Set("espStatus", status);
  exports.Set("codes", codes);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitCodes(env, exports);
  InitDh(env, exports);
  InitPrf(env, exports);
  InitCipher(env, exports);
  InitEsp(env, exports);
  InitDataplane(env, exports);
  InitUdp(env, exports);
  InitSig(env, exports);
#ifdef IKE_TEST_HOOKS
  exports.Set("testHooks", true);
#endif
  return exports;
}

// NODE_GYP_MODULE_NAME: ikev1_native or ikev1_native_test, the same sources built twice (binding.gyp).
NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
