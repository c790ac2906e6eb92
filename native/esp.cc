#include "addon.h"
#include "common.h"

void InitEsp(Napi::Env, Napi::Object) {}
