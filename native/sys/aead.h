// XChaCha20-Poly1305 (IETF), the archive's AEAD (docs/archive-format.md §2), from the fastest
// well-kept implementation the process has. The construction is libsodium's: the HChaCha20
// subkey of the key and the nonce's first 16 bytes, then RFC 8439 ChaCha20-Poly1305 with
// 4 zero bytes and the nonce's last 8 as its nonce. libsodium does all of it; the Node
// process also carries OpenSSL, whose RFC 8439 code uses AVX-512 and runs about 4x faster
// here (3.0 GB/s against 0.7). OpenSSL is found at run time (dlsym: no link against it, so a
// Node without it only loses speed) and used only once a self-test agrees with libsodium
// byte for byte. Both give the same bytes, so archives do not depend on which was used.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qvol::sys {

constexpr size_t kAeadKey = 32, kAeadNonce = 24, kAeadTag = 16;

enum class AeadImpl : uint8_t { kLibsodium, kOpenSsl };

// CapBit (copy_job.h, fd_stream.h) that forces libsodium, to test both and to compare them.
constexpr uint32_t kCapOpensslAead = 1u << 12;

// The implementation calls use under `disable` (a CapBit mask): OpenSSL when present and
// self-tested, else libsodium. The probe runs once per process.
AeadImpl aead_impl(uint32_t disable);
const char* aead_name(AeadImpl impl);

// out: len bytes of ciphertext then the 16-byte tag.
void aead_seal(AeadImpl impl, uint8_t* out, const uint8_t* plain, size_t len, const uint8_t* ad,
               size_t ad_len, const uint8_t* nonce, const uint8_t* key);

// sealed: ciphertext then tag (len >= 16). Writes len - 16 bytes to out; false (out zeroed)
// when the tag does not authenticate.
bool aead_open(AeadImpl impl, uint8_t* out, const uint8_t* sealed, size_t len, const uint8_t* ad,
               size_t ad_len, const uint8_t* nonce, const uint8_t* key);

}  // namespace qvol::sys
