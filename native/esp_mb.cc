// The intel-ipsec-mb ESP engine (see esp_mb.h). Without the library (IKE_HAVE_IPSEC_MB undefined) only the
// stubs at the end are compiled and every SA uses EVP.
#include "esp_mb.h"

#include <openssl/crypto.h>  // OPENSSL_cleanse

#include <chrono>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#ifdef IKE_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>

namespace ike {
namespace esp {
namespace mb {

struct Keys {
  union {
    struct {
      alignas(64) uint8_t enc[16 * 15];  // AES-256 has 15 round keys
      alignas(64) uint8_t dec[16 * 15];
    } aes;
    struct gcm_key_data gcm;  // expanded AES key and the GHASH key powers
    uint8_t chacha[32];
  } k;
  alignas(16) uint8_t ipad[64];  // HMAC: the hash state after (key ^ ipad), SHA-512's 64 octets at most
  alignas(16) uint8_t opad[64];
  Cipher cipher;
  size_t keyLength;
  IMB_HASH_ALG hash;  // IMB_AUTH_NULL for the AEADs
};

namespace {

// The thread's manager, made on first use; its destructor runs at thread exit.
struct ThreadManager {
  IMB_MGR* mgr = nullptr;
  bool tried = false;
  ~ThreadManager() {
    if (mgr != nullptr) free_mb_mgr(mgr);
  }
};

IMB_MGR* NewManager(IMB_ARCH* arch) {
  IMB_MGR* m = alloc_mb_mgr(0);
  if (m == nullptr) return nullptr;
  *arch = IMB_ARCH_NONE;
  init_mb_mgr_auto(m, arch);
  // IMB_ARCH_NOAESNI (the library's code for CPUs without AES-NI) is not what this engine is for: such CPUs keep
  // EVP, which has its own code paths for them. Not measured here (this machine has AES-NI and VAES).
  if (imb_get_errno(m) != 0 || *arch < IMB_ARCH_SSE) {
    free_mb_mgr(m);
    return nullptr;
  }
  return m;
}

IMB_MGR* Manager() {
  static thread_local ThreadManager t;
  if (!t.tried) {
    t.tried = true;
    IMB_ARCH arch;
    t.mgr = NewManager(&arch);
  }
  return t.mgr;
}

struct Probe {
  bool available = false;
  std::string text;
};

const Probe& ProbeOnce() {
  static const Probe p = [] {
    Probe r;
    IMB_ARCH arch = IMB_ARCH_NONE;
    IMB_MGR* m = NewManager(&arch);
    const char* names[] = {"none", "no-aesni", "sse", "avx", "avx2", "avx512"};
    r.available = m != nullptr;
    r.text = std::string("intel-ipsec-mb ") + imb_get_version_str() + " " +
             (r.available ? names[arch < IMB_ARCH_NUM ? arch : 0] : "unavailable (no AES-NI manager on this CPU)");
    if (m != nullptr) free_mb_mgr(m);
    return r;
  }();
  return p;
}

IMB_HASH_ALG HmacOf(HashAlg h) {
  switch (h) {
    case HashAlg::Sha1: return IMB_AUTH_HMAC_SHA_1;
    case HashAlg::Sha256: return IMB_AUTH_HMAC_SHA_256;
    case HashAlg::Sha384: return IMB_AUTH_HMAC_SHA_384;
    case HashAlg::Sha512: return IMB_AUTH_HMAC_SHA_512;
    default: return IMB_AUTH_NULL;
  }
}

// RFC 2104: the inner and outer hash states after one block of key ^ ipad / key ^ opad, computed once per SA
// (the job then hashes only the message). ESP integrity keys are never longer than the block.
void HmacPads(IMB_MGR* m, HashAlg h, const uint8_t* key, size_t keyLength, Keys* k) {
  const size_t block = HmacKey::BlockLength(h);
  uint8_t pad[128];
  for (int outer = 0; outer < 2; outer++) {
    const uint8_t x = outer ? 0x5c : 0x36;
    for (size_t i = 0; i < block; i++) pad[i] = static_cast<uint8_t>((i < keyLength ? key[i] : 0) ^ x);
    uint8_t* out = outer ? k->opad : k->ipad;
    switch (h) {
      case HashAlg::Sha1: IMB_SHA1_ONE_BLOCK(m, pad, out); break;
      case HashAlg::Sha256: IMB_SHA256_ONE_BLOCK(m, pad, out); break;
      case HashAlg::Sha384: IMB_SHA384_ONE_BLOCK(m, pad, out); break;
      case HashAlg::Sha512: IMB_SHA512_ONE_BLOCK(m, pad, out); break;
      default: break;
    }
  }
  OPENSSL_cleanse(pad, sizeof(pad));
}

void Fill(IMB_JOB* job, const Keys* k, bool seal, Op* op) {
  job->src = op->src;
  job->dst = op->dst;
  job->cipher_start_src_offset_in_bytes = op->cipherOffset;
  job->msg_len_to_cipher_in_bytes = op->cipherLength;
  job->cipher_direction = seal ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
  job->chain_order = seal ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
  job->key_len_in_bytes = k->keyLength;
  job->auth_tag_output = op->tag;
  job->auth_tag_output_len_in_bytes = op->tagLength;
  job->user_data = op;
  switch (k->cipher) {
    case Cipher::AesCbc:
      job->cipher_mode = IMB_CIPHER_CBC;
      job->enc_keys = k->k.aes.enc;
      job->dec_keys = k->k.aes.dec;
      job->iv = op->iv;
      job->iv_len_in_bytes = 16;
      job->hash_alg = k->hash;
      job->hash_start_src_offset_in_bytes = 0;
      job->msg_len_to_hash_in_bytes = op->hashLength;
      job->u.HMAC._hashed_auth_key_xor_ipad = k->ipad;
      job->u.HMAC._hashed_auth_key_xor_opad = k->opad;
      break;
    case Cipher::AesGcm:
      job->cipher_mode = IMB_CIPHER_GCM;
      job->hash_alg = IMB_AUTH_AES_GMAC;
      job->enc_keys = &k->k.gcm;
      job->dec_keys = &k->k.gcm;
      job->iv = op->nonce;
      job->iv_len_in_bytes = 12;
      job->hash_start_src_offset_in_bytes = op->cipherOffset;
      job->msg_len_to_hash_in_bytes = op->cipherLength;
      job->u.GCM.aad = op->aad;
      job->u.GCM.aad_len_in_bytes = sizeof(op->aad);
      break;
    case Cipher::ChaChaPoly:
      job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
      job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
      job->enc_keys = k->k.chacha;
      job->dec_keys = k->k.chacha;
      job->iv = op->nonce;
      job->iv_len_in_bytes = 12;
      job->hash_start_src_offset_in_bytes = op->cipherOffset;
      job->msg_len_to_hash_in_bytes = op->cipherLength;
      job->u.CHACHA20_POLY1305.aad = op->aad;
      job->u.CHACHA20_POLY1305.aad_len_in_bytes = sizeof(op->aad);
      break;
  }
}

}  // namespace

bool Available() { return ProbeOnce().available; }
const char* Describe() { return ProbeOnce().text.c_str(); }

Keys* NewKeys(Cipher cipher, const uint8_t* encKey, size_t encKeyLength, HashAlg hash, const uint8_t* integKey,
              size_t integKeyLength) {
  IMB_MGR* m = Manager();
  if (m == nullptr) return nullptr;
  Keys* k = new (std::nothrow) Keys;  // over-aligned new (C++17)
  if (k == nullptr) return nullptr;
  std::memset(static_cast<void*>(k), 0, sizeof(Keys));
  k->cipher = cipher;
  k->keyLength = encKeyLength;
  k->hash = cipher == Cipher::AesCbc ? HmacOf(hash) : IMB_AUTH_NULL;
  switch (cipher) {
    case Cipher::AesCbc:
      if (encKeyLength == 16) IMB_AES_KEYEXP_128(m, encKey, k->k.aes.enc, k->k.aes.dec);
      else if (encKeyLength == 24) IMB_AES_KEYEXP_192(m, encKey, k->k.aes.enc, k->k.aes.dec);
      else IMB_AES_KEYEXP_256(m, encKey, k->k.aes.enc, k->k.aes.dec);
      HmacPads(m, hash, integKey, integKeyLength, k);
      break;
    case Cipher::AesGcm:
      if (encKeyLength == 16) IMB_AES128_GCM_PRE(m, encKey, &k->k.gcm);
      else if (encKeyLength == 24) IMB_AES192_GCM_PRE(m, encKey, &k->k.gcm);
      else IMB_AES256_GCM_PRE(m, encKey, &k->k.gcm);
      break;
    case Cipher::ChaChaPoly:
      std::memcpy(k->k.chacha, encKey, 32);
      break;
  }
  return k;
}

void FreeKeys(Keys* k) {
  if (k == nullptr) return;
  OPENSSL_cleanse(k, sizeof(Keys));
  delete k;
}

void Run(const Keys* k, bool seal, Op* ops, size_t n) {
  for (size_t i = 0; i < n; i++) ops[i].ok = false;  // a job the manager never gave back stays failed
  IMB_MGR* m = Manager();
  if (m == nullptr || n == 0) return;
  auto done = [](IMB_JOB* job) { static_cast<Op*>(job->user_data)->ok = job->status == IMB_STATUS_COMPLETED; };
  for (size_t i = 0; i < n; i++) {
    IMB_JOB* job = IMB_GET_NEXT_JOB(m);
    Fill(job, k, seal, &ops[i]);
    // Jobs come back in submission order, each once: submit returns the oldest finished one (or none yet).
    for (job = IMB_SUBMIT_JOB(m); job != nullptr; job = IMB_GET_COMPLETED_JOB(m)) done(job);
  }
  // Nothing may stay in flight: the ops (and the packets they point at) belong to this call.
  for (IMB_JOB* job = IMB_FLUSH_JOB(m); job != nullptr; job = IMB_FLUSH_JOB(m)) done(job);
}

#ifdef IKE_TEST_HOOKS
double RawBench(Cipher cipher, size_t encKeyLength, HashAlg hash, size_t tagLength, bool seal, size_t size,
                size_t batch, size_t iterations) {
  IMB_MGR* m = Manager();
  if (m == nullptr) return -1;
  uint8_t key[32], ikey[64];
  for (size_t i = 0; i < sizeof(key); i++) key[i] = static_cast<uint8_t>(i * 7 + 1);
  for (size_t i = 0; i < sizeof(ikey); i++) ikey[i] = static_cast<uint8_t>(i * 5 + 3);
  Keys* k = NewKeys(cipher, key, encKeyLength, hash, ikey, HmacKey::DigestLength(hash));
  if (k == nullptr) return -1;
  const size_t len = cipher == Cipher::AesCbc ? (size + 15) / 16 * 16 : size;
  const size_t head = 8 + (cipher == Cipher::AesCbc ? 16 : 8);
  const size_t stride = (head + len + 32 + 63) / 64 * 64;
  std::vector<uint8_t> buf(stride * batch, 0xa5), out(stride * batch);
  uint8_t iv[16] = {0}, nonce[12] = {0}, aad[8] = {1, 2, 3, 4, 0, 0, 0, 1}, tag[32];
  const IMB_HASH_ALG hmac = HmacOf(hash);
  auto t0 = std::chrono::steady_clock::now();
  // The plain job loop: fill, submit, take whatever completed, flush at the end of each batch.
  for (size_t it = 0; it < iterations; it++) {
    for (size_t j = 0; j < batch; j++) {
      IMB_JOB* job = IMB_GET_NEXT_JOB(m);
      uint8_t* p = buf.data() + j * stride;
      job->src = p;
      job->dst = (seal ? p : out.data() + j * stride) + head;
      job->cipher_start_src_offset_in_bytes = head;
      job->msg_len_to_cipher_in_bytes = len;
      job->cipher_direction = seal ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
      job->chain_order = seal ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
      job->key_len_in_bytes = encKeyLength;
      job->auth_tag_output = seal ? p + head + len : tag;
      job->auth_tag_output_len_in_bytes = tagLength;
      if (cipher == Cipher::AesCbc) {
        job->cipher_mode = IMB_CIPHER_CBC;
        job->enc_keys = k->k.aes.enc;
        job->dec_keys = k->k.aes.dec;
        job->iv = iv;
        job->iv_len_in_bytes = 16;
        job->hash_alg = hmac;
        job->hash_start_src_offset_in_bytes = 0;
        job->msg_len_to_hash_in_bytes = head + len;
        job->u.HMAC._hashed_auth_key_xor_ipad = k->ipad;
        job->u.HMAC._hashed_auth_key_xor_opad = k->opad;
      } else {
        const bool gcm = cipher == Cipher::AesGcm;
        job->cipher_mode = gcm ? IMB_CIPHER_GCM : IMB_CIPHER_CHACHA20_POLY1305;
        job->hash_alg = gcm ? IMB_AUTH_AES_GMAC : IMB_AUTH_CHACHA20_POLY1305;
        job->enc_keys = gcm ? static_cast<const void*>(&k->k.gcm) : k->k.chacha;
        job->dec_keys = job->enc_keys;
        job->iv = nonce;
        job->iv_len_in_bytes = 12;
        job->hash_start_src_offset_in_bytes = head;
        job->msg_len_to_hash_in_bytes = len;
        job->u.GCM.aad = aad;  // same layout as CHACHA20_POLY1305's aad / aad_len
        job->u.GCM.aad_len_in_bytes = 8;
      }
      // Completions are taken, not looked at: only the work is timed.
      for (job = IMB_SUBMIT_JOB(m); job != nullptr; job = IMB_GET_COMPLETED_JOB(m)) {
      }
    }
    while (IMB_FLUSH_JOB(m) != nullptr) {
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  FreeKeys(k);
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}
#endif  // IKE_TEST_HOOKS

}  // namespace mb
}  // namespace esp
}  // namespace ike

#else  // !IKE_HAVE_IPSEC_MB: EVP only

namespace ike {
namespace esp {
namespace mb {

struct Keys {};
bool Available() { return false; }
const char* Describe() { return "intel-ipsec-mb not built in (install libipsec-mb-dev and rebuild)"; }
Keys* NewKeys(Cipher, const uint8_t*, size_t, HashAlg, const uint8_t*, size_t) { return nullptr; }
void FreeKeys(Keys*) {}
void Run(const Keys*, bool, Op* ops, size_t n) {
  for (size_t i = 0; i < n; i++) ops[i].ok = false;
}
#ifdef IKE_TEST_HOOKS
double RawBench(Cipher, size_t, HashAlg, size_t, bool, size_t, size_t, size_t) { return -1; }
#endif

}  // namespace mb
}  // namespace esp
}  // namespace ike

#endif  // IKE_HAVE_IPSEC_MB
