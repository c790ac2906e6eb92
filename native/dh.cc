#include "addon.h"
#include "common.h"

void InitDh(Napi::Env, Napi::Object) {}
