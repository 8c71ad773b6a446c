#include "dm_node.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "errors.h"

namespace qvol::sys {

namespace {

int open_mapper_dir() {
  return retry_eintr(
      [] { return open("/dev/mapper", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW); });
}

bool valid_name(const char* name) {
  return name[0] != '\0' && strchr(name, '/') == nullptr && strcmp(name, ".") != 0 &&
         strcmp(name, "..") != 0 && strcmp(name, "control") != 0;
}

// 1 if removed, 0 if absent, -EEXIST if the name is something qvol must not remove.
int remove_at(int dir, const char* name) {
  struct stat st {};
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISBLK(st.st_mode) && !S_ISLNK(st.st_mode)) return -EEXIST;
  if (unlinkat(dir, name, 0) < 0) return errno == ENOENT ? 0 : -errno;
  return 1;
}

}  // namespace

int dm_node_make(const char* name, uint64_t dev) {
  if (!valid_name(name)) return -EINVAL;
  int dir = open_mapper_dir();
  if (dir < 0) return dir;
  // The mode only narrows under a umask, and root opens the node either way.
  int r = -EEXIST;
  for (int attempt = 0; attempt < 3 && r == -EEXIST; attempt++) {
    r = mknodat(dir, name, S_IFBLK | 0600, static_cast<dev_t>(dev)) < 0 ? -errno : 0;
    if (r != -EEXIST) break;
    struct stat st {};
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISBLK(st.st_mode) &&
        st.st_rdev == dev) {
      r = 0;  // already the node (made by a start that died after it)
      break;
    }
    int removed = remove_at(dir, name);
    if (removed < 0) r = removed;
  }
  close(dir);
  return r;
}

int dm_node_remove(const char* name) {
  if (!valid_name(name)) return -EINVAL;
  int dir = open_mapper_dir();
  if (dir < 0) return dir == -ENOENT ? 0 : dir;
  int r = remove_at(dir, name);
  close(dir);
  return r;
}

}  // namespace qvol::sys
