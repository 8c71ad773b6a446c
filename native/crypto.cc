// The backup archive's primitives (docs/archive-format.md §2), from Debian's libsodium and
// libzstd: no cipher, hash or compressor of our own. Small calls are synchronous (they run
// on whichever thread calls them: the archive's worker threads, or the main thread for
// metadata); Argon2id, which takes a tenth of a second and 64 MiB, runs on the pool.
//   seal(key, plaintext, ad, disable?) -> nonce(24) || ciphertext || tag(16)
//   open(key, sealed, ad, disable?) -> plaintext, or an Error with code 'EAUTH'
//     (XChaCha20-Poly1305 by sys/aead.h; `disable` with kCapOpensslAead forces libsodium's)
//   blake2b(data, key?) -> 32 bytes;  randomBytes(n)
//   zstdCompress(data, level) / zstdDecompress(frame, maxSize)
//   argon2id(passphrase, salt, opslimit, memlimit) -> Promise<32-byte key>
#include <napi.h>
#include <sodium.h>
#include <zstd.h>

#include <string>

#include "common.h"
#include "sys/aead.h"
#include "worker.h"

namespace qvol {

namespace {

constexpr size_t kKey = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBuffer())
    throw Napi::TypeError::New(info.Env(), std::string("Expected a Buffer for ") + name);
  return info[i].As<Napi::Buffer<uint8_t>>();
}

Napi::Buffer<uint8_t> KeyArg(const Napi::CallbackInfo& info, size_t i) {
  auto key = BufferArg(info, i, "key");
  if (key.Length() != kKey) throw Napi::RangeError::New(info.Env(), "Expected a 32-byte key");
  return key;
}

uint32_t DisableArg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Uint32Value() : 0;
}

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", code);
  return err;
}

Napi::Value Seal(const Napi::CallbackInfo& info) {
  auto key = KeyArg(info, 0);
  auto plain = BufferArg(info, 1, "plaintext");
  auto ad = BufferArg(info, 2, "ad");
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), kNonce + plain.Length() + kTag);
  randombytes_buf(out.Data(), kNonce);
  sys::aead_seal(sys::aead_impl(DisableArg(info, 3)), out.Data() + kNonce, plain.Data(),
                 plain.Length(), ad.Data(), ad.Length(), out.Data(), key.Data());
  return out;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  auto key = KeyArg(info, 0);
  auto sealed = BufferArg(info, 1, "sealed");
  auto ad = BufferArg(info, 2, "ad");
  if (sealed.Length() < kNonce + kTag)
    throw CodedError(info.Env(), "EAUTH", "sealed data is shorter than a nonce and a tag");
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), sealed.Length() - kNonce - kTag);
  if (!sys::aead_open(sys::aead_impl(DisableArg(info, 3)), out.Data(), sealed.Data() + kNonce,
                      sealed.Length() - kNonce, ad.Data(), ad.Length(), sealed.Data(), key.Data()))
    throw CodedError(info.Env(), "EAUTH", "authentication failed");
  return out;
}

Napi::Value Blake2b(const Napi::CallbackInfo& info) {
  auto data = BufferArg(info, 0, "data");
  const uint8_t* key = nullptr;
  size_t key_len = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    auto k = BufferArg(info, 1, "key");
    if (k.Length() < crypto_generichash_KEYBYTES_MIN ||
        k.Length() > crypto_generichash_KEYBYTES_MAX)
      throw Napi::RangeError::New(info.Env(), "Expected a 16- to 64-byte key");
    key = k.Data();
    key_len = k.Length();
  }
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), 32);
  crypto_generichash(out.Data(), 32, data.Data(), data.Length(), key, key_len);
  return out;
}

Napi::Value RandomBytes(const Napi::CallbackInfo& info) {
  uint64_t n = RequireU64(info, 0, "n");
  if (n > 1 << 20) throw Napi::RangeError::New(info.Env(), "Expected at most 1 MiB");
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), n);
  randombytes_buf(out.Data(), n);
  return out;
}

Napi::Value ZstdCompress(const Napi::CallbackInfo& info) {
  auto data = BufferArg(info, 0, "data");
  int level = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 3;
  size_t bound = ZSTD_compressBound(data.Length());
  std::string out(bound, '\0');
  size_t n = ZSTD_compress(out.data(), bound, data.Data(), data.Length(), level);
  if (ZSTD_isError(n)) throw CodedError(info.Env(), "EZSTD", ZSTD_getErrorName(n));
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t*>(out.data()), n);
}

// Decompresses one frame whose header states its content size, which must be at most
// `maxSize`: nothing from the archive sizes a buffer unchecked.
Napi::Value ZstdDecompress(const Napi::CallbackInfo& info) {
  auto frame = BufferArg(info, 0, "frame");
  uint64_t max = RequireU64(info, 1, "maxSize");
  unsigned long long size = ZSTD_getFrameContentSize(frame.Data(), frame.Length());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    throw CodedError(info.Env(), "EZSTD", "not a zstd frame with its content size");
  if (size > max) throw CodedError(info.Env(), "EZSTD", "frame content larger than allowed");
  auto out = Napi::Buffer<uint8_t>::New(info.Env(), size);
  size_t n = ZSTD_decompress(out.Data(), size, frame.Data(), frame.Length());
  if (ZSTD_isError(n)) throw CodedError(info.Env(), "EZSTD", ZSTD_getErrorName(n));
  if (n != size) throw CodedError(info.Env(), "EZSTD", "frame shorter than its stated size");
  return out;
}

class Argon2Worker : public IoWorker {
 public:
  Argon2Worker(Napi::Env env, std::string pass, std::string salt, uint64_t ops, uint64_t mem)
      : IoWorker(env, "qvol.argon2id"),
        pass_(std::move(pass)),
        salt_(std::move(salt)),
        ops_(ops),
        mem_(mem) {}
  ~Argon2Worker() override {
    sodium_memzero(pass_.data(), pass_.size());
    sodium_memzero(key_, sizeof key_);
  }

 protected:
  void Run() override {
    if (crypto_pwhash(key_, sizeof key_, pass_.data(), pass_.size(),
                      reinterpret_cast<const unsigned char*>(salt_.data()), ops_, mem_,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
      Fail(-ENOMEM, "crypto_pwhash");
  }
  Napi::Value Result(Napi::Env env) override {
    return Napi::Buffer<uint8_t>::Copy(env, key_, sizeof key_);
  }

 private:
  std::string pass_, salt_;
  uint64_t ops_, mem_;
  unsigned char key_[32] = {};
};

Napi::Value Argon2id(const Napi::CallbackInfo& info) {
  auto pass = BufferArg(info, 0, "passphrase");
  auto salt = BufferArg(info, 1, "salt");
  if (salt.Length() != crypto_pwhash_SALTBYTES)
    throw Napi::RangeError::New(info.Env(), "Expected a 16-byte salt");
  uint64_t ops = RequireU64(info, 2, "opslimit");
  uint64_t mem = RequireU64(info, 3, "memlimit");
  if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > 16 || mem < (8u << 20) || mem > (4ull << 30))
    throw Napi::RangeError::New(info.Env(), "Argon2id limits out of range");
  auto* w =
      new Argon2Worker(info.Env(), std::string(reinterpret_cast<char*>(pass.Data()), pass.Length()),
                       std::string(reinterpret_cast<char*>(salt.Data()), salt.Length()), ops, mem);
  return w->Start();
}

}  // namespace

void InitCrypto(Napi::Env env, Napi::Object exports) {
  if (sodium_init() < 0) throw Napi::Error::New(env, "libsodium failed to initialise");
  exports.Set("seal", Napi::Function::New(env, Seal, "seal"));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("blake2b", Napi::Function::New(env, Blake2b, "blake2b"));
  exports.Set("randomBytes", Napi::Function::New(env, RandomBytes, "randomBytes"));
  exports.Set("zstdCompress", Napi::Function::New(env, ZstdCompress, "zstdCompress"));
  exports.Set("zstdDecompress", Napi::Function::New(env, ZstdDecompress, "zstdDecompress"));
  exports.Set("argon2id", Napi::Function::New(env, Argon2id, "argon2id"));
}

}  // namespace qvol
