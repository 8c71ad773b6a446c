#include "dm_ioctl.h"

#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <sodium.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "errors.h"

namespace qvol::sys {

namespace {

constexpr size_t kBufferSize = 16384;  // room for status replies, as libdevmapper starts with

// A buffer from libsodium's guarded allocator (the one the rest of the addon's secrets use):
// locked, left out of core dumps, between guard pages, and wiped when freed. It holds every
// ioctl argument, so the key's buffer is one too.
class LockedBuffer {
 public:
  explicit LockedBuffer(size_t size)
      : size_(size), data_(static_cast<char*>(sodium_malloc(size))) {}
  ~LockedBuffer() { sodium_free(data_); }
  LockedBuffer(const LockedBuffer&) = delete;
  LockedBuffer& operator=(const LockedBuffer&) = delete;
  char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  size_t size_;
  char* data_;
};

bool copy_name(char* dst, size_t cap, const char* src) {
  size_t n = strlen(src);
  if (n == 0 || n >= cap) return false;
  memcpy(dst, src, n + 1);
  return true;
}

// Fills the header for a call on `name` over a `buf` of its whole size.
int prepare(const LockedBuffer& buf, const char* name, dm_ioctl** out) {
  if (!buf.data()) return -ENOMEM;
  auto* io = reinterpret_cast<dm_ioctl*>(buf.data());
  memset(buf.data(), 0, buf.size());  // sodium_malloc fills with a canary, not zeros
  io->version[0] = DM_VERSION_MAJOR;
  io->version[1] = 0;
  io->version[2] = 0;
  io->data_size = static_cast<uint32_t>(buf.size());
  io->data_start = sizeof(dm_ioctl);
  if (name && !copy_name(io->name, sizeof(io->name), name)) return -ENAMETOOLONG;
  *out = io;
  return 0;
}

int control_ioctl(unsigned long request, dm_ioctl* io) {
  int fd = retry_eintr([] { return open("/dev/mapper/control", O_RDWR | O_CLOEXEC | O_NOFOLLOW); });
  if (fd < 0) return fd;
  int r = retry_eintr([&] { return ioctl(fd, request, io); });
  close(fd);
  return r < 0 ? r : 0;
}

void fill_info(const dm_ioctl* io, DmInfo* out) {
  out->dev = io->dev;
  out->open_count = io->open_count;
  out->target_count = io->target_count;
  out->suspended = (io->flags & DM_SUSPEND_FLAG) != 0;
  out->live_table = (io->flags & DM_ACTIVE_PRESENT_FLAG) != 0;
  out->inactive_table = (io->flags & DM_INACTIVE_PRESENT_FLAG) != 0;
}

// A call on `name` whose uevent carries `udev_flags` (resume, remove).
int evented_call(unsigned long request, const char* name, uint16_t udev_flags) {
  LockedBuffer buf(sizeof(dm_ioctl));
  dm_ioctl* io = nullptr;
  int r = prepare(buf, name, &io);
  if (r < 0) return r;
  io->event_nr = static_cast<uint32_t>(udev_flags) << 16;
  return control_ioctl(request, io);
}

char hex_digit(unsigned v) { return static_cast<char>(v < 10 ? '0' + v : 'a' + v - 10); }

}  // namespace

int dm_version(uint32_t out[3]) {
  LockedBuffer buf(sizeof(dm_ioctl));
  dm_ioctl* io = nullptr;
  int r = prepare(buf, nullptr, &io);
  if (r < 0) return r;
  r = control_ioctl(DM_VERSION, io);
  if (r < 0) return r;
  memcpy(out, io->version, sizeof(io->version));
  return 0;
}

int dm_create(const char* name, const char* uuid, uint64_t* dev) {
  LockedBuffer buf(sizeof(dm_ioctl));
  dm_ioctl* io = nullptr;
  int r = prepare(buf, name, &io);
  if (r < 0) return r;
  if (!copy_name(io->uuid, sizeof(io->uuid), uuid)) return -ENAMETOOLONG;
  r = control_ioctl(DM_DEV_CREATE, io);
  if (r < 0) return r;
  *dev = io->dev;
  return 0;
}

int dm_info(const char* name, DmInfo* out) {
  LockedBuffer buf(sizeof(dm_ioctl));
  dm_ioctl* io = nullptr;
  int r = prepare(buf, name, &io);
  if (r < 0) return r;
  r = control_ioctl(DM_DEV_STATUS, io);
  if (r < 0) return r;
  fill_info(io, out);
  return 0;
}

int dm_load_crypt(const char* name, uint64_t sectors, uint64_t backing_dev, bool discards) {
  LockedBuffer buf(kBufferSize);
  dm_ioctl* io = nullptr;
  int r = prepare(buf, name, &io);
  if (r < 0) return r;
  io->flags = DM_SECURE_DATA_FLAG;
  io->target_count = 1;
  auto* spec = reinterpret_cast<dm_target_spec*>(buf.data() + sizeof(dm_ioctl));
  spec->sector_start = 0;
  spec->length = sectors;
  strcpy(spec->target_type, "crypt");
  char* params = reinterpret_cast<char*>(spec + 1);
  // The key's 64 bytes sit at the buffer's end, inside the locked pages, until the wipe.
  unsigned char* key = reinterpret_cast<unsigned char*>(buf.data() + buf.size() - 64);
  randombytes_buf(key, 64);  // getrandom(2) underneath
  // `aes-xts-plain64 <key> <iv_offset> <dev> <offset> [<#opts> <opts>]`, the table that
  // `cryptsetup open --type plain --cipher aes-xts-plain64 --key-size 512` loads.
  char* p = params;
  p += sprintf(p, "aes-xts-plain64 ");
  for (int i = 0; i < 64; i++) {
    *p++ = hex_digit(key[i] >> 4);
    *p++ = hex_digit(key[i] & 15);
  }
  sodium_memzero(key, 64);
  p += sprintf(p, " 0 %u:%u 0", major(backing_dev), minor(backing_dev));
  if (discards) p += sprintf(p, " 1 allow_discards");
  *p++ = '\0';
  // The next spec (none) would start 8-byte aligned after the parameters.
  size_t used = static_cast<size_t>(p - reinterpret_cast<char*>(spec));
  spec->next = static_cast<uint32_t>((used + 7) & ~size_t{7});
  return control_ioctl(DM_TABLE_LOAD, io);  // the buffer, key and all, is wiped on return
}

int dm_is_plain_thin(uint64_t dev, bool* out) {
  LockedBuffer buf(kBufferSize);
  dm_ioctl* io = nullptr;
  int r = prepare(buf, nullptr, &io);
  if (r < 0) return r;
  io->dev = dev;  // no name or uuid: the kernel finds the device by number
  io->flags = DM_STATUS_TABLE_FLAG;
  r = control_ioctl(DM_TABLE_STATUS, io);
  if (r < 0) return r;
  *out = false;
  if ((io->flags & DM_BUFFER_FULL_FLAG) || io->target_count != 1) return 0;
  if (io->data_start + sizeof(dm_target_spec) >= io->data_size || io->data_size > buf.size())
    return -EPROTO;
  const auto* spec = reinterpret_cast<const dm_target_spec*>(buf.data() + io->data_start);
  if (strncmp(spec->target_type, "thin", sizeof(spec->target_type)) != 0) return 0;
  // `<pool major:minor> <device id>`; a third field is an external origin.
  const char* p = reinterpret_cast<const char*>(spec + 1);
  const char* end = buf.data() + io->data_size;
  int fields = 0;
  for (bool in_field = false; p < end && *p != '\0'; p++) {
    bool space = *p == ' ' || *p == '\t';
    if (!space && !in_field) fields++;
    in_field = !space;
  }
  *out = p < end && fields == 2;
  return 0;
}

int dm_resume(const char* name, uint16_t udev_flags) {
  return evented_call(DM_DEV_SUSPEND, name, udev_flags);
}

int dm_remove(const char* name, uint16_t udev_flags) {
  return evented_call(DM_DEV_REMOVE, name, udev_flags);
}

}  // namespace qvol::sys
