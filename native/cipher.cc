#include "addon.h"
#include "common.h"

void InitCipher(Napi::Env, Napi::Object) {}
