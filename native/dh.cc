// Diffie-Hellman for IKE: MODP groups 1, 2, 5, 14-18 (RFC 2409 / RFC 3526) and ECP groups 19-21 (RFC 5903).
//
// The group parameters live in a process-wide table built once (std::call_once) before any key exists: the
// prime, p - 1 and the Montgomery context for MODP; the EC_GROUP for ECP. After that they are only read, so
// the libuv pool threads share them without a lock. A private key lives in a C++ KeyState that JavaScript
// holds through a DhKey object; the async paths hold a shared_ptr to it, so the JS object may be collected
// while a computation runs.
#include "ikecrypto.h"  // first: it sets OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <memory>
#include <mutex>
#include <vector>

#include "addon.h"

namespace ike {
namespace {

struct ModpGroup {
  int id;
  int bits;
  // Private exponent length in bits for the default (short) exponent. The rule is 2x the symmetric strength
  // of the group (NIST SP 800-56A rev3 5.6.1.1.4 takes the private key from [1, 2^N) with N >= 2s for safe-
  // prime groups), using the strengths of SP 800-57 part 1 table 2 for 1024/2048/3072 (80/112/128 bits) and
  // RFC 3526's estimates for the larger groups (4096: 150-240 -> 152, 6144: 170-270 -> 176, 8192: 190-310
  // -> 200). Each value is also at least the lower bound of RFC 3526's "exponent size" column. Groups 1, 2
  // and 5 are weak anyway; they get 160/160/200 so that the exponent is never the weaker part.
  int exponentBits;
  BIGNUM* (*prime)(BIGNUM*);
  BIGNUM* p = nullptr;
  BIGNUM* pMinus1 = nullptr;
  BIGNUM* pMinus3 = nullptr;
  BN_MONT_CTX* mont = nullptr;
};

ModpGroup g_modp[] = {
    {1, 768, 160, BN_get_rfc2409_prime_768},     {2, 1024, 160, BN_get_rfc2409_prime_1024},
    {5, 1536, 200, BN_get_rfc3526_prime_1536},   {14, 2048, 224, BN_get_rfc3526_prime_2048},
    {15, 3072, 256, BN_get_rfc3526_prime_3072},  {16, 4096, 304, BN_get_rfc3526_prime_4096},
    {17, 6144, 352, BN_get_rfc3526_prime_6144},  {18, 8192, 400, BN_get_rfc3526_prime_8192},
};

// Fixed-base comb table of a MODP group for g^x with a short exponent (see CombExp), built on first use.
struct CombTable {
  std::once_flag once;
  bool ok = false;
  int cols = 0;
  std::vector<uint8_t> table;  // kCombEntries entries of bits/8 bytes each, little-endian, Montgomery form
};
CombTable g_comb[sizeof g_modp / sizeof g_modp[0]];

struct EcpGroup {
  int id;
  int nid;
  size_t fieldLen;  // bytes of one coordinate (P-521: 66)
  EC_GROUP* group = nullptr;
  BIGNUM* p = nullptr;
};

EcpGroup g_ecp[] = {
    {19, NID_X9_62_prime256v1, 32},
    {20, NID_secp384r1, 48},
    {21, NID_secp521r1, 66},
};

BIGNUM* g_two = nullptr;  // every MODP group has generator 2
std::once_flag g_groupsOnce;
bool g_groupsOk = false;

void InitGroups() {
  std::call_once(g_groupsOnce, [] {
    bool ok = true;
    BN_CTX* ctx = BN_CTX_new();
    g_two = BN_new();
    ok = ctx && g_two && BN_set_word(g_two, 2);
    for (ModpGroup& m : g_modp) {
      if (!ok) break;
      m.p = m.prime(nullptr);
      m.pMinus1 = BN_new();
      m.pMinus3 = BN_new();
      m.mont = BN_MONT_CTX_new();
      ok = m.p && m.pMinus1 && m.pMinus3 && m.mont && BN_num_bits(m.p) == m.bits && BN_copy(m.pMinus1, m.p) &&
           BN_sub_word(m.pMinus1, 1) && BN_copy(m.pMinus3, m.p) && BN_sub_word(m.pMinus3, 3) &&
           BN_MONT_CTX_set(m.mont, m.p, ctx);
    }
    for (EcpGroup& e : g_ecp) {
      if (!ok) break;
      e.group = EC_GROUP_new_by_curve_name(e.nid);
      e.p = BN_new();
      ok = e.group && e.p && EC_GROUP_get_curve(e.group, e.p, nullptr, nullptr, ctx) &&
           static_cast<size_t>(BN_num_bytes(e.p)) == e.fieldLen;
    }
    BN_CTX_free(ctx);
    ERR_clear_error();
    g_groupsOk = ok;
  });
}

const ModpGroup* FindModp(int id) {
  for (const ModpGroup& m : g_modp)
    if (m.id == id) return &m;
  return nullptr;
}
const EcpGroup* FindEcp(int id) {
  for (const EcpGroup& e : g_ecp)
    if (e.id == id) return &e;
  return nullptr;
}

// Result of the work functions, which may run on a pool thread and so must not touch N-API.
enum class Status { kOk, kRange, kFail };
struct Result {
  Status status = Status::kOk;
  std::string message;
  static Result Range(std::string m) { return {Status::kRange, std::move(m)}; }
  static Result Fail(std::string m) {
    ERR_clear_error();
    return {Status::kFail, std::move(m) + " failed in OpenSSL"};
  }
};

struct BnFree {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
struct PointFree {
  void operator()(EC_POINT* p) const { EC_POINT_clear_free(p); }
};
using PointPtr = std::unique_ptr<EC_POINT, PointFree>;

// Frames BN_CTX_start/end around a computation on the thread's BN_CTX.
struct BnFrame {
  BN_CTX* ctx;
  explicit BnFrame(BN_CTX* c) : ctx(c) {
    if (ctx) BN_CTX_start(ctx);
  }
  ~BnFrame() {
    if (ctx) BN_CTX_end(ctx);
  }
  BIGNUM* Get() { return ctx ? BN_CTX_get(ctx) : nullptr; }
};

// g^x for a short exponent by a fixed-base comb (Lim-Lee). The generator never changes, so its powers
// g^(2^(j*a)) (j < h teeth, a = ceil(t/h) columns) and all 2^h products of them are computed once per group.
// Then g^x costs a squarings and a multiplications instead of ~t squarings and t/5 multiplications of the
// sliding-window modexp: a key pair for group 14 is about 2.5x cheaper. Constant time: the loop count is
// fixed, a multiplication happens in every column (entry 0 is 1), and the table entry is read by scanning
// every entry with a mask, so neither the memory access pattern nor the work depends on the exponent.
constexpr int kCombTeeth = 6;
constexpr int kCombEntries = 1 << kCombTeeth;

bool BuildComb(const ModpGroup& m, CombTable& c) {
  BN_CTX* ctx = BN_CTX_new();
  if (!ctx) return false;
  BN_CTX_start(ctx);
  bool ok = true;
  const size_t len = m.bits / 8;
  const int cols = (m.exponentBits + kCombTeeth - 1) / kCombTeeth;
  BIGNUM* base[kCombTeeth];
  for (BIGNUM*& b : base) ok = ok && (b = BN_CTX_get(ctx)) != nullptr;
  BIGNUM* t = BN_CTX_get(ctx);
  ok = ok && t && BN_to_montgomery(base[0], g_two, m.mont, ctx);
  for (int j = 1; ok && j < kCombTeeth; j++) {  // base[j] = base[j-1]^(2^cols)
    ok = BN_copy(base[j], base[j - 1]) != nullptr;
    for (int k = 0; ok && k < cols; k++) ok = BN_mod_mul_montgomery(base[j], base[j], base[j], m.mont, ctx);
  }
  std::vector<uint8_t> table(kCombEntries * len);
  ok = ok && BN_to_montgomery(t, BN_value_one(), m.mont, ctx) &&
       BN_bn2lebinpad(t, table.data(), static_cast<int>(len)) >= 0;
  for (int i = 1; ok && i < kCombEntries; i++) {  // entry i = entry (i without its lowest bit) * base[lowest bit]
    int low = __builtin_ctz(static_cast<unsigned>(i));
    ok = BN_lebin2bn(&table[(i & (i - 1)) * len], static_cast<int>(len), t) &&
         BN_mod_mul_montgomery(t, t, base[low], m.mont, ctx) &&
         BN_bn2lebinpad(t, &table[i * len], static_cast<int>(len)) >= 0;
  }
  BN_CTX_end(ctx);
  BN_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return false;
  }
  c.table = std::move(table);
  c.cols = cols;
  return true;
}

// y = g^x mod p for 0 < x < 2^exponentBits. Returns false if the table could not be built (caller falls back).
bool CombExp(const ModpGroup& m, const BIGNUM* x, BIGNUM* y, BN_CTX* ctx) {
  CombTable& c = g_comb[&m - g_modp];
  std::call_once(c.once, [&m, &c] { c.ok = BuildComb(m, c); });
  if (!c.ok) return false;
  const size_t len = m.bits / 8;
  const int cols = c.cols;
  const size_t xLen = (static_cast<size_t>(cols) * kCombTeeth + 7) / 8;
  std::vector<uint8_t> xb(xLen), sel(len);
  if (BN_bn2lebinpad(x, xb.data(), static_cast<int>(xLen)) < 0) return false;
  BnFrame f(ctx);
  BIGNUM* r = f.Get();
  BIGNUM* e = f.Get();
  bool ok = e && BN_lebin2bn(c.table.data(), static_cast<int>(len), r);
  for (int k = cols - 1; ok && k >= 0; k--) {
    ok = BN_mod_mul_montgomery(r, r, r, m.mont, ctx);
    unsigned idx = 0;
    for (int j = 0; j < kCombTeeth; j++) {
      const size_t bit = static_cast<size_t>(j) * cols + k;
      idx |= ((xb[bit >> 3] >> (bit & 7)) & 1u) << j;
    }
    std::memset(sel.data(), 0, len);
    for (unsigned i = 0; i < kCombEntries; i++) {
      const unsigned d = i ^ idx;
      const uint8_t mask = static_cast<uint8_t>(((d | (0u - d)) >> 31) - 1u);  // 0xff iff i == idx
      const uint8_t* entry = &c.table[i * len];
      for (size_t b = 0; b < len; b++) sel[b] |= entry[b] & mask;
    }
    ok = ok && BN_lebin2bn(sel.data(), static_cast<int>(len), e) && BN_mod_mul_montgomery(r, r, e, m.mont, ctx);
  }
  ok = ok && BN_from_montgomery(y, r, m.mont, ctx);
  OPENSSL_cleanse(xb.data(), xb.size());
  OPENSSL_cleanse(sel.data(), sel.size());
  return ok;
}

struct KeyState {
  int group = 0;
  BnPtr priv;  // MODP exponent x or EC scalar, flagged BN_FLG_CONSTTIME
  std::vector<uint8_t> pub;
};

// Sets priv and the matching public value. priv must already be in range.
Result FinishKey(KeyState* k) {
  BN_set_flags(k->priv.get(), BN_FLG_CONSTTIME);
  BN_CTX* ctx = ThreadBnCtx();
  if (const ModpGroup* m = FindModp(k->group)) {
    BnFrame f(ctx);
    BIGNUM* y = f.Get();
    if (!y) return Result::Fail("BN_CTX_get");
    // Short exponents (all generated by default) take the comb; longer ones the general constant-time modexp.
    bool done = BN_num_bits(k->priv.get()) <= m->exponentBits && CombExp(*m, k->priv.get(), y, ctx);
    if (!done && !BN_mod_exp_mont_consttime(y, g_two, k->priv.get(), m->p, ctx, m->mont)) return Result::Fail("g^x");
    k->pub.resize(m->bits / 8);
    if (BN_bn2binpad(y, k->pub.data(), static_cast<int>(k->pub.size())) < 0) return Result::Fail("encode");
    return {};
  }
  const EcpGroup* e = FindEcp(k->group);
  BnFrame f(ctx);
  BIGNUM* x = f.Get();
  BIGNUM* y = f.Get();
  PointPtr P(EC_POINT_new(e->group));
  if (!y || !P || !EC_POINT_mul(e->group, P.get(), k->priv.get(), nullptr, nullptr, ctx) ||
      !EC_POINT_get_affine_coordinates(e->group, P.get(), x, y, ctx))
    return Result::Fail("EC point multiplication");
  // IKE's ECP KE data is x | y, each zero-padded to the field length (RFC 5903 section 7).
  k->pub.resize(2 * e->fieldLen);
  if (BN_bn2binpad(x, k->pub.data(), static_cast<int>(e->fieldLen)) < 0 ||
      BN_bn2binpad(y, k->pub.data() + e->fieldLen, static_cast<int>(e->fieldLen)) < 0)
    return Result::Fail("encode");
  return {};
}

Result Generate(int group, bool fullLength, std::shared_ptr<KeyState>* out) {
  auto k = std::make_shared<KeyState>();
  k->group = group;
  k->priv.reset(BN_secure_new());
  if (!k->priv) return Result::Fail("BN_secure_new");
  BN_CTX* ctx = ThreadBnCtx();
  if (const ModpGroup* m = FindModp(group)) {
    bool ok;
    if (fullLength) {
      // x uniform in [2, p-2]: as long as the prime, like the classic DH_generate_key without q.
      ok = BN_priv_rand_range_ex(k->priv.get(), m->pMinus3, 0, ctx) && BN_add_word(k->priv.get(), 2);
    } else {
      // Top bit set so every key of a group costs the same number of squarings.
      ok = BN_priv_rand_ex(k->priv.get(), m->exponentBits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY, 0, ctx);
    }
    if (!ok) return Result::Fail("random exponent");
  } else {
    const EcpGroup* e = FindEcp(group);
    const BIGNUM* n = EC_GROUP_get0_order(e->group);
    do {  // scalar uniform in [1, n-1]
      if (!BN_priv_rand_range_ex(k->priv.get(), n, 0, ctx)) return Result::Fail("random scalar");
    } while (BN_is_zero(k->priv.get()));
  }
  Result r = FinishKey(k.get());
  if (r.status == Status::kOk) *out = std::move(k);
  return r;
}

Result Import(int group, const uint8_t* data, size_t size, std::shared_ptr<KeyState>* out) {
  auto k = std::make_shared<KeyState>();
  k->group = group;
  k->priv.reset(BN_secure_new());
  if (!k->priv || !BN_bin2bn(data, static_cast<int>(size), k->priv.get())) return Result::Fail("BN_bin2bn");
  if (const ModpGroup* m = FindModp(group)) {
    if (size > static_cast<size_t>(m->bits / 8) || BN_is_zero(k->priv.get()) || BN_cmp(k->priv.get(), m->pMinus1) >= 0)
      return Result::Range("MODP private exponent must be in [1, p-2]");
  } else {
    const EcpGroup* e = FindEcp(group);
    if (size > e->fieldLen || BN_is_zero(k->priv.get()) || BN_cmp(k->priv.get(), EC_GROUP_get0_order(e->group)) >= 0)
      return Result::Range("ECP private key must be in [1, n-1]");
  }
  Result r = FinishKey(k.get());
  if (r.status == Status::kOk) *out = std::move(k);
  return r;
}

// g^xy from our key and the peer's KE data, after validating the peer value.
Result Compute(const KeyState& k, const uint8_t* peer, size_t size, std::vector<uint8_t>* secret) {
  BN_CTX* ctx = ThreadBnCtx();
  BnFrame f(ctx);
  if (const ModpGroup* m = FindModp(k.group)) {
    size_t len = m->bits / 8;
    if (size != len) return Result::Range("MODP peer public value must be " + std::to_string(len) + " bytes");
    BIGNUM* y = f.Get();
    BIGNUM* z = f.Get();
    if (!z || !BN_bin2bn(peer, static_cast<int>(size), y)) return Result::Fail("BN_bin2bn");
    // 1 < y < p-1 excludes the only small subgroup of a safe-prime group ({1, p-1}) and 0; the public value
    // is not secret, so an ordinary comparison is fine.
    if (BN_cmp(y, BN_value_one()) <= 0 || BN_cmp(y, m->pMinus1) >= 0)
      return Result::Range("MODP peer public value must satisfy 1 < y < p-1");
    if (!BN_mod_exp_mont_consttime(z, y, k.priv.get(), m->p, ctx, m->mont)) return Result::Fail("y^x");
    secret->resize(len);  // padded to the prime length: IKEv1 hashes g^xy with its leading zeros
    if (BN_bn2binpad(z, secret->data(), static_cast<int>(len)) < 0) return Result::Fail("encode");
    return {};
  }
  const EcpGroup* e = FindEcp(k.group);
  size_t flen = e->fieldLen;
  if (size != 2 * flen) return Result::Range("ECP peer public value must be " + std::to_string(2 * flen) + " bytes (x | y)");
  BIGNUM* x = f.Get();
  BIGNUM* y = f.Get();
  if (!y || !BN_bin2bn(peer, static_cast<int>(flen), x) || !BN_bin2bn(peer + flen, static_cast<int>(flen), y))
    return Result::Fail("BN_bin2bn");
  if (BN_cmp(x, e->p) >= 0 || BN_cmp(y, e->p) >= 0) return Result::Range("ECP peer coordinate not below the field prime");
  PointPtr Q(EC_POINT_new(e->group));
  PointPtr R(EC_POINT_new(e->group));
  if (!Q || !R) return Result::Fail("EC_POINT_new");
  // set_affine_coordinates refuses points off the curve; (0, 0) (how some encode infinity) is off the curve
  // for these b != 0 curves. The cofactor is 1, so an on-curve point other than infinity has order n.
  if (!EC_POINT_set_affine_coordinates(e->group, Q.get(), x, y, ctx) || EC_POINT_is_on_curve(e->group, Q.get(), ctx) != 1 ||
      EC_POINT_is_at_infinity(e->group, Q.get())) {
    ERR_clear_error();
    return Result::Range("ECP peer public value is not a point on the curve");
  }
  if (!EC_POINT_mul(e->group, R.get(), nullptr, Q.get(), k.priv.get(), ctx)) return Result::Fail("EC point multiplication");
  if (EC_POINT_is_at_infinity(e->group, R.get())) return Result::Range("ECP shared point is at infinity");
  if (!EC_POINT_get_affine_coordinates(e->group, R.get(), x, nullptr, ctx)) return Result::Fail("EC affine");
  secret->resize(flen);  // RFC 5903 section 7: the shared secret is x only
  if (BN_bn2binpad(x, secret->data(), static_cast<int>(flen)) < 0) return Result::Fail("encode");
  return {};
}

Napi::Value Throw(Napi::Env env, const Result& r) {
  if (r.status == Status::kRange)
    Napi::RangeError::New(env, r.message).ThrowAsJavaScriptException();
  else
    Napi::Error::New(env, r.message).ThrowAsJavaScriptException();
  return env.Undefined();
}
Napi::Error ToError(Napi::Env env, const Result& r) {
  return r.status == Status::kRange ? Napi::RangeError::New(env, r.message) : Napi::Error::New(env, r.message);
}

bool GetGroup(const Napi::CallbackInfo& info, size_t i, int* out) {
  int64_t v;
  if (!GetInt(info, i, "group", 0, 1 << 16, &v)) return false;
  if (!FindModp(static_cast<int>(v)) && !FindEcp(static_cast<int>(v)))
    return ThrowRange(info.Env(), "unsupported DH group " + std::to_string(v));
  *out = static_cast<int>(v);
  return true;
}

// Optional boolean argument (undefined -> false).
bool GetOptBool(const Napi::CallbackInfo& info, size_t i, const char* name, bool* out) {
  *out = false;
  if (info.Length() <= i || info[i].IsUndefined()) return true;
  if (!info[i].IsBoolean()) return ThrowType(info.Env(), std::string(name) + " must be a boolean");
  *out = info[i].As<Napi::Boolean>().Value();
  return true;
}

// Is argument i given (not undefined)? Then it is an output buffer and GetOut checks it.
bool HasOut(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && !info[i].IsUndefined(); }

class DhKey;

// Keypair generation on the pool; OnOK installs the key in the DhKey that asked (kept alive by a reference).
// Given the peer's value too (a responder knows it before it makes its own), the same work item also
// computes g^xy and the promise resolves to it: one trip to the pool instead of two, each a thread wake-up
// and a promise, which on a busy gateway is a fifth of a setup's CPU.
class GenerateWorker : public Napi::AsyncWorker {
 public:
  GenerateWorker(Napi::Env env, Napi::Object self, DhKey* key, int group, bool full, const Bytes* peer = nullptr)
      : Napi::AsyncWorker(env, peer ? "ikeDhGenerateCompute" : "ikeDhGenerate"), deferred_(Napi::Promise::Deferred::New(env)),
        key_(key), group_(group), full_(full), compute_(peer != nullptr) {
    self_ = Napi::Persistent(self);
    if (peer) peer_.assign(peer->data, peer->data + peer->size);  // copied: JS may reuse the buffer
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    result_ = Generate(group_, full_, &state_);
    if (compute_ && result_.status == Status::kOk) result_ = Compute(*state_, peer_.data(), peer_.size(), &secret_);
  }
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;
  DhKey* key_;
  int group_;
  bool full_;
  bool compute_;
  std::vector<uint8_t> peer_;
  Result result_;
  std::shared_ptr<KeyState> state_;
  std::vector<uint8_t> secret_;
};

class ComputeWorker : public Napi::AsyncWorker {
 public:
  ComputeWorker(Napi::Env env, std::shared_ptr<const KeyState> state, const uint8_t* peer, size_t size)
      : Napi::AsyncWorker(env, "ikeDhCompute"), deferred_(Napi::Promise::Deferred::New(env)), state_(std::move(state)),
        peer_(peer, peer + size) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { result_ = Compute(*state_, peer_.data(), peer_.size(), &secret_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_.status != Status::kOk) {
      deferred_.Reject(ToError(env, result_).Value());
    } else {
      deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, secret_.data(), secret_.size()));
    }
    OPENSSL_cleanse(secret_.data(), secret_.size());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const KeyState> state_;
  std::vector<uint8_t> peer_;
  Result result_;
  std::vector<uint8_t> secret_;
};

// new DhKey(group): an empty key for one DH group; generate()/generateAsync()/importPrivateKey() fills it once.
class DhKey : public Napi::ObjectWrap<DhKey> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DhKey",
                       {InstanceMethod<&DhKey::GenerateSync>("generate"),
                        InstanceMethod<&DhKey::GenerateAsync>("generateAsync"),
                        InstanceMethod<&DhKey::ImportPrivateKey>("importPrivateKey"),
                        InstanceMethod<&DhKey::PublicValue>("publicValue"),
                        InstanceMethod<&DhKey::ComputeSync>("computeSecret"),
                        InstanceMethod<&DhKey::ComputeAsync>("computeSecretAsync"),
                        InstanceMethod<&DhKey::GenerateComputeAsync>("generateAndComputeAsync"),
                        InstanceMethod<&DhKey::PrivateBits>("privateKeyBits")});
  }

  explicit DhKey(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DhKey>(info) {
    GetGroup(info, 0, &group_);  // on failure the exception propagates out of `new`
  }

  void Install(std::shared_ptr<KeyState> s) {
    pending_ = false;
    state_ = std::move(s);
  }
  void Abandon() { pending_ = false; }

 private:
  // Keys are write-once: refusing a second fill means a pool thread never sees its key change under it.
  bool CheckEmpty(Napi::Env env) {
    if (group_ == 0) return ThrowType(env, "DhKey was not constructed with a valid group");
    // Misuse of the object's state is reported as a TypeError: an empty key and a filled key behave like
    // two different types, and every entry point of the addon throws only TypeError / RangeError.
    if (state_ || pending_) return ThrowType(env, "this DhKey already holds a key (keys are write-once)");
    return true;
  }
  bool CheckFilled(Napi::Env env) {
    if (!state_) return ThrowType(env, "this DhKey holds no key yet: call generate() or importPrivateKey() first");
    return true;
  }

  Napi::Value GenerateSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool full;
    if (!GetOptBool(info, 0, "fullLengthExponent", &full) || !CheckEmpty(env)) return env.Undefined();
    std::shared_ptr<KeyState> s;
    Result r = Generate(group_, full, &s);
    if (r.status != Status::kOk) return Throw(env, r);
    state_ = std::move(s);
    return env.Undefined();
  }

  Napi::Value GenerateAsync(const Napi::CallbackInfo& info) {
    bool full;
    if (!GetOptBool(info, 0, "fullLengthExponent", &full)) return info.Env().Undefined();
    return QueueGenerate(info, full, nullptr);
  }

  Napi::Value ImportPrivateKey(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes b = GetBytes(info, 0, "privateKey");
    if (!b.ok || !CheckEmpty(env)) return env.Undefined();
    std::shared_ptr<KeyState> s;
    Result r = Import(group_, b.data, b.size, &s);
    if (r.status != Status::kOk) return Throw(env, r);
    state_ = std::move(s);
    return env.Undefined();
  }

  // publicValue([out]): with `out` (a Uint8Array of exactly the public value's length) the value is written
  // there and out is returned; without, a new Buffer. The caller's buffer is a slice of Node's pool, far
  // cheaper than a Buffer made here (its own malloc'd backing store, swept by the GC).
  Napi::Value PublicValue(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckFilled(env)) return env.Undefined();
    if (HasOut(info, 0)) {
      OutBytes out = GetOut(info, 0);
      if (!out.ok || !CheckOutSize(info, out, state_->pub.size())) return env.Undefined();
      std::memcpy(out.data, state_->pub.data(), out.size);
      return info[0];
    }
    return Napi::Buffer<uint8_t>::Copy(env, state_->pub.data(), state_->pub.size());
  }

  // privateKeyBits(): bit length of the private value, so tests can check the exponent policy. The length
  // is not secret (every generated key of a group has the same one); the value never leaves C++.
  Napi::Value PrivateBits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckFilled(env)) return env.Undefined();
    return Napi::Number::New(env, BN_num_bits(state_->priv.get()));
  }

  // computeSecret(peerPublic, [out]): g^xy into `out` (exactly the secret's length), returned, or into a new
  // Buffer without it. The peer value is validated first; on a bad value out is left untouched.
  Napi::Value ComputeSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes peer = GetBytes(info, 0, "peerPublic");
    if (!peer.ok || !CheckFilled(env)) return env.Undefined();
    OutBytes out;
    const bool hasOut = HasOut(info, 1);
    if (hasOut && !(out = GetOut(info, 1)).ok) return env.Undefined();
    std::vector<uint8_t> secret;
    Result r = Compute(*state_, peer.data, peer.size, &secret);
    if (r.status != Status::kOk) return Throw(env, r);
    Napi::Value result;
    if (!hasOut) {
      result = Napi::Buffer<uint8_t>::Copy(env, secret.data(), secret.size());
    } else if (CheckOutSize(info, out, secret.size())) {
      std::memcpy(out.data, secret.data(), out.size);
      result = info[1];
    } else {
      result = env.Undefined();
    }
    OPENSSL_cleanse(secret.data(), secret.size());
    return result;
  }

  Napi::Value ComputeAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Bytes peer = GetBytes(info, 0, "peerPublic");
    if (!peer.ok || !CheckFilled(env)) return env.Undefined();
    auto* w = new ComputeWorker(env, state_, peer.data, peer.size);  // copies peer: JS may reuse the buffer
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  // generateAndComputeAsync(peerPublic, [fullLengthExponent]): a key pair for this empty key and g^xy with
  // the peer's value, both on the pool; resolves the secret. A bad peer value rejects and leaves no key.
  Napi::Value GenerateComputeAsync(const Napi::CallbackInfo& info) {
    Bytes peer = GetBytes(info, 0, "peerPublic");
    bool full;
    if (!peer.ok || !GetOptBool(info, 1, "fullLengthExponent", &full)) return info.Env().Undefined();
    return QueueGenerate(info, full, &peer);
  }

  Napi::Value QueueGenerate(const Napi::CallbackInfo& info, bool full, const Bytes* peer) {
    Napi::Env env = info.Env();
    if (!CheckEmpty(env)) return env.Undefined();
    pending_ = true;
    auto* w = new GenerateWorker(env, info.This().As<Napi::Object>(), this, group_, full, peer);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  int group_ = 0;
  bool pending_ = false;
  std::shared_ptr<const KeyState> state_;
};

void GenerateWorker::OnOK() {
  Napi::Env env = Env();
  if (result_.status != Status::kOk) {
    key_->Abandon();
    deferred_.Reject(ToError(env, result_).Value());
  } else {
    key_->Install(std::move(state_));
    deferred_.Resolve(compute_ ? Napi::Buffer<uint8_t>::Copy(env, secret_.data(), secret_.size()).As<Napi::Value>() : env.Undefined());
  }
  OPENSSL_cleanse(secret_.data(), secret_.size());
}
void GenerateWorker::OnError(const Napi::Error& e) {
  key_->Abandon();
  deferred_.Reject(e.Value());
}

// dhGroupInfo(id) -> { id, kind, bits, publicLength, secretLength, exponentBits, prime }: parameters as the
// addon uses them, so tests can compare them with the RFC texts.
Napi::Value DhGroupInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int id;
  if (!GetGroup(info, 0, &id)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", id);
  if (const ModpGroup* m = FindModp(id)) {
    std::vector<uint8_t> p(m->bits / 8);
    BN_bn2binpad(m->p, p.data(), static_cast<int>(p.size()));
    o.Set("kind", "modp");
    o.Set("bits", m->bits);
    o.Set("publicLength", m->bits / 8);
    o.Set("secretLength", m->bits / 8);
    o.Set("exponentBits", m->exponentBits);
    o.Set("prime", Napi::Buffer<uint8_t>::Copy(env, p.data(), p.size()));
  } else {
    const EcpGroup* e = FindEcp(id);
    std::vector<uint8_t> p(e->fieldLen);
    BN_bn2binpad(e->p, p.data(), static_cast<int>(p.size()));
    o.Set("kind", "ecp");
    o.Set("bits", EC_GROUP_get_degree(e->group));
    o.Set("publicLength", 2 * e->fieldLen);
    o.Set("secretLength", e->fieldLen);
    o.Set("prime", Napi::Buffer<uint8_t>::Copy(env, p.data(), p.size()));
  }
  return o;
}

}  // namespace
}  // namespace ike

void InitDh(Napi::Env env, Napi::Object exports) {
  using namespace ike;
  // InitDh runs first (addon.cc): refuse to load, rather than crash later, if an OpenSSL symbol is absent.
  std::string missing;
  if (!OpenSslSymbolsPresent(&missing)) {
    Napi::Error::New(env, "ikev1_native: OpenSSL function " + missing + " is not exported by this Node")
        .ThrowAsJavaScriptException();
    return;
  }
  InitGroups();
  if (!g_groupsOk) {
    Napi::Error::New(env, "ikev1_native: DH group setup failed in OpenSSL").ThrowAsJavaScriptException();
    return;
  }
  exports.Set("DhKey", DhKey::Define(env));
  exports.Set("dhGroupInfo", Napi::Function::New(env, DhGroupInfo, "dhGroupInfo"));
}
