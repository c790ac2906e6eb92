#include "addon.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitDh(env, exports);
  InitPrf(env, exports);
  InitCipher(env, exports);
  InitEsp(env, exports);
  InitDataplane(env, exports);
  InitUdp(env, exports);
  return exports;
}

NODE_API_MODULE(ikev1_native, Init)
