// Each part of the addon registers its functions and classes on the module's exports.
#pragma once
#include <napi.h>

void InitDh(Napi::Env env, Napi::Object exports);      // dh.cc: MODP and ECP Diffie-Hellman
void InitPrf(Napi::Env env, Napi::Object exports);     // prf.cc: HMAC prf, hashes, IKEv1 key derivation, random
void InitCipher(Napi::Env env, Napi::Object exports);  // cipher.cc: IKE message CBC encryption
void InitEsp(Napi::Env env, Napi::Object exports);     // esp.cc: ESP SAs, batch seal/open, replay window
void InitDataplane(Napi::Env env, Napi::Object exports);  // dataplane.cc: TUN device, ESP-in-UDP worker thread
void InitUdp(Napi::Env env, Napi::Object exports);        // udp.cc: batched UDP socket (sendmmsg / recvmmsg) for IKE
void InitSig(Napi::Env env, Napi::Object exports);        // sig.cc: ECDSA over a precomputed digest (IKEv1 SIG)
