#include "aead.h"

#include <dlfcn.h>
#include <sodium.h>

#include <climits>
#include <cstring>
#include <mutex>

namespace qvol::sys {

namespace {

// The few EVP calls needed, looked up in the process (Node exports its OpenSSL's symbols;
// a Node linked against the system's libcrypto has them loaded too).
struct Evp {
  using Ctx = void;
  Ctx* (*ctx_new)();
  const void* (*chacha20_poly1305)();
  int (*cipher_init)(Ctx*, const void* cipher, void* engine, const unsigned char* key,
                     const unsigned char* iv, int enc);
  int (*cipher_update)(Ctx*, unsigned char* out, int* out_len, const unsigned char* in, int in_len);
  int (*cipher_final)(Ctx*, unsigned char* out, int* out_len);
  int (*ctx_ctrl)(Ctx*, int type, int arg, void* ptr);
};
constexpr int kCtrlGetTag = 0x10, kCtrlSetTag = 0x11;  // EVP_CTRL_AEAD_GET_TAG / SET_TAG

template <typename F>
bool Find(F*& f, const char* name) {
  f = reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
  return f != nullptr;
}

bool LoadEvp(Evp& e) {
  return Find(e.ctx_new, "EVP_CIPHER_CTX_new") &&
         Find(e.chacha20_poly1305, "EVP_chacha20_poly1305") &&
         Find(e.cipher_init, "EVP_CipherInit_ex") && Find(e.cipher_update, "EVP_CipherUpdate") &&
         Find(e.cipher_final, "EVP_CipherFinal_ex") && Find(e.ctx_ctrl, "EVP_CIPHER_CTX_ctrl") &&
         e.chacha20_poly1305() != nullptr;
}

Evp evp;
bool evp_ok = false;
std::once_flag probed;

// One context per thread for the thread's life: creating one costs more than sealing a small
// object. Never freed, so that no free can run after OpenSSL's own clean-up at exit.
struct Ctx {
  void* p = nullptr;
};
thread_local Ctx ctx;

// RFC 8439 ChaCha20-Poly1305 under the XChaCha20 subkey and nonce; `enc` 1 seals (writes the
// tag after the ciphertext), 0 opens (checks it). False on any EVP failure or a bad tag.
bool EvpRun(int enc, uint8_t* out, const uint8_t* in, size_t len, const uint8_t* ad, size_t ad_len,
            const uint8_t* nonce, const uint8_t* key, uint8_t* tag) {
  if (len > INT_MAX / 2 || ad_len > INT_MAX / 2) return false;
  if (ctx.p == nullptr && (ctx.p = evp.ctx_new()) == nullptr) return false;
  uint8_t subkey[32], iv[12] = {};
  crypto_core_hchacha20(subkey, nonce, key, nullptr);
  memcpy(iv + 4, nonce + 16, 8);
  int n = 0;
  bool ok = evp.cipher_init(ctx.p, evp.chacha20_poly1305(), nullptr, subkey, iv, enc) == 1;
  sodium_memzero(subkey, sizeof subkey);
  if (ok && ad_len > 0)
    ok = evp.cipher_update(ctx.p, nullptr, &n, ad, static_cast<int>(ad_len)) == 1;
  if (ok && len > 0) ok = evp.cipher_update(ctx.p, out, &n, in, static_cast<int>(len)) == 1;
  if (ok && enc == 0) ok = evp.ctx_ctrl(ctx.p, kCtrlSetTag, kAeadTag, tag) == 1;
  if (ok) ok = evp.cipher_final(ctx.p, out + len, &n) == 1;
  if (ok && enc == 1) ok = evp.ctx_ctrl(ctx.p, kCtrlGetTag, kAeadTag, tag) == 1;
  return ok;
}

void SodiumSeal(uint8_t* out, const uint8_t* plain, size_t len, const uint8_t* ad, size_t ad_len,
                const uint8_t* nonce, const uint8_t* key) {
  crypto_aead_xchacha20poly1305_ietf_encrypt(out, nullptr, plain, len, ad, ad_len, nullptr, nonce,
                                             key);
}

// OpenSSL is used only if it seals a few odd-sized vectors exactly as libsodium does, and
// opens them, and refuses one with a flipped byte.
bool SelfTest() {
  uint8_t key[kAeadKey], nonce[kAeadNonce], ad[40], plain[1031];
  randombytes_buf(key, sizeof key);
  randombytes_buf(nonce, sizeof nonce);
  randombytes_buf(ad, sizeof ad);
  randombytes_buf(plain, sizeof plain);
  for (size_t len : {size_t{0}, size_t{1}, size_t{64}, size_t{1031}}) {
    uint8_t want[sizeof plain + kAeadTag], got[sizeof plain + kAeadTag], back[sizeof plain + 1];
    SodiumSeal(want, plain, len, ad, sizeof ad, nonce, key);
    if (!EvpRun(1, got, plain, len, ad, sizeof ad, nonce, key, got + len)) return false;
    if (memcmp(want, got, len + kAeadTag) != 0) return false;
    if (!EvpRun(0, back, want, len, ad, sizeof ad, nonce, key, want + len)) return false;
    if (memcmp(back, plain, len) != 0) return false;
    want[len] ^= 1;  // the tag
    if (EvpRun(0, back, want, len, ad, sizeof ad, nonce, key, want + len)) return false;
  }
  return true;
}

}  // namespace

AeadImpl aead_impl(uint32_t disable) {
  std::call_once(probed, [] { evp_ok = LoadEvp(evp) && SelfTest(); });
  return evp_ok && (disable & kCapOpensslAead) == 0 ? AeadImpl::kOpenSsl : AeadImpl::kLibsodium;
}

const char* aead_name(AeadImpl impl) {
  return impl == AeadImpl::kOpenSsl ? "openssl" : "libsodium";
}

void aead_seal(AeadImpl impl, uint8_t* out, const uint8_t* plain, size_t len, const uint8_t* ad,
               size_t ad_len, const uint8_t* nonce, const uint8_t* key) {
  if (impl == AeadImpl::kOpenSsl && EvpRun(1, out, plain, len, ad, ad_len, nonce, key, out + len))
    return;
  SodiumSeal(out, plain, len, ad, ad_len, nonce, key);
}

bool aead_open(AeadImpl impl, uint8_t* out, const uint8_t* sealed, size_t len, const uint8_t* ad,
               size_t ad_len, const uint8_t* nonce, const uint8_t* key) {
  if (len < kAeadTag) return false;
  size_t plain_len = len - kAeadTag;
  bool ok;
  if (impl == AeadImpl::kOpenSsl && plain_len <= INT_MAX / 2) {
    uint8_t tag[kAeadTag];
    memcpy(tag, sealed + plain_len, kAeadTag);
    ok = EvpRun(0, out, sealed, plain_len, ad, ad_len, nonce, key, tag);
  } else {
    ok = crypto_aead_xchacha20poly1305_ietf_decrypt(out, nullptr, nullptr, sealed, len, ad, ad_len,
                                                    nonce, key) == 0;
  }
  if (!ok) sodium_memzero(out, plain_len);
  return ok;
}

}  // namespace qvol::sys
