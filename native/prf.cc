#include "addon.h"
#include "common.h"

void InitPrf(Napi::Env, Napi::Object) {}
