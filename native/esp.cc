// ESP data path (RFC 4303): one EspSa object per unidirectional SA, with its cipher context and HMAC key
// schedule built once, on the SA's first packet; batch seal/open over caller-owned buffers so that one N-API
// crossing carries many packets and no packet allocates.
//
// Memory: a gateway holds up to ~100,000 SA pairs, most of them idle, so an SA that never carried a packet
// holds only its keys and counters (a few hundred octets). The OpenSSL context (about 1 KiB with its
// provider data) and the HMAC pad states are built by Warm() at the first seal/open and then kept.
//
// Packet layout (RFC 4303 section 2): SPI (4) | sequence number low 32 bits (4) | IV | ciphertext of
// (payload | padding 1,2,3,... | pad length | next header) | ICV.
//
// UDP encapsulation (RFC 3948): nothing here changes. A sender writes the sealed packet after its UDP header
// (the socket adds it); a receiver on port 4500 passes the bytes after the UDP header (a datagram whose
// first four bytes are zero is IKE, not ESP: the non-ESP marker is the caller's to check).
// Before any OpenSSL header: esp_hmac.h uses the SHA*_Init/Update/Final block API, deprecated in 3.0.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string>
#include <vector>

#include "addon.h"
#include "common.h"
#include "esp_hmac.h"
#include "esp_mb.h"
#include "esp_replay.h"
#include "esp_sa.h"
#include "esp_util.h"

namespace ike {
namespace esp {
namespace {

// Des3Cbc: 3DES-EDE in CBC mode (RFC 2451), for legacy clients (Windows L2TP/IPsec, older Android) that offer
// nothing better; its 64-bit block is why a gateway should prefer AES.
enum class EncKind { AesGcm, ChaChaPoly, AesCbc, Des3Cbc, Null };

struct AlgInfo {
  const char* name;  // strongSwan ESP keyword
  EncKind enc;
  uint8_t encKeyLength;
  HashAlg hash;  // HashAlg::None for AEAD and encryption-only
  uint8_t integKeyLength;
  uint8_t icvLength;
  bool insecure;  // NULL encryption or no integrity: tests only
};

// Integrity key length = digest length; ICV = half of it, except SHA-1, MD5 and sha256_96 (96 bits, RFC 2404 / 2403,
// draft-ietf-ipsec-ciph-sha-256-00), RFC 4868 2.1. Whether MD5 may be negotiated is the configuration's call (allowWeak).
const AlgInfo kAlgs[] = {
    {"aes128gcm16", EncKind::AesGcm, 16, HashAlg::None, 0, 16, false},
    {"aes192gcm16", EncKind::AesGcm, 24, HashAlg::None, 0, 16, false},
    {"aes256gcm16", EncKind::AesGcm, 32, HashAlg::None, 0, 16, false},
    {"chacha20poly1305", EncKind::ChaChaPoly, 32, HashAlg::None, 0, 16, false},
    {"aes128-sha1", EncKind::AesCbc, 16, HashAlg::Sha1, 20, 12, false},
    {"aes192-sha1", EncKind::AesCbc, 24, HashAlg::Sha1, 20, 12, false},
    {"aes256-sha1", EncKind::AesCbc, 32, HashAlg::Sha1, 20, 12, false},
    {"aes128-sha256", EncKind::AesCbc, 16, HashAlg::Sha256, 32, 16, false},
    {"aes192-sha256", EncKind::AesCbc, 24, HashAlg::Sha256, 32, 16, false},
    {"aes256-sha256", EncKind::AesCbc, 32, HashAlg::Sha256, 32, 16, false},
    // HMAC-SHA-256 with a 96-bit ICV (draft-ietf-ipsec-ciph-sha-256-00): old Linux kernels, Android 6
    {"aes128-sha256_96", EncKind::AesCbc, 16, HashAlg::Sha256, 32, 12, false},
    {"aes192-sha256_96", EncKind::AesCbc, 24, HashAlg::Sha256, 32, 12, false},
    {"aes256-sha256_96", EncKind::AesCbc, 32, HashAlg::Sha256, 32, 12, false},
    {"aes128-sha384", EncKind::AesCbc, 16, HashAlg::Sha384, 48, 24, false},
    {"aes192-sha384", EncKind::AesCbc, 24, HashAlg::Sha384, 48, 24, false},
    {"aes256-sha384", EncKind::AesCbc, 32, HashAlg::Sha384, 48, 24, false},
    {"aes128-sha512", EncKind::AesCbc, 16, HashAlg::Sha512, 64, 32, false},
    {"aes192-sha512", EncKind::AesCbc, 24, HashAlg::Sha512, 64, 32, false},
    {"aes256-sha512", EncKind::AesCbc, 32, HashAlg::Sha512, 64, 32, false},
    {"aes128-md5", EncKind::AesCbc, 16, HashAlg::Md5, 16, 12, false},
    {"aes192-md5", EncKind::AesCbc, 24, HashAlg::Md5, 16, 12, false},
    {"aes256-md5", EncKind::AesCbc, 32, HashAlg::Md5, 16, 12, false},
    {"3des-md5", EncKind::Des3Cbc, 24, HashAlg::Md5, 16, 12, false},
    {"3des-sha1", EncKind::Des3Cbc, 24, HashAlg::Sha1, 20, 12, false},
    {"3des-sha256", EncKind::Des3Cbc, 24, HashAlg::Sha256, 32, 16, false},
    {"3des-sha256_96", EncKind::Des3Cbc, 24, HashAlg::Sha256, 32, 12, false},
    {"3des-sha384", EncKind::Des3Cbc, 24, HashAlg::Sha384, 48, 24, false},
    {"3des-sha512", EncKind::Des3Cbc, 24, HashAlg::Sha512, 64, 32, false},
    {"null-sha1", EncKind::Null, 0, HashAlg::Sha1, 20, 12, true},
    {"null-sha256", EncKind::Null, 0, HashAlg::Sha256, 32, 16, true},
    {"null-sha384", EncKind::Null, 0, HashAlg::Sha384, 48, 24, true},
    {"null-sha512", EncKind::Null, 0, HashAlg::Sha512, 64, 32, true},
    // Encryption without integrity: only to replay RFC 3602's ESP examples, which carry no ICV.
    {"aes128-none", EncKind::AesCbc, 16, HashAlg::None, 0, 0, true},
    {"aes192-none", EncKind::AesCbc, 24, HashAlg::None, 0, 0, true},
    {"aes256-none", EncKind::AesCbc, 32, HashAlg::None, 0, 0, true},
};

const AlgInfo* FindAlg(const std::string& name) {
  for (const AlgInfo& a : kAlgs)
    if (name == a.name) return &a;
  return nullptr;
}

// The SA's cipher (and the raw EVP benchmark's), fetched from the provider once per process (function-local
// statics: thread-safe initialisation, never freed). An explicit fetch also spares each SA's first
// EVP_CipherInit_ex the implicit lookup a legacy EVP_aes_*() pointer triggers. nullptr when this Node's
// OpenSSL lacks it (FIPS builds, say).
const EVP_CIPHER* FetchedCipher(const AlgInfo& a) {
  static const EVP_CIPHER* const kGcm128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static const EVP_CIPHER* const kGcm192 = EVP_CIPHER_fetch(nullptr, "AES-192-GCM", nullptr);
  static const EVP_CIPHER* const kGcm256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static const EVP_CIPHER* const kChaCha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  static const EVP_CIPHER* const kCbc128 = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  static const EVP_CIPHER* const kCbc192 = EVP_CIPHER_fetch(nullptr, "AES-192-CBC", nullptr);
  static const EVP_CIPHER* const kCbc256 = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  static const EVP_CIPHER* const kDes3 = EVP_CIPHER_fetch(nullptr, "DES-EDE3-CBC", nullptr);
  switch (a.enc) {
    case EncKind::AesGcm: return a.encKeyLength == 16 ? kGcm128 : a.encKeyLength == 24 ? kGcm192 : kGcm256;
    case EncKind::ChaChaPoly: return kChaCha;
    case EncKind::AesCbc: return a.encKeyLength == 16 ? kCbc128 : a.encKeyLength == 24 ? kCbc192 : kCbc256;
    case EncKind::Des3Cbc: return kDes3;
    default: return nullptr;
  }
}

bool IsAead(EncKind e) { return e == EncKind::AesGcm || e == EncKind::ChaChaPoly; }

// The intel-ipsec-mb engine (esp_mb.h) covers the AEADs and AES-CBC with HMAC-SHA1 / SHA2; NULL encryption,
// the integrity-less test algorithms, 3DES and HMAC-MD5 stay on EVP.
bool MbCipherOf(const AlgInfo& a, mb::Cipher* c) {
  switch (a.enc) {
    case EncKind::AesGcm: *c = mb::Cipher::AesGcm; return true;
    case EncKind::ChaChaPoly: *c = mb::Cipher::ChaChaPoly; return true;
    // HMAC-SHA1 / SHA2 only: MD5 (a legacy client's aes-md5) stays on EVP, as does 3DES; so does sha256_96,
    // whose 12-octet ICV the library refuses for SHA-256 (it takes RFC 4868's 16)
    case EncKind::AesCbc:
      *c = mb::Cipher::AesCbc;
      return a.hash == HashAlg::Sha1 || (a.hash == HashAlg::Sha256 && a.icvLength == 16) || a.hash == HashAlg::Sha384 ||
             a.hash == HashAlg::Sha512;
    default: return false;
  }
}

// Packets of one batch whose crypto the intel-ipsec-mb engine runs together: framed when queued (header, IV,
// trailer), finished after mb::Run (ICV check, replay window, padding) in the order they were queued.
struct MbQueue {
  static constexpr size_t kMax = 64;  // jobs in flight per Run: enough to fill every lane of the AVX-512 manager
  mb::Op ops[kMax];
  uint32_t entry[kMax];  // index in the caller's batch
  uint64_t seq[kMax];    // open: the sequence number to check and record
  size_t length[kMax];   // seal: the payload length (to undo the counters of a failed job)
  size_t n = 0;
};
// Internal status of a queued packet; never reaches JavaScript.
constexpr uint8_t kQueued = 0xff;

// The packets of one SealMany / OpenMany call, two ways. BatchViews: sealBatch / openBatch, packets at offsets
// into one input and one output buffer (In / Out: false when a packet's region leaves its buffer), results in
// parallel arrays (nextHeaders is read when sealing, written when opening). PacketSpan: the data plane's
// PacketIo array, buffers its own. (A pointer may be null for an empty buffer: no null sentinel.)
struct BatchViews {
  View<uint8_t> input, output;
  const uint32_t *offsets, *lengths, *outOffsets;
  uint32_t* outLengths;
  uint8_t* nextHeaders;
  uint8_t* status;
  size_t Length(size_t i) const { return lengths[i]; }
  bool In(size_t i, size_t len, const uint8_t** in) const {
    if (!InBounds(offsets[i], len, input.length)) return false;
    *in = input.data + offsets[i];
    return true;
  }
  bool Out(size_t i, size_t len, uint8_t** out) const {
    if (!InBounds(outOffsets[i], len, output.length)) return false;
    *out = output.data + outOffsets[i];
    return true;
  }
  uint8_t NextHeader(size_t i) const { return nextHeaders[i]; }
  void SetStatus(size_t i, uint8_t st) { status[i] = st; }
  void SetLength(size_t i, size_t len) { outLengths[i] = static_cast<uint32_t>(len); }
  void SetNextHeader(size_t i, uint8_t nh) { nextHeaders[i] = nh; }
};

struct PacketSpan {
  PacketIo* p;
  size_t Length(size_t i) const { return p[i].len; }
  bool In(size_t i, size_t, const uint8_t** in) const {
    *in = p[i].in;
    return true;
  }
  bool Out(size_t i, size_t, uint8_t** out) const {
    *out = p[i].out;
    return true;
  }
  uint8_t NextHeader(size_t i) const { return p[i].nextHeader; }
  void SetStatus(size_t i, uint8_t st) { p[i].status = st; }
  void SetLength(size_t i, size_t len) { p[i].outLen = len; }
  void SetNextHeader(size_t i, uint8_t nh) { p[i].nextHeader = nh; }
};
bool IsCbc(EncKind e) { return e == EncKind::AesCbc || e == EncKind::Des3Cbc; }
// CBC: the cipher block (16 for AES, 8 for 3DES), which is also the explicit IV's length (RFC 3602, RFC 2451).
size_t CbcBlock(EncKind e) { return e == EncKind::AesCbc ? 16 : e == EncKind::Des3Cbc ? 8 : 0; }
size_t IvLength(EncKind e) { return IsAead(e) ? 8 : CbcBlock(e); }
size_t SaltLength(EncKind e) { return IsAead(e) ? 4 : 0; }
// The ciphertext (payload + trailer) must fill whole cipher blocks for CBC; otherwise RFC 4303 2.4 still wants
// the trailer to end on a 4-byte boundary.
// A power of two (16, 8 or 4): rounding up to it is a mask, not a division (a division per packet showed in the profile).
size_t PadAlign(EncKind e) { return IsCbc(e) ? CbcBlock(e) : 4; }
constexpr size_t kHeader = 8;  // SPI | sequence number
// Longest payload / packet accepted: far above any IP datagram, and small enough that lengths fit OpenSSL's int.
constexpr uint64_t kMaxLength = 1u << 30;

#ifdef IKE_TEST_HOOKS
// Test hook (espFailNextWarms): how many of the next Warm() calls fail as if memory had run out. Read only on
// an SA's first packet, never on the per-packet path.
std::atomic<int64_t> gFailWarms{0};
#endif

// Marks EspSa objects so that AttachSa can tell them from any other wrapped object (napi_type_tag_object).
const napi_type_tag kEspSaTag = {0x6b1e5a0e2f4d4c31ULL, 0x9a7e0c55e5d3b201ULL};

}  // namespace

// Outside the anonymous namespace: esp_sa.h names it for the data plane (native/dataplane.cc).
class EspSa : public Napi::ObjectWrap<EspSa> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EspSa",
                       {
                           InstanceMethod<&EspSa::SealBatch>("sealBatch"),
                           InstanceMethod<&EspSa::OpenBatch>("openBatch"),
                           InstanceMethod<&EspSa::SealWithIv>("sealWithIv"),
                           InstanceMethod<&EspSa::Stats>("stats"),
                           InstanceMethod<&EspSa::Sequence>("sequence"),
                           InstanceMethod<&EspSa::Destroy>("destroy"),
                           InstanceMethod<&EspSa::Engine>("engine"),
                       });
  }

  // new EspSa(algorithm, outbound, spi, encKey, integKey, salt, replayWindow, esn, allowInsecure,
  //           initialSequence?: bigint, engine?: 'auto' | 'evp' | 'ipsec-mb')
  explicit EspSa(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EspSa>(info) {
    Napi::Env env = info.Env();
    napi_type_tag_object(env, info.This(), &kEspSaTag);
    std::string name;
    if (!GetString(info, 0, "algorithm", &name)) return;
    alg_ = FindAlg(name);
    if (alg_ == nullptr) {
      ThrowRange(env, "unknown ESP algorithm '" + name + "'");
      return;
    }
    int64_t spi = 0, window = 0;
    if (!GetBool(info, 1, "outbound", &outbound_)) return;
    if (!GetInt(info, 2, "spi", 0, 0xffffffffLL, &spi)) return;
    Bytes encKey = GetBytes(info, 3, "encKey");
    if (!encKey.ok) return;
    Bytes integKey = GetBytes(info, 4, "integKey");
    if (!integKey.ok) return;
    Bytes salt = GetBytes(info, 5, "salt");
    if (!salt.ok) return;
    if (!GetInt(info, 6, "replayWindow", 0, ReplayWindow::kMaxWindow, &window)) return;
    if (!GetBool(info, 7, "esn", &esn_)) return;
    if (!GetBool(info, 8, "allowInsecure", &insecure_)) return;
    if (alg_->insecure && !insecure_) {
      ThrowRange(env, name + " has no confidentiality or no integrity: it needs allowInsecureForTests");
      return;
    }
    // RFC 4303 2.1: SPI 0 is never sent and 1..255 are reserved. 0 is allowed for tests (a published vector uses it).
    if (spi < 256 && !(insecure_ && spi == 0)) {
      ThrowRange(env, "spi must be in [256, 2^32-1] (0..255 are reserved, RFC 4303 2.1)");
      return;
    }
    spi_ = static_cast<uint32_t>(spi);
    if (encKey.size != alg_->encKeyLength) {
      ThrowRange(env, "encKey must be " + std::to_string(alg_->encKeyLength) + " bytes for " + name);
      return;
    }
    if (integKey.size != alg_->integKeyLength) {
      ThrowRange(env, "integKey must be " + std::to_string(alg_->integKeyLength) + " bytes for " + name);
      return;
    }
    if (salt.size != SaltLength(alg_->enc)) {
      ThrowRange(env, "salt must be " + std::to_string(SaltLength(alg_->enc)) + " bytes for " + name);
      return;
    }
    uint64_t initialSeq = 0;  // 0 = none given
    if (info.Length() > 9 && !info[9].IsUndefined()) {
      if (!info[9].IsBigInt()) {
        ThrowType(env, "initialSequence must be a bigint");
        return;
      }
      bool lossless = false;
      initialSeq = info[9].As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless || initialSeq == 0 || (!esn_ && initialSeq > 0xffffffffull)) {
        ThrowRange(env, "initialSequence must be in [1, 2^32-1] (2^64-1 with ESN)");
        return;
      }
      if (!insecure_) {
        ThrowRange(env, "initialSequence is a test hook: it needs allowInsecureForTests");
        return;
      }
    }
    // What could make the first packet's Warm() fail is checked here instead, so a bad SA fails at
    // createEspSa: the key lengths (above), and the cipher being available. AES and ChaCha20 accept every key
    // of the right length, so after this only memory can fail later, and that is a per-packet status.
    if (alg_->enc != EncKind::Null) {
      cipher_ = FetchedCipher(*alg_);
      if (cipher_ == nullptr) {
        Napi::Error::New(env, "the OpenSSL of this Node has no cipher for " + name).ThrowAsJavaScriptException();
        return;
      }
    }
    // Only an inbound SA has a window; an outbound one would only hold the bitmap.
    if (!replay_.Configure(outbound_ ? 0 : static_cast<uint32_t>(window), esn_)) {
      Napi::Error::New(env, "out of memory for the replay window").ThrowAsJavaScriptException();
      return;
    }
    if (initialSeq != 0) {
      if (outbound_) lastSeq_ = initialSeq - 1;  // the next packet carries initialSeq
      else replay_.SetTop(initialSeq - 1);
    }
    if (!ChooseEngine(info, name)) return;
    std::memcpy(salt_, salt.data, salt.size);
    std::memcpy(encKey_, encKey.data, encKey.size);
    std::memcpy(integKey_, integKey.data, integKey.size);
    ready_ = true;
  }

  ~EspSa() override { Release(); }

 private:
  // The crypto engine, fixed at install: intel-ipsec-mb where it is built in, runs on this CPU and has the
  // algorithm, EVP otherwise. ESN SAs stay on EVP: their sequence-number inference and ICV input (the high
  // bits appended after the packet) do not fit one contiguous job.
  bool ChooseEngine(const Napi::CallbackInfo& info, const std::string& name) {
    std::string want = "auto";
    if (info.Length() > 10 && !info[10].IsUndefined() && !GetString(info, 10, "engine", &want)) return false;
    if (want != "auto" && want != "evp" && want != "ipsec-mb") {
      ThrowRange(info.Env(), "engine must be 'auto', 'evp' or 'ipsec-mb'");
      return false;
    }
    const bool capable = mb::Available() && MbCipherOf(*alg_, &mbCipher_) && !esn_;
    if (want == "ipsec-mb" && !capable) {
      ThrowRange(info.Env(), "the ipsec-mb engine cannot run " + name + (esn_ ? " with ESN" : "") + ": " +
                                 (mb::Available() ? "not supported by it" : mb::Describe()));
      return false;
    }
    useMb_ = capable && want != "evp";
    return true;
  }

  void Release() {
    Cool();
    OPENSSL_cleanse(encKey_, sizeof(encKey_));
    OPENSSL_cleanse(integKey_, sizeof(integKey_));
    OPENSSL_cleanse(salt_, sizeof(salt_));
    ready_ = false;
  }

  // Builds the cipher context and the HMAC states from the stored keys; called by the first seal/open (on
  // whichever thread owns the SA then). False when memory runs out: that packet gets kCryptoError, the SA
  // stays cold, and the next packet tries again.
  bool Warm() {
#ifdef IKE_TEST_HOOKS
    if (gFailWarms.load(std::memory_order_relaxed) > 0 && gFailWarms.fetch_sub(1, std::memory_order_relaxed) > 0)
      return false;
#endif
    if (useMb_) {
      mbKeys_ = mb::NewKeys(mbCipher_, encKey_, alg_->encKeyLength, alg_->hash, integKey_, alg_->integKeyLength);
      warm_ = mbKeys_ != nullptr;
      return warm_;
    }
    if (alg_->hash != HashAlg::None) {
      hmac_ = new (std::nothrow) HmacKey();
      if (hmac_ == nullptr) return false;
      hmac_->Init(alg_->hash, integKey_, alg_->integKeyLength);
    }
    if (alg_->enc != EncKind::Null) {
      ctx_ = EVP_CIPHER_CTX_new();
      if (ctx_ == nullptr || EVP_CipherInit_ex(ctx_, cipher_, nullptr, encKey_, nullptr, outbound_ ? 1 : 0) != 1) {
        Cool();
        return false;
      }
      if (IsCbc(alg_->enc)) EVP_CIPHER_CTX_set_padding(ctx_, 0);  // ESP pads itself
    }
    warm_ = true;
    return true;
  }

  // Frees what Warm() built; the keys stay, so the SA can warm again.
  void Cool() {
    if (ctx_ != nullptr) EVP_CIPHER_CTX_free(ctx_);  // frees and wipes the key schedule
    ctx_ = nullptr;
    delete hmac_;  // its destructor wipes the pad states
    hmac_ = nullptr;
    mb::FreeKeys(mbKeys_);  // wipes
    mbKeys_ = nullptr;
    warm_ = false;
  }

  bool CheckReady(Napi::Env env) {
    if (!CheckNotAttached(env)) return false;
    if (!ready_) Napi::Error::New(env, "this ESP SA has been destroyed").ThrowAsJavaScriptException();
    return ready_;
  }

  // An SA attached to the data plane is used by its worker thread without a lock (esp_sa.h).
  bool CheckNotAttached(Napi::Env env) {
    if (attached_) {
      Napi::Error::New(env, "this ESP SA belongs to a DataPlane (its worker thread uses it): remove it from the data plane first")
          .ThrowAsJavaScriptException();
    }
    return !attached_;
  }

  friend EspSa* AttachSa(Napi::Env env, Napi::Value v, std::string* error);
  friend void DetachSa(EspSa* sa);
  friend SaInfo InfoOf(const EspSa* sa);
  friend size_t SealedLength(const EspSa* sa, size_t payloadLength);
  friend size_t SealPackets(EspSa* sa, PacketIo* p, size_t n);
  friend size_t OpenPackets(EspSa* sa, PacketIo* p, size_t n);

  size_t IvLen() const { return IvLength(alg_->enc); }
  size_t SealedLength(size_t len) const {
    const size_t a = PadAlign(alg_->enc);
    return kHeader + IvLen() + ((len + 2 + a - 1) & ~(a - 1)) + alg_->icvLength;
  }

  // Unpredictable CBC IVs (RFC 3602 3.1): RAND_bytes is called once per 256 IVs, not once per packet.
  // The pool is per thread, not per SA: an IV need not be tied to a key, and 4 KiB in every SA was most of
  // an idle SA's memory. Unused IVs are not secrets worth wiping (each is sent in clear once used).
  struct IvPool {
    uint8_t bytes[256 * 16];
    size_t pos;
    const uint8_t* Next() {
      if (pos >= sizeof(bytes)) {
        if (RAND_bytes(bytes, sizeof(bytes)) != 1) return nullptr;
        pos = 0;
      }
      const uint8_t* iv = bytes + pos;
      pos += 16;
      return iv;
    }
  };
  // A thread_local in a shared object costs a __tls_get_addr call: the batch call looks it up once.
  static IvPool* ThreadIvPool() {
    static thread_local IvPool pool = {{0}, sizeof(IvPool::bytes)};
    return &pool;
  }

  // Seals one payload with sequence number `seq` into out (SealedLength(len) bytes, checked by the caller).
  // in may equal the ciphertext position (out + 8 + IV length): in-place sealing.
  // CBC takes its IV from ivOverride if given, else from ivs (this thread's pool).
  // With the intel-ipsec-mb engine and a queue q the packet is framed and queued (its crypto runs at the
  // batch's FinishSeals); without q it runs at once.
  uint8_t SealOne(const uint8_t* in, size_t len, uint8_t nextHeader, uint8_t* out, uint64_t seq,
                  const uint8_t* ivOverride, IvPool* ivs, MbQueue* q = nullptr, uint32_t entry = 0) {
    if (!warm_ && !Warm()) return kCryptoError;
    if (useMb_) return QueueSeal(in, len, nextHeader, out, seq, ivOverride, ivs, q, entry);
    const EncKind enc = alg_->enc;
    const size_t ivLen = IvLen();
    const size_t a = PadAlign(enc);
    const size_t ctLen = (len + 2 + a - 1) & ~(a - 1);
    const size_t padLen = ctLen - len - 2;
    uint8_t trailer[32];
    for (size_t i = 0; i < padLen; i++) trailer[i] = static_cast<uint8_t>(i + 1);
    trailer[padLen] = static_cast<uint8_t>(padLen);
    trailer[padLen + 1] = nextHeader;
    const size_t trailerLen = padLen + 2;

    PutBe32(out, spi_);
    PutBe32(out + 4, static_cast<uint32_t>(seq));
    uint8_t* ivOut = out + kHeader;
    uint8_t* ct = ivOut + ivLen;
    int n = 0;

    if (IsAead(enc)) {
      // RFC 4106 3.1 / RFC 7634 2: the explicit IV is the 64-bit sequence number, unique per key by construction.
      uint8_t nonce[12];
      std::memcpy(nonce, salt_, 4);
      if (ivOverride != nullptr) std::memcpy(nonce + 4, ivOverride, 8);
      else PutBe64(nonce + 4, seq);
      std::memcpy(ivOut, nonce + 4, 8);
      // AAD: SPI | seq (RFC 4106 5), or SPI | seq high | seq low with ESN.
      uint8_t aad[12];
      size_t aadLen = 8;
      PutBe32(aad, spi_);
      if (esn_) {
        PutBe64(aad + 4, seq);
        aadLen = 12;
      } else {
        PutBe32(aad + 4, static_cast<uint32_t>(seq));
      }
      if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, nonce) != 1) return kCryptoError;
      if (EVP_EncryptUpdate(ctx_, nullptr, &n, aad, static_cast<int>(aadLen)) != 1) return kCryptoError;
      if (len != 0 && EVP_EncryptUpdate(ctx_, ct, &n, in, static_cast<int>(len)) != 1) return kCryptoError;
      if (EVP_EncryptUpdate(ctx_, ct + len, &n, trailer, static_cast<int>(trailerLen)) != 1) return kCryptoError;
      if (EVP_EncryptFinal_ex(ctx_, ct + ctLen, &n) != 1) return kCryptoError;
      if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, 16, ct + ctLen) != 1) return kCryptoError;
      return kOk;
    }

    if (IsCbc(enc)) {
      const uint8_t* iv = ivOverride != nullptr ? ivOverride : ivs->Next();
      if (iv == nullptr) return kCryptoError;
      std::memcpy(ivOut, iv, ivLen);
      if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, ivOut) != 1) return kCryptoError;
      int n1 = 0, n2 = 0;
      if (len != 0 && EVP_EncryptUpdate(ctx_, ct, &n1, in, static_cast<int>(len)) != 1) return kCryptoError;
      if (EVP_EncryptUpdate(ctx_, ct + n1, &n2, trailer, static_cast<int>(trailerLen)) != 1) return kCryptoError;
      if (static_cast<size_t>(n1) + static_cast<size_t>(n2) != ctLen) return kCryptoError;
    } else {  // NULL encryption (RFC 2410)
      if (len != 0 && ct != in) std::memmove(ct, in, len);
      std::memcpy(ct + len, trailer, trailerLen);
    }
    if (alg_->hash != HashAlg::None) {
      // RFC 4303 2.2.1: with ESN the high-order 32 bits are authenticated (appended), never sent.
      uint8_t hi[4];
      PutBe32(hi, static_cast<uint32_t>(seq >> 32));
      uint8_t mac[HmacKey::kMaxDigest];
      hmac_->Compute(out, kHeader + ivLen + ctLen, hi, esn_ ? 4 : 0, nullptr, 0, mac);
      std::memcpy(ct + ctLen, mac, alg_->icvLength);
    }
    return kOk;
  }

  // Opens one packet into out (capacity >= ciphertext length, checked by the caller). out may equal the
  // ciphertext position in the packet (in-place opening).
  // With the intel-ipsec-mb engine and a queue q an authentic-looking packet is queued (kQueued; FinishOpens
  // gives its status); without q it is opened at once.
  uint8_t OpenOne(const uint8_t* in, size_t len, uint8_t* out, size_t* payloadLen, uint8_t* nextHeader,
                  uint64_t* seqOut, MbQueue* q = nullptr, uint32_t entry = 0) {
    const EncKind enc = alg_->enc;
    const size_t ivLen = IvLen();
    const size_t icvLen = alg_->icvLength;
    if (len < kHeader + ivLen + icvLen + 2) {
      malformed_++;
      return kMalformed;
    }
    const size_t ctLen = len - kHeader - ivLen - icvLen;
    if (IsCbc(enc) && (ctLen % CbcBlock(enc)) != 0) {
      malformed_++;
      return kMalformed;
    }
    if (GetBe32(in) != spi_) return kWrongSpi;
    uint64_t seq = 0;
    if (!replay_.Infer(GetBe32(in + 4), &seq) || !replay_.Check(seq)) {
      replays_++;
      return kReplayed;
    }
    // Only now: a packet for another SA, of impossible length or replayed does not make this one build contexts.
    if (!warm_ && !Warm()) return kCryptoError;
    if (useMb_) return QueueOpen(in, len, out, ctLen, seq, payloadLen, nextHeader, seqOut, q, entry);
    const uint8_t* iv = in + kHeader;
    const uint8_t* ct = iv + ivLen;
    const uint8_t* icv = ct + ctLen;
    int n = 0;

    if (IsAead(enc)) {
      uint8_t nonce[12];
      std::memcpy(nonce, salt_, 4);
      std::memcpy(nonce + 4, iv, 8);
      uint8_t aad[12];
      size_t aadLen = 8;
      PutBe32(aad, spi_);
      if (esn_) {
        PutBe64(aad + 4, seq);
        aadLen = 12;
      } else {
        PutBe32(aad + 4, static_cast<uint32_t>(seq));
      }
      uint8_t tag[16];
      std::memcpy(tag, icv, 16);
      bool ok = EVP_DecryptInit_ex(ctx_, nullptr, nullptr, nullptr, nonce) == 1 &&
                EVP_DecryptUpdate(ctx_, nullptr, &n, aad, static_cast<int>(aadLen)) == 1 &&
                EVP_DecryptUpdate(ctx_, out, &n, ct, static_cast<int>(ctLen)) == 1 &&
                EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1;
      // The tag is checked in the final step; plaintext of a forged packet is wiped, never handed out.
      if (!ok || EVP_DecryptFinal_ex(ctx_, out + ctLen, &n) != 1) {
        OPENSSL_cleanse(out, ctLen);
        authFailures_++;
        return kAuthFailed;
      }
    } else {
      if (alg_->hash != HashAlg::None) {
        // Verify before decrypting (RFC 4303 3.4.4): a forged packet costs one HMAC and reveals nothing.
        uint8_t hi[4];
        PutBe32(hi, static_cast<uint32_t>(seq >> 32));
        uint8_t mac[HmacKey::kMaxDigest];
        hmac_->Compute(in, len - icvLen, hi, esn_ ? 4 : 0, nullptr, 0, mac);
        if (CRYPTO_memcmp(mac, icv, icvLen) != 0) {
          authFailures_++;
          return kAuthFailed;
        }
      }
      if (IsCbc(enc)) {
        int n1 = 0;
        if (EVP_DecryptInit_ex(ctx_, nullptr, nullptr, nullptr, iv) != 1 ||
            EVP_DecryptUpdate(ctx_, out, &n1, ct, static_cast<int>(ctLen)) != 1 || static_cast<size_t>(n1) != ctLen)
          return kCryptoError;
      } else if (out != ct) {
        std::memmove(out, ct, ctLen);
      }
    }
    // Authentic: only now may the window move (RFC 4303 3.4.3).
    replay_.Update(seq);
    *seqOut = seq;
    return CheckTrailer(out, ctLen, payloadLen, nextHeader);
  }

  // The decrypted trailer: pad length, next header, and the padding itself.
  uint8_t CheckTrailer(const uint8_t* out, size_t ctLen, size_t* payloadLen, uint8_t* nextHeader) {
    const size_t padLen = out[ctLen - 2];
    if (padLen > ctLen - 2) {
      malformed_++;
      return kMalformed;
    }
    const size_t payload = ctLen - 2 - padLen;
    uint8_t bad = 0;  // RFC 4303 2.4: the default padding is 1, 2, 3, ...; a receiver checks it
    for (size_t i = 0; i < padLen; i++) bad |= static_cast<uint8_t>(out[payload + i] ^ static_cast<uint8_t>(i + 1));
    if (bad != 0) {
      malformed_++;
      return kMalformed;
    }
    *payloadLen = payload;
    *nextHeader = out[ctLen - 1];
    return kOk;
  }

  // intel-ipsec-mb seal: header, IV, payload and trailer go to their places (the library ciphers one contiguous
  // buffer; the same framing as SealOne), the crypto is queued. Without a queue, a queue of one runs now.
  uint8_t QueueSeal(const uint8_t* in, size_t len, uint8_t nextHeader, uint8_t* out, uint64_t seq,
                    const uint8_t* ivOverride, IvPool* ivs, MbQueue* q, uint32_t entry) {
    if (q == nullptr) {
      MbQueue one;
      const uint8_t st = QueueSeal(in, len, nextHeader, out, seq, ivOverride, ivs, &one, 0);
      if (st != kOk) return st;
      mb::Run(mbKeys_, true, one.ops, 1);
      return one.ops[0].ok ? kOk : kCryptoError;
    }
    const size_t ivLen = IvLen();
    const size_t a = PadAlign(alg_->enc);
    const size_t ctLen = (len + 2 + a - 1) & ~(a - 1);
    const size_t padLen = ctLen - len - 2;
    PutBe32(out, spi_);
    PutBe32(out + 4, static_cast<uint32_t>(seq));
    uint8_t* ivOut = out + kHeader;
    uint8_t* ct = ivOut + ivLen;
    mb::Op& op = q->ops[q->n];
    if (IsAead(alg_->enc)) {  // RFC 4106 3.1 / RFC 7634 2, as in SealOne
      std::memcpy(op.nonce, salt_, 4);
      if (ivOverride != nullptr) std::memcpy(op.nonce + 4, ivOverride, 8);
      else PutBe64(op.nonce + 4, seq);
      std::memcpy(ivOut, op.nonce + 4, 8);
      PutBe32(op.aad, spi_);
      PutBe32(op.aad + 4, static_cast<uint32_t>(seq));
    } else {
      const uint8_t* iv = ivOverride != nullptr ? ivOverride : ivs->Next();
      if (iv == nullptr) return kCryptoError;
      std::memcpy(ivOut, iv, 16);
      op.iv = ivOut;
    }
    if (len != 0 && ct != in) std::memmove(ct, in, len);
    // Written in place, byte by byte: a variable-length memcpy of at most 17 octets costs more than the loop.
    for (size_t i = 0; i < padLen; i++) ct[len + i] = static_cast<uint8_t>(i + 1);
    ct[len + padLen] = static_cast<uint8_t>(padLen);
    ct[len + padLen + 1] = nextHeader;
    op.src = out;
    op.dst = ct;
    op.cipherOffset = kHeader + ivLen;
    op.cipherLength = ctLen;
    op.hashLength = kHeader + ivLen + ctLen;
    op.tag = ct + ctLen;
    op.tagLength = alg_->icvLength;
    q->entry[q->n] = entry;
    q->length[q->n] = len;
    q->n++;
    return kOk;
  }

  // Runs the queued seals. An entry was counted as sealed when queued: a job the library did not complete
  // (not expected) becomes CRYPTO_ERROR and its counting is undone.
  template <class Packets>
  void FinishSeals(MbQueue* q, Packets& p, uint32_t* okCount) {
    mb::Run(mbKeys_, true, q->ops, q->n);
    for (size_t i = 0; i < q->n; i++) {
      if (q->ops[i].ok) continue;
      const uint32_t e = q->entry[i];
      p.SetStatus(e, kCryptoError);
      p.SetLength(e, 0);
      packets_--;
      bytes_ -= q->length[i];
      (*okCount)--;
    }
    q->n = 0;
  }

  // intel-ipsec-mb open, after OpenOne's length, SPI and replay checks: the ICV computation and decryption are
  // queued. Without a queue, a queue of one runs now.
  uint8_t QueueOpen(const uint8_t* in, size_t len, uint8_t* out, size_t ctLen, uint64_t seq, size_t* payloadLen,
                    uint8_t* nextHeader, uint64_t* seqOut, MbQueue* q, uint32_t entry) {
    if (q == nullptr) {
      MbQueue one;
      uint8_t st = kCryptoError;
      QueueOpen(in, len, out, ctLen, seq, payloadLen, nextHeader, seqOut, &one, 0);
      FinishOpens(&one, [&](uint32_t, uint8_t s, size_t payload, uint8_t nh, uint64_t sq) {
        st = s;
        *payloadLen = payload;
        *nextHeader = nh;
        *seqOut = sq;
      });
      return st;
    }
    const size_t ivLen = IvLen();
    mb::Op& op = q->ops[q->n];
    op.src = in;
    op.dst = out;
    op.cipherOffset = kHeader + ivLen;
    op.cipherLength = ctLen;
    op.hashLength = len - alg_->icvLength;
    if (IsAead(alg_->enc)) {
      std::memcpy(op.nonce, salt_, 4);
      std::memcpy(op.nonce + 4, in + kHeader, 8);
      PutBe32(op.aad, spi_);
      PutBe32(op.aad + 4, static_cast<uint32_t>(seq));
    } else {
      op.iv = in + kHeader;
    }
    op.tag = op.computed;
    op.tagLength = alg_->icvLength;
    q->entry[q->n] = entry;
    q->seq[q->n] = seq;
    q->n++;
    return kQueued;
  }

  // Runs the queued opens, then finishes each in queue order exactly as OpenOne does one after the other: the
  // replay window again (earlier packets of the batch may have moved it, or carried the same number), the ICV
  // (constant time), the window update, the trailer. result(entry, status, payload, nextHeader, seq).
  template <typename F>
  void FinishOpens(MbQueue* q, F&& result) {
    mb::Run(mbKeys_, false, q->ops, q->n);
    for (size_t i = 0; i < q->n; i++) {
      const mb::Op& op = q->ops[i];
      size_t payload = 0;
      uint8_t nh = 0, st;
      if (!replay_.Check(q->seq[i])) {  // as OpenOne: the window first, then the ICV
        replays_++;
        st = kReplayed;
      } else if (!op.ok) {
        st = kCryptoError;
      } else if (CRYPTO_memcmp(op.computed, op.src + op.hashLength, op.tagLength) != 0) {
        authFailures_++;
        st = kAuthFailed;
      } else {
        replay_.Update(q->seq[i]);  // authentic: only now may the window move (RFC 4303 3.4.3)
        st = CheckTrailer(op.dst, op.cipherLength, &payload, &nh);
      }
      // The library decrypts before the ICV is compared: the plaintext of a forgery or replay is never handed out.
      if (st != kOk && st != kMalformed) OPENSSL_cleanse(op.dst, op.cipherLength);
      result(q->entry[i], st, payload, nh, q->seq[i]);
    }
    q->n = 0;
  }

  // The per-packet work of sealBatch and of the data plane's SealPackets, one packet after the other (the
  // checks, the sequence numbers, the counting); with the intel-ipsec-mb engine the crypto of up to
  // MbQueue::kMax packets runs together. `p` hands out each packet's buffers (false: out of its bounds) and
  // takes the results: BatchViews or PacketSpan below. Returns how many were sealed.
  template <class Packets>
  uint32_t SealMany(Packets& p, size_t count) {
    const uint64_t limit = esn_ ? ~0ull : 0xffffffffull;
    const size_t ivLen = IvLen();
    IvPool* const ivs = ThreadIvPool();
    uint32_t okCount = 0;
    MbQueue mbq;
    MbQueue* const q = useMb_ ? &mbq : nullptr;  // the intel-ipsec-mb engine: queued, run every kMax packets
    for (size_t i = 0; i < count; i++) {
      if (q != nullptr && q->n == MbQueue::kMax) FinishSeals(q, p, &okCount);
      p.SetLength(i, 0);
      const size_t len = p.Length(i);
      const size_t sealed = SealedLength(len);
      const uint8_t* in = nullptr;
      uint8_t* out = nullptr;
      // In place is fine (payload already where its ciphertext goes); any other overlap would corrupt it.
      if (len > kMaxLength || !p.In(i, len, &in) || !p.Out(i, sealed, &out) ||
          (Overlaps(in, len, out, sealed) && in != out + kHeader + ivLen)) {
        p.SetStatus(i, kBadBounds);
        continue;
      }
      if (lastSeq_ >= limit) {
        p.SetStatus(i, kSeqOverflow);
        continue;
      }
      const uint8_t st = SealOne(in, len, p.NextHeader(i), out, lastSeq_ + 1, nullptr, ivs, q, static_cast<uint32_t>(i));
      p.SetStatus(i, st);
      if (st != kOk) continue;
      lastSeq_++;
      p.SetLength(i, sealed);
      packets_++;
      bytes_ += len;
      okCount++;
    }
    if (q != nullptr) FinishSeals(q, p, &okCount);
    return okCount;
  }

  // The per-packet work of openBatch and of the data plane's OpenPackets, as SealMany's. Returns how many opened.
  template <class Packets>
  uint32_t OpenMany(Packets& p, size_t count) {
    const size_t overhead = kHeader + IvLen() + alg_->icvLength;
    uint32_t okCount = 0;
    auto result = [&](uint32_t e, uint8_t st, size_t payload, uint8_t nh, uint64_t) {
      p.SetStatus(e, st);
      if (st == kOk) {
        p.SetLength(e, payload);
        p.SetNextHeader(e, nh);
        packets_++;
        bytes_ += payload;
        okCount++;
      } else if (st == kWrongSpi) {
        wrongSpi_++;
      }
    };
    MbQueue mbq;
    MbQueue* const q = useMb_ ? &mbq : nullptr;  // the intel-ipsec-mb engine: queued, run every kMax packets
    for (size_t i = 0; i < count; i++) {
      if (q != nullptr && q->n == MbQueue::kMax) FinishOpens(q, result);
      p.SetLength(i, 0);
      p.SetNextHeader(i, 0);
      const size_t len = p.Length(i);
      const uint8_t* in = nullptr;
      if (len > kMaxLength || !p.In(i, len, &in)) {
        p.SetStatus(i, kBadBounds);
        continue;
      }
      if (len < overhead + 2) {
        malformed_++;
        p.SetStatus(i, kMalformed);
        continue;
      }
      const size_t ctLen = len - overhead;
      uint8_t* out = nullptr;
      if (!p.Out(i, ctLen, &out) || (Overlaps(in, len, out, ctLen) && out != in + kHeader + IvLen())) {
        p.SetStatus(i, kBadBounds);
        continue;
      }
      size_t payload = 0;
      uint8_t nh = 0;
      uint64_t seq = 0;
      const uint8_t st = OpenOne(in, len, out, &payload, &nh, &seq, q, static_cast<uint32_t>(i));
      if (st != kQueued) result(static_cast<uint32_t>(i), st, payload, nh, seq);
    }
    if (q != nullptr) FinishOpens(q, result);
    return okCount;
  }

  // sealBatch(input, offsets, lengths, nextHeaders, output, outOffsets, outLengths, status, count?) -> number ok
  // outOffsets are chosen by the caller (room for headers is theirs to leave); outLengths and status are written.
  Napi::Value SealBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckReady(env)) return env.Undefined();
    if (!outbound_) {
      ThrowType(env, "sealBatch needs an outbound SA");
      return env.Undefined();
    }
    View<uint8_t> input = GetU8(info, 0, "input");
    if (!input.ok) return env.Undefined();
    View<uint32_t> offsets = GetU32(info, 1, "offsets");
    if (!offsets.ok) return env.Undefined();
    View<uint32_t> lengths = GetU32(info, 2, "lengths");
    if (!lengths.ok) return env.Undefined();
    View<uint8_t> nextHeaders = GetU8(info, 3, "nextHeaders");
    if (!nextHeaders.ok) return env.Undefined();
    View<uint8_t> output = GetU8(info, 4, "output");
    if (!output.ok) return env.Undefined();
    View<uint32_t> outOffsets = GetU32(info, 5, "outOffsets");
    if (!outOffsets.ok) return env.Undefined();
    View<uint32_t> outLengths = GetU32(info, 6, "outLengths");
    if (!outLengths.ok) return env.Undefined();
    View<uint8_t> status = GetU8(info, 7, "status");
    if (!status.ok) return env.Undefined();
    size_t count = offsets.length;
    if (!GetCount(info, 8, &count)) return env.Undefined();
    if (lengths.length < count || nextHeaders.length < count || outOffsets.length < count ||
        outLengths.length < count || status.length < count || offsets.length < count) {
      ThrowRange(env, "offsets, lengths, nextHeaders, outOffsets, outLengths and status must each hold count entries");
      return env.Undefined();
    }
    BatchViews b{input, output, offsets.data, lengths.data, outOffsets.data, outLengths.data, nextHeaders.data, status.data};
    return Napi::Number::New(env, SealMany(b, count));
  }

  // openBatch(input, offsets, lengths, output, outOffsets, outLengths, nextHeaders, status, count?) -> number ok
  // Each output region needs the ciphertext length (packet length - 8 - IV - ICV) bytes: the trailer is
  // decrypted there too. outLengths gets the payload length, nextHeaders the next-header byte.
  Napi::Value OpenBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckReady(env)) return env.Undefined();
    if (outbound_) {
      ThrowType(env, "openBatch needs an inbound SA");
      return env.Undefined();
    }
    View<uint8_t> input = GetU8(info, 0, "input");
    if (!input.ok) return env.Undefined();
    View<uint32_t> offsets = GetU32(info, 1, "offsets");
    if (!offsets.ok) return env.Undefined();
    View<uint32_t> lengths = GetU32(info, 2, "lengths");
    if (!lengths.ok) return env.Undefined();
    View<uint8_t> output = GetU8(info, 3, "output");
    if (!output.ok) return env.Undefined();
    View<uint32_t> outOffsets = GetU32(info, 4, "outOffsets");
    if (!outOffsets.ok) return env.Undefined();
    View<uint32_t> outLengths = GetU32(info, 5, "outLengths");
    if (!outLengths.ok) return env.Undefined();
    View<uint8_t> nextHeaders = GetU8(info, 6, "nextHeaders");
    if (!nextHeaders.ok) return env.Undefined();
    View<uint8_t> status = GetU8(info, 7, "status");
    if (!status.ok) return env.Undefined();
    size_t count = offsets.length;
    if (!GetCount(info, 8, &count)) return env.Undefined();
    if (lengths.length < count || nextHeaders.length < count || outOffsets.length < count ||
        outLengths.length < count || status.length < count || offsets.length < count) {
      ThrowRange(env, "offsets, lengths, outOffsets, outLengths, nextHeaders and status must each hold count entries");
      return env.Undefined();
    }
    BatchViews b{input, output, offsets.data, lengths.data, outOffsets.data, outLengths.data, nextHeaders.data, status.data};
    return Napi::Number::New(env, OpenMany(b, count));
  }

  bool GetCount(const Napi::CallbackInfo& info, size_t i, size_t* count) {
    if (info.Length() <= i || info[i].IsUndefined()) return true;
    int64_t c = 0;
    if (!GetInt(info, i, "count", 0, 0xffffffffLL, &c)) return false;
    *count = static_cast<size_t>(c);
    return true;
  }

  // Test hook (needs allowInsecureForTests): seal with a given sequence number and IV, to reproduce published
  // packets. Does not touch the SA's counter. sealWithIv(payload, nextHeader, seq: bigint, iv) -> Buffer
  Napi::Value SealWithIv(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckReady(env)) return env.Undefined();
    if (!insecure_ || !outbound_) {
      ThrowType(env, "sealWithIv is a test hook: it needs an outbound SA created with allowInsecureForTests");
      return env.Undefined();
    }
    Bytes payload = GetBytes(info, 0, "payload");
    if (!payload.ok) return env.Undefined();
    int64_t nh = 0;
    if (!GetInt(info, 1, "nextHeader", 0, 255, &nh)) return env.Undefined();
    if (info.Length() <= 2 || !info[2].IsBigInt()) {
      ThrowType(env, "seq must be a bigint");
      return env.Undefined();
    }
    bool lossless = false;
    uint64_t seq = info[2].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless || seq == 0 || (!esn_ && seq > 0xffffffffull)) {
      ThrowRange(env, "seq must be in [1, 2^32-1] (2^64-1 with ESN)");
      return env.Undefined();
    }
    Bytes iv = GetBytes(info, 3, "iv");
    if (!iv.ok) return env.Undefined();
    if (iv.size != IvLen()) {
      ThrowRange(env, "iv must be " + std::to_string(IvLen()) + " bytes");
      return env.Undefined();
    }
    if (payload.size > kMaxLength) {
      ThrowRange(env, "payload too long");
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, SealedLength(payload.size));
    uint8_t st = SealOne(payload.data, payload.size, static_cast<uint8_t>(nh), out.Data(), seq,
                         IvLen() != 0 ? iv.data : nullptr, ThreadIvPool());
    if (st != kOk) {
      Napi::Error::New(env, "OpenSSL failed to seal").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return out;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckNotAttached(env)) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    o.Set("packets", Napi::Number::New(env, static_cast<double>(packets_)));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    o.Set("authFailures", Napi::Number::New(env, static_cast<double>(authFailures_)));
    o.Set("replays", Napi::Number::New(env, static_cast<double>(replays_)));
    o.Set("malformed", Napi::Number::New(env, static_cast<double>(malformed_)));
    o.Set("wrongSpi", Napi::Number::New(env, static_cast<double>(wrongSpi_)));
    return o;
  }

  // Outbound: the last sequence number sent (0 before the first). Inbound: the highest authentic one received.
  Napi::Value Sequence(const Napi::CallbackInfo& info) {
    if (!CheckNotAttached(info.Env())) return info.Env().Undefined();
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(outbound_ ? lastSeq_ : replay_.Top()));
  }

  // The crypto engine: "ipsec-mb" or "evp", chosen at install (AttachSa may move a CBC SA to EVP, before any
  // worker uses it; it never changes while attached), so readable while attached.
  Napi::Value Engine(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), useMb_ ? "ipsec-mb" : "evp"); }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (!CheckNotAttached(info.Env())) return info.Env().Undefined();
    Release();
    return info.Env().Undefined();
  }

  const AlgInfo* alg_ = nullptr;
  bool ready_ = false;
  bool outbound_ = false;
  bool esn_ = false;
  bool insecure_ = false;
  bool attached_ = false;  // JS thread only: set and cleared by AttachSa / DetachSa
  bool warm_ = false;       // ctx_ / hmac_ built (Warm); owned by the thread that owns the SA
  uint32_t spi_ = 0;
  const EVP_CIPHER* cipher_ = nullptr;  // process-wide, not owned
  bool useMb_ = false;                  // the intel-ipsec-mb engine (ChooseEngine)
  mb::Cipher mbCipher_ = mb::Cipher::AesCbc;
  mb::Keys* mbKeys_ = nullptr;          // null until Warm(); only with useMb_
  // The keys as given, kept until destroy so that Warm() can build the contexts (an AES key schedule starts
  // with the key itself, so keeping both exposes nothing more).
  uint8_t encKey_[32] = {0};
  uint8_t integKey_[HmacKey::kMaxDigest] = {0};
  uint8_t salt_[4] = {0};
  EVP_CIPHER_CTX* ctx_ = nullptr;  // null until Warm(), and for NULL encryption
  HmacKey* hmac_ = nullptr;        // null until Warm(), and for the AEADs
  uint64_t lastSeq_ = 0;
  ReplayWindow replay_;
  uint64_t packets_ = 0, bytes_ = 0, authFailures_ = 0, replays_ = 0, malformed_ = 0, wrongSpi_ = 0;
};

// The internal API of esp_sa.h.
EspSa* AttachSa(Napi::Env env, Napi::Value v, std::string* error) {
  bool isSa = false;
  if (!v.IsObject() || napi_check_object_type_tag(env, v, &kEspSaTag, &isSa) != napi_ok || !isSa) {
    *error = "sa must be a native EspSa (createEspSa with the native implementation)";
    return nullptr;
  }
  EspSa* sa = EspSa::Unwrap(v.As<Napi::Object>());
  if (sa == nullptr || !sa->ready_) {
    *error = "this ESP SA has been destroyed";
    return nullptr;
  }
  if (sa->attached_) {
    *error = "this ESP SA is already attached to a DataPlane";
    return nullptr;
  }
  sa->attached_ = true;
  // The data plane seals and opens the packets of a burst per SA together (SealPackets / OpenPackets), so an
  // AES-CBC + HMAC SA keeps the intel-ipsec-mb engine: its multi-lane managers fill their lanes from a burst.
  return sa;
}

void DetachSa(EspSa* sa) { sa->attached_ = false; }

SaInfo InfoOf(const EspSa* sa) { return SaInfo{sa->spi_, sa->outbound_, sa->IvLen()}; }

size_t SealedLength(const EspSa* sa, size_t payloadLength) { return sa->SealedLength(payloadLength); }

// The data plane's batch calls: SealMany / OpenMany over its PacketIo array (an SA the JS side destroyed
// meanwhile, or of the other direction, takes no packet).
size_t SealPackets(EspSa* sa, PacketIo* p, size_t n) {
  PacketSpan span{p};
  if (sa->ready_ && sa->outbound_) return sa->SealMany(span, n);
  for (size_t i = 0; i < n; i++) p[i] = PacketIo{p[i].in, p[i].len, p[i].out, 0, p[i].nextHeader, kBadBounds};
  return 0;
}

size_t OpenPackets(EspSa* sa, PacketIo* p, size_t n) {
  PacketSpan span{p};
  if (sa->ready_ && !sa->outbound_) return sa->OpenMany(span, n);
  for (size_t i = 0; i < n; i++) p[i] = PacketIo{p[i].in, p[i].len, p[i].out, 0, 0, kBadBounds};
  return 0;
}

// Benchmark and fault-injection hooks: only in the test build of the addon (ikev1_native_test, binding.gyp),
// never in the production binary.
#ifdef IKE_TEST_HOOKS
namespace {

// Arguments 1-4 of the raw loops: seal, size, batch, iterations (a JS exception pending when false).
bool GetBenchArgs(const Napi::CallbackInfo& info, bool* seal, int64_t* size, int64_t* batch, int64_t* iterations) {
  return GetBool(info, 1, "seal", seal) && GetInt(info, 2, "size", 16, 65536, size) && GetInt(info, 3, "batch", 1, 4096, batch) &&
         GetInt(info, 4, "iterations", 1, 1 << 24, iterations);
}

// espRawEvpBench(algorithm, seal: boolean, size, batch, iterations) -> nanoseconds
// The ceiling for the ESP numbers: plain EVP work on `batch` buffers of `size` bytes, repeated `iterations`
// times, timed in C++ with nothing else around it. AEAD: re-IV, 8-byte AAD, update, final, tag (open: set tag,
// update, final). CBC+HMAC: EVP CBC + EVP_MAC HMAC over the same bytes, MAC verify before decrypt.
Napi::Value RawEvpBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!GetString(info, 0, "algorithm", &name)) return env.Undefined();
  const AlgInfo* alg = FindAlg(name);
  if (alg == nullptr || alg->enc == EncKind::Null || (IsCbc(alg->enc) && alg->hash == HashAlg::None)) {
    ThrowRange(env, "espRawEvpBench: unsupported algorithm '" + name + "'");
    return env.Undefined();
  }
  bool seal = true;
  int64_t size = 0, batch = 0, iterations = 0;
  if (!GetBenchArgs(info, &seal, &size, &batch, &iterations)) return env.Undefined();
  const size_t blk = IsCbc(alg->enc) ? CbcBlock(alg->enc) : 1;
  const size_t len = (static_cast<size_t>(size) + blk - 1) / blk * blk;
  const size_t stride = len + 64;
  std::vector<uint8_t> buf(stride * static_cast<size_t>(batch), 0xa5);
  std::vector<uint8_t> out(stride * static_cast<size_t>(batch));
  uint8_t key[32 + 64], iv[16] = {0}, aad[8] = {1, 2, 3, 4, 0, 0, 0, 1}, tag[64];  // cipher key | HMAC key
  RAND_bytes(key, sizeof(key));
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* dec = EVP_CIPHER_CTX_new();
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* mctx = nullptr;
  const EVP_CIPHER* cipher = FetchedCipher(*alg);  // the SAs' own
  bool ok = enc && dec && cipher && EVP_EncryptInit_ex(enc, cipher, nullptr, key, nullptr) == 1 &&
            EVP_DecryptInit_ex(dec, cipher, nullptr, key, nullptr) == 1;
  if (ok && IsCbc(alg->enc)) {
    EVP_CIPHER_CTX_set_padding(enc, 0);
    EVP_CIPHER_CTX_set_padding(dec, 0);
    const char* digest = alg->hash == HashAlg::Md5 ? "MD5" : alg->hash == HashAlg::Sha1 ? "SHA1"
                         : alg->hash == HashAlg::Sha256 ? "SHA256" : alg->hash == HashAlg::Sha384 ? "SHA384" : "SHA512";
    mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    mctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(digest), 0), OSSL_PARAM_END};
    ok = mctx && EVP_MAC_init(mctx, key + 32, alg->integKeyLength, params) == 1;
  }
  const bool aead = IsAead(alg->enc);
  auto sealOne = [&](uint8_t* p, uint8_t* o, uint64_t ctr) -> bool {
    int n = 0;
    if (aead) {
      PutBe64(iv + 4, ctr);
      return EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, iv) == 1 &&
             EVP_EncryptUpdate(enc, nullptr, &n, aad, 8) == 1 &&
             EVP_EncryptUpdate(enc, o, &n, p, static_cast<int>(len)) == 1 &&
             EVP_EncryptFinal_ex(enc, o + len, &n) == 1 &&
             EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_AEAD_GET_TAG, 16, o + len) == 1;
    }
    size_t ml = 0;
    return EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, iv) == 1 &&
           EVP_EncryptUpdate(enc, o, &n, p, static_cast<int>(len)) == 1 &&
           EVP_MAC_init(mctx, nullptr, 0, nullptr) == 1 && EVP_MAC_update(mctx, o, len) == 1 &&
           EVP_MAC_final(mctx, o + len, &ml, 64) == 1;
  };
  auto openOne = [&](uint8_t* p, uint8_t* o, uint64_t ctr) -> bool {
    int n = 0;
    if (aead) {
      PutBe64(iv + 4, ctr);
      std::memcpy(tag, p + len, 16);
      return EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, iv) == 1 &&
             EVP_DecryptUpdate(dec, nullptr, &n, aad, 8) == 1 &&
             EVP_DecryptUpdate(dec, o, &n, p, static_cast<int>(len)) == 1 &&
             EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, 16, tag) == 1 &&
             EVP_DecryptFinal_ex(dec, o + len, &n) == 1;
    }
    size_t ml = 0;
    return EVP_MAC_init(mctx, nullptr, 0, nullptr) == 1 && EVP_MAC_update(mctx, p, len) == 1 &&
           EVP_MAC_final(mctx, tag, &ml, 64) == 1 && CRYPTO_memcmp(tag, p + len, alg->icvLength) == 0 &&
           EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, iv) == 1 &&
           EVP_DecryptUpdate(dec, o, &n, p, static_cast<int>(len)) == 1;
  };
  double ns = -1;
  if (ok) {
    const size_t b = static_cast<size_t>(batch);
    // For open, make every buffer a valid sealed packet first (the same nonce per slot each round: it is a
    // benchmark over fixed bytes, never traffic).
    if (!seal) {
      for (size_t j = 0; j < b && ok; j++) ok = sealOne(out.data() + j * stride, buf.data() + j * stride, j);
    }
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t it = 0; it < iterations && ok; it++) {
      for (size_t j = 0; j < b; j++) {
        uint8_t* p = buf.data() + j * stride;
        uint8_t* o = out.data() + j * stride;
        if (!(seal ? sealOne(p, o, j) : openOne(p, o, j))) {
          ok = false;
          break;
        }
      }
    }
    auto t1 = std::chrono::steady_clock::now();
    ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  EVP_CIPHER_CTX_free(enc);
  EVP_CIPHER_CTX_free(dec);
  EVP_MAC_CTX_free(mctx);
  EVP_MAC_free(mac);
  OPENSSL_cleanse(key, sizeof(key));
  if (!ok) {
    Napi::Error::New(env, "espRawEvpBench: OpenSSL failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, ns);
}

// espRawMbBench(algorithm, seal: boolean, size, batch, iterations) -> nanoseconds
// The intel-ipsec-mb ceiling beside espRawEvpBench: the library's job loop alone over the same sizes and
// batch (esp_mb.cc RawBench). Throws when the engine is not built in or cannot run the algorithm.
Napi::Value RawMbBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  if (!GetString(info, 0, "algorithm", &name)) return env.Undefined();
  const AlgInfo* alg = FindAlg(name);
  mb::Cipher c;
  if (alg == nullptr || !MbCipherOf(*alg, &c) || !mb::Available()) {
    ThrowRange(env, "espRawMbBench: '" + name + "' cannot run on " + mb::Describe());
    return env.Undefined();
  }
  bool seal = true;
  int64_t size = 0, batch = 0, iterations = 0;
  if (!GetBenchArgs(info, &seal, &size, &batch, &iterations)) return env.Undefined();
  const double ns = mb::RawBench(c, alg->encKeyLength, alg->hash, alg->icvLength, seal, static_cast<size_t>(size),
                                 static_cast<size_t>(batch), static_cast<size_t>(iterations));
  if (ns < 0) {
    Napi::Error::New(env, "espRawMbBench: intel-ipsec-mb failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, ns);
}

// espMallocInUse() -> octets the C allocator has handed out and not yet taken back, or -1 where it cannot say.
// A measuring hook for the memory per SA (bench/esp-memory.ts): OpenSSL contexts and the EspSa objects are
// malloc'd, V8's heap is not, so a delta of this over N SAs is their native cost, allocator overhead included.
// glibc's mallinfo2 sums every arena and the mmapped blocks.
Napi::Value MallocInUse(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 m = mallinfo2();
  return Napi::Number::New(info.Env(), static_cast<double>(m.uordblks + m.hblkhd));
#else
  return Napi::Number::New(info.Env(), -1);
#endif
}

// espFailNextWarms(count): the next `count` first-packet context builds (of any SA) fail as if out of memory,
// so that tests can check that path gives CRYPTO_ERROR statuses and leaves the SA usable. 0 switches it off.
Napi::Value FailNextWarms(const Napi::CallbackInfo& info) {
  int64_t n = 0;
  if (!GetInt(info, 0, "count", 0, 1 << 20, &n)) return info.Env().Undefined();
  gFailWarms.store(n, std::memory_order_relaxed);
  return info.Env().Undefined();
}

}  // namespace
#endif  // IKE_TEST_HOOKS
}  // namespace esp
}  // namespace ike

void InitEsp(Napi::Env env, Napi::Object exports) {
  exports.Set("EspSa", ike::esp::EspSa::Define(env));
  // Which engine new SAs get where they can ("intel-ipsec-mb 1.3.0 avx512", or why not).
  exports.Set("espEngineInfo", Napi::String::New(env, ike::esp::mb::Describe()));
  exports.Set("espIpsecMb", Napi::Boolean::New(env, ike::esp::mb::Available()));
#ifdef IKE_TEST_HOOKS
  exports.Set("espRawEvpBench", Napi::Function::New(env, ike::esp::RawEvpBench, "espRawEvpBench"));
  exports.Set("espRawMbBench", Napi::Function::New(env, ike::esp::RawMbBench, "espRawMbBench"));
  exports.Set("espMallocInUse", Napi::Function::New(env, ike::esp::MallocInUse, "espMallocInUse"));
  exports.Set("espFailNextWarms", Napi::Function::New(env, ike::esp::FailNextWarms, "espFailNextWarms"));
#endif
}
