// sealBlob and openBlob: one chunk or page of the archive (docs/archive-format.md §5) on a
// pool thread, so that hashing, compressing and encrypting run on every core while the
// main thread reads the next chunk and writes packs.
//   sealBlob(data, {type, idKey, dataKey, level, known?}) -> {id, blob?}
//     id = keyed BLAKE2b-256 of data; when `known` (64-byte references sorted
//     by their leading 32-byte ids, docs/archive-format.md §6) holds it, no blob;
//     else blob = header || nonce || XChaCha20-Poly1305(codec byte || payload), associated
//     data header || id, payload zstd at `level` when that is smaller (level 0: stored).
//   sealChunk(fd, offset, length, {...as sealBlob}) -> {zero: true} | {id, blob?}: the chunk
//     read (pread) and checked for zeros on the pool thread too.
//   Both take `knownFile: {fd, fanout, base}` too: an index file searched with pread
//   (native/sys/sorted_refs.h) besides or instead of the `known` buffer.
//   openBlob(blob, {type, id, idKey, dataKey, maxPlain, inPlace?}) -> data, after the tag, the
//     codec, the size bound and the id are checked; else an Error coded EAUTH, EFORMAT or EID.
//     inPlace: `blob` is decrypted where it lies (the caller gives it up), and a stored
//     payload comes back as a view of it. checkId false: the id is not hashed again; the tag,
//     whose associated data holds the id, already binds the blob to it (docs/archive-format.md
//     §5), so only a holder of the key could have sealed content that does not hash to its id.
#include <napi.h>
#include <sodium.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "sys/aead.h"
#include "sys/errors.h"
#include "sys/sorted_refs.h"
#include "sys/zero.h"

namespace qvol {

namespace {

constexpr size_t kHeader = 8, kNonce = 24, kTag = 16, kId = 32, kKey = 32, kRef = 64;

void WriteHeader(uint8_t* h, uint8_t type) {
  memcpy(h, "QVOL", 4);
  h[4] = 1;
  h[5] = type;
  h[6] = h[7] = 0;
}

// One compression and one decompression context per pool thread, kept for the thread's
// life: ZSTD_compress() would allocate and clear a fresh context (its tables) per chunk.
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(),
                                                                      ZSTD_freeCCtx);
  return ctx.get();
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(),
                                                                      ZSTD_freeDCtx);
  return ctx.get();
}

// Hands a worker's result to JavaScript without copying it: the Buffer owns the memory
// (never zeroed: the worker wrote it whole) and frees it when collected. (Copying stored
// chunks on the main thread cost it a tenth of its time.) V8 is told the size, so that a
// send's megabyte chunks count towards its next collection rather than pile up.
Napi::Buffer<uint8_t> Adopt(Napi::Env env, std::unique_ptr<uint8_t[]>&& bytes, size_t size) {
  uint8_t* data = bytes.release();
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(size));
  return Napi::Buffer<uint8_t>::New(env, data, size, [size](Napi::Env e, uint8_t* p) {
    delete[] p;
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(size));
  });
}

Napi::Buffer<uint8_t> BufferProp(Napi::Object o, const char* name, size_t exact = 0) {
  Napi::Value v = o.Get(name);
  if (!v.IsBuffer())
    throw Napi::TypeError::New(o.Env(), std::string("Expected a Buffer for ") + name);
  auto b = v.As<Napi::Buffer<uint8_t>>();
  if (exact != 0 && b.Length() != exact)
    throw Napi::RangeError::New(o.Env(), std::string("Wrong length for ") + name);
  return b;
}

// {fd, fanout, base}: an index file (native/sys/sorted_refs.h); `fanout` stays referenced by
// the caller's worker while in use.
sys::SortedRefsFile KnownFileProp(Napi::Value v, Napi::ObjectReference& keep) {
  Napi::Object o = v.As<Napi::Object>();
  sys::SortedRefsFile f;
  f.fd = static_cast<int>(U64Property(o, "fd", 0));
  f.base = U64Property(o, "base", 0);
  auto fanout = BufferProp(o, "fanout", sys::kFanout * 4);
  keep = Napi::Persistent(fanout.As<Napi::Object>());
  f.fanout = reinterpret_cast<const uint32_t*>(fanout.Data());
  return f;
}

uint8_t TypeProp(Napi::Object o) {
  uint64_t t = U64Property(o, "type", 0);
  if (t != 7 && t != 8) throw Napi::RangeError::New(o.Env(), "Expected type 7 (chunk) or 8 (page)");
  return static_cast<uint8_t>(t);
}

// Settles a Promise with a coded Error ('EAUTH', ...) or the result of Run().
class BlobWorker : public Napi::AsyncWorker {
 public:
  explicit BlobWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "qvol.blob"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Start() {
    Queue();
    return deferred_.Promise();
  }

 protected:
  void Refuse(const char* code, const char* message) {
    code_ = code;
    SetError(message);
  }
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  void OnOK() override { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = Napi::Error::New(Env(), e.Message());
    err.Set("code", code_);
    deferred_.Reject(err.Value());
  }
  Napi::Promise::Deferred deferred_;
  const char* code_ = "EFORMAT";
};

class SealWorker : public BlobWorker {
 public:
  SealWorker(Napi::Env env, Napi::Buffer<uint8_t> data, Napi::Object opts) : SealWorker(env, opts) {
    data_ref_ = Napi::Persistent(data.As<Napi::Object>());
    data_ = data.Data();
    len_ = data.Length();
  }
  // A chunk read by the worker itself from `fd` at `offset`: no JavaScript buffer, no hop.
  SealWorker(Napi::Env env, int fd, uint64_t offset, size_t length, Napi::Object opts)
      : SealWorker(env, opts) {
    fd_ = fd;
    offset_ = offset;
    len_ = length;
  }
  SealWorker(Napi::Env env, Napi::Object opts)
      : BlobWorker(env),
        type_(TypeProp(opts)),
        level_(static_cast<int>(U64Property(opts, "level", 0))),
        aead_(sys::aead_impl(static_cast<uint32_t>(U64Property(opts, "disable", 0)))) {
    memcpy(id_key_, BufferProp(opts, "idKey", kKey).Data(), kKey);
    memcpy(data_key_, BufferProp(opts, "dataKey", kKey).Data(), kKey);
    if (opts.Get("known").IsBuffer()) {
      auto k = opts.Get("known").As<Napi::Buffer<uint8_t>>();
      if (k.Length() % kRef != 0) throw Napi::RangeError::New(env, "known: a multiple of 64 bytes");
      known_ref_ = Napi::Persistent(k.As<Napi::Object>());
      known_ = k.Data();
      known_count_ = k.Length() / kRef;
    }
    if (opts.Get("knownFile").IsObject())
      known_file_ = KnownFileProp(opts.Get("knownFile"), fanout_ref_);
  }
  ~SealWorker() override {
    sodium_memzero(id_key_, kKey);
    sodium_memzero(data_key_, kKey);
  }

 protected:
  void Execute() override {
    if (fd_ >= 0) {
      owned_.reset(new uint8_t[len_]);  // read whole below, or refused
      for (size_t got = 0; got < len_;) {
        ssize_t n = sys::retry_eintr([&] {
          return pread(fd_, owned_.get() + got, len_ - got, static_cast<off_t>(offset_ + got));
        });
        if (n < 0) return Refuse("EIO", strerror(static_cast<int>(-n)));
        if (n == 0) return Refuse("ESHORT", "the volume ended before its size");
        got += static_cast<size_t>(n);
      }
      data_ = owned_.get();
      if (sys::is_zero(data_, len_)) {
        zero_ = true;
        return;
      }
    }
    crypto_generichash(id_, kId, data_, len_, id_key_, kKey);
    if (known_count_ > 0) {
      size_t lo = 0, hi = known_count_;
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(known_ + mid * kRef, id_, kId);
        if (c == 0) {
          known_hit_ = true;
          return;
        }
        if (c < 0)
          lo = mid + 1;
        else
          hi = mid;
      }
    }
    if (known_file_.fd >= 0) {
      uint8_t ref[kRef];
      uint64_t at;
      int found = sys::sorted_refs_find(known_file_, id_, ref, &at);
      if (found < 0) return Refuse("EIO", "the local index could not be read");
      if (found == 1) {
        known_hit_ = true;
        return;
      }
    }
    // The payload is compressed (or copied) straight into the blob, where it is then
    // sealed in place: no buffer zeroed, no plaintext copy.
    size_t room = std::max(len_, level_ > 0 ? ZSTD_compressBound(len_) : len_);
    blob_.reset(new uint8_t[kHeader + kNonce + 1 + room + kTag]);
    uint8_t* plain = blob_.get() + kHeader + kNonce;
    size_t n = 0;
    if (level_ > 0) {
      ZSTD_CCtx* cctx = ThreadCCtx();
      if (cctx == nullptr) return Refuse("EZSTD", "no memory for a zstd context");
      n = ZSTD_compressCCtx(cctx, plain + 1, room, data_, len_, level_);
      if (ZSTD_isError(n)) return Refuse("EZSTD", ZSTD_getErrorName(n));
    }
    if (level_ > 0 && n < len_) {
      plain[0] = 1;
    } else {
      plain[0] = 0;
      memcpy(plain + 1, data_, len_);
      n = len_;
    }
    blob_size_ = kHeader + kNonce + 1 + n + kTag;
    WriteHeader(blob_.get(), type_);
    uint8_t ad[kHeader + kId];
    memcpy(ad, blob_.get(), kHeader);
    memcpy(ad + kHeader, id_, kId);
    randombytes_buf(blob_.get() + kHeader, kNonce);
    sys::aead_seal(aead_, plain, plain, 1 + n, ad, sizeof ad, blob_.get() + kHeader, data_key_);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    if (zero_) {
      o.Set("zero", true);
      return o;
    }
    o.Set("id", Napi::Buffer<uint8_t>::Copy(env, id_, kId));
    if (!known_hit_) o.Set("blob", Adopt(env, std::move(blob_), blob_size_));
    return o;
  }

 private:
  Napi::ObjectReference data_ref_, known_ref_, fanout_ref_;
  const uint8_t* data_ = nullptr;
  size_t len_ = 0;
  int fd_ = -1;
  uint64_t offset_ = 0;
  std::unique_ptr<uint8_t[]> owned_;
  bool zero_ = false;
  uint8_t type_;
  int level_;
  sys::AeadImpl aead_;
  uint8_t id_key_[kKey], data_key_[kKey], id_[kId] = {};
  const uint8_t* known_ = nullptr;
  size_t known_count_ = 0;
  sys::SortedRefsFile known_file_;
  bool known_hit_ = false;
  std::unique_ptr<uint8_t[]> blob_;
  size_t blob_size_ = 0;
};

class OpenWorker : public BlobWorker {
 public:
  OpenWorker(Napi::Env env, Napi::Buffer<uint8_t> blob, Napi::Object opts)
      : BlobWorker(env),
        blob_ref_(Napi::Persistent(blob.As<Napi::Object>())),
        blob_(blob.Data()),
        len_(blob.Length()),
        type_(TypeProp(opts)),
        max_(U64Property(opts, "maxPlain", 0)),
        in_place_(opts.Get("inPlace").ToBoolean().Value()),
        check_id_(!opts.Has("checkId") || opts.Get("checkId").ToBoolean().Value()),
        aead_(sys::aead_impl(static_cast<uint32_t>(U64Property(opts, "disable", 0)))) {
    memcpy(id_, BufferProp(opts, "id", kId).Data(), kId);
    memcpy(id_key_, BufferProp(opts, "idKey", kKey).Data(), kKey);
    memcpy(data_key_, BufferProp(opts, "dataKey", kKey).Data(), kKey);
  }
  ~OpenWorker() override {
    sodium_memzero(id_key_, kKey);
    sodium_memzero(data_key_, kKey);
  }

 protected:
  void Execute() override {
    uint8_t h[kHeader];
    WriteHeader(h, type_);
    if (len_ < kHeader + kNonce + kTag + 1) return Refuse("EFORMAT", "too short");
    if (memcmp(blob_, h, kHeader) != 0) return Refuse("EFORMAT", "not a blob of this type");
    if (len_ - kHeader - kNonce - kTag > max_ + 1024 + 1)
      return Refuse("EFORMAT", "larger than allowed");
    uint8_t ad[kHeader + kId];
    memcpy(ad, h, kHeader);
    memcpy(ad + kHeader, id_, kId);
    size_t plen = len_ - kHeader - kNonce - kTag;
    // In place, the sealed bytes become the codec byte and payload (a stored chunk is then
    // handed back as a view of the caller's buffer: no allocation, no copy).
    std::unique_ptr<uint8_t[]> owned;
    uint8_t* plain = blob_ + kHeader + kNonce;
    if (!in_place_) {
      owned.reset(new uint8_t[plen]);
      plain = owned.get();
    }
    if (!sys::aead_open(aead_, plain, blob_ + kHeader + kNonce, len_ - kHeader - kNonce, ad,
                        sizeof ad, blob_ + kHeader, data_key_))
      return Refuse("EAUTH", "authentication failed");
    const uint8_t* data;
    if (plain[0] == 0) {
      if (plen - 1 > max_) return Refuse("EFORMAT", "larger than allowed");
      if (in_place_) {
        view_ = true;
      } else {
        out_.reset(new uint8_t[plen - 1]);
        memcpy(out_.get(), plain + 1, plen - 1);
      }
      data = plain + 1;
      size_ = plen - 1;
    } else if (plain[0] == 1) {
      unsigned long long size = ZSTD_getFrameContentSize(plain + 1, plen - 1);
      if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > max_)
        return Refuse("EFORMAT", "a zstd frame without a size within bounds");
      out_.reset(new uint8_t[size]);
      ZSTD_DCtx* dctx = ThreadDCtx();
      if (dctx == nullptr) return Refuse("EZSTD", "no memory for a zstd context");
      size_t n = ZSTD_decompressDCtx(dctx, out_.get(), size, plain + 1, plen - 1);
      if (ZSTD_isError(n) || n != size)
        return Refuse("EFORMAT", "a zstd frame that does not decompress");
      data = out_.get();
      size_ = size;
    } else {
      return Refuse("EFORMAT", "an unknown codec");
    }
    if (!check_id_) return;
    uint8_t got[kId];
    crypto_generichash(got, kId, data, size_, id_key_, kKey);
    if (sodium_memcmp(got, id_, kId) != 0) return Refuse("EID", "content does not hash to its id");
  }

  Napi::Value Result(Napi::Env env) override {
    if (!view_) return Adopt(env, std::move(out_), size_);
    Napi::Object blob = blob_ref_.Value();
    size_t at = kHeader + kNonce + 1;
    return blob.Get("subarray")
        .As<Napi::Function>()
        .Call(blob, {Napi::Number::New(env, static_cast<double>(at)),
                     Napi::Number::New(env, static_cast<double>(at + size_))});
  }

 private:
  Napi::ObjectReference blob_ref_;
  uint8_t* blob_;
  size_t len_;
  uint8_t type_;
  uint64_t max_;
  bool in_place_, check_id_;
  sys::AeadImpl aead_;
  uint8_t id_[kId], id_key_[kKey], data_key_[kKey];
  std::unique_ptr<uint8_t[]> out_;
  size_t size_ = 0;
  bool view_ = false;
};

Napi::Value SealBlob(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer() || !info[1].IsObject())
    throw Napi::TypeError::New(info.Env(), "Expected (Buffer, options)");
  auto* w =
      new SealWorker(info.Env(), info[0].As<Napi::Buffer<uint8_t>>(), info[1].As<Napi::Object>());
  return w->Start();
}

Napi::Value SealChunk(const Napi::CallbackInfo& info) {
  if (!info[3].IsObject())
    throw Napi::TypeError::New(info.Env(), "Expected (fd, offset, length, options)");
  int fd = static_cast<int>(RequireU64(info, 0, "fd"));
  uint64_t offset = RequireU64(info, 1, "offset");
  uint64_t length = RequireU64(info, 2, "length");
  if (length == 0 || length > (64u << 20))
    throw Napi::RangeError::New(info.Env(), "Expected a chunk of 1 byte to 64 MiB");
  auto* w = new SealWorker(info.Env(), fd, offset, length, info[3].As<Napi::Object>());
  return w->Start();
}

// Sorts 64-byte references in place by their ids and keeps one of each id at the front (any
// place a blob is stored is as good as another); returns how many that is. An archive's
// index as one buffer: 64 bytes a blob, no object per blob, sorted in a second for millions.
Napi::Value SortRefsSync(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(info.Env(), "Expected a Buffer");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  if (buf.Length() % kRef != 0)
    throw Napi::RangeError::New(info.Env(), "Expected 64-byte references");
  struct Ref {
    uint8_t b[kRef];
  };
  static_assert(sizeof(Ref) == kRef);
  Ref* first = reinterpret_cast<Ref*>(buf.Data());
  Ref* last = first + buf.Length() / kRef;
  auto by_id = [](const Ref& a, const Ref& b) { return memcmp(a.b, b.b, kId) < 0; };
  std::sort(first, last, by_id);
  Ref* end = std::unique(first, last,
                         [](const Ref& a, const Ref& b) { return memcmp(a.b, b.b, kId) == 0; });
  return Napi::Number::New(info.Env(), static_cast<double>(end - first));
}

// findRefSync({fd, fanout, base}, id) -> {ref: the 64-byte reference, at: its position}, or
// undefined: a lookup in an index file on the main thread (one pread of page-cached bytes).
Napi::Value FindRefSync(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject() || !info[1].IsBuffer())
    throw Napi::TypeError::New(info.Env(), "Expected ({fd, fanout, base}, id)");
  Napi::ObjectReference keep;
  sys::SortedRefsFile file = KnownFileProp(info[0], keep);
  auto id = info[1].As<Napi::Buffer<uint8_t>>();
  if (id.Length() != kId) throw Napi::RangeError::New(info.Env(), "Expected a 32-byte id");
  uint8_t ref[kRef];
  uint64_t at = 0;
  int found = sys::sorted_refs_find(file, id.Data(), ref, &at);
  if (found < 0) throw MakeSystemError(info.Env(), found, "pread", "local index");
  if (found == 0) return info.Env().Undefined();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("ref", Napi::Buffer<uint8_t>::Copy(info.Env(), ref, kRef));
  o.Set("at", Napi::Number::New(info.Env(), static_cast<double>(at)));
  return o;
}

Napi::Value OpenBlob(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer() || !info[1].IsObject())
    throw Napi::TypeError::New(info.Env(), "Expected (Buffer, options)");
  auto* w =
      new OpenWorker(info.Env(), info[0].As<Napi::Buffer<uint8_t>>(), info[1].As<Napi::Object>());
  return w->Start();
}

}  // namespace

void InitBlob(Napi::Env env, Napi::Object exports) {
  exports.Set("sealBlob", Napi::Function::New(env, SealBlob, "sealBlob"));
  exports.Set("sealChunk", Napi::Function::New(env, SealChunk, "sealChunk"));
  exports.Set("sortRefsSync", Napi::Function::New(env, SortRefsSync, "sortRefsSync"));
  exports.Set("openBlob", Napi::Function::New(env, OpenBlob, "openBlob"));
  exports.Set("findRefSync", Napi::Function::New(env, FindRefSync, "findRefSync"));
}

}  // namespace qvol
