// Name operations made durable in one call: the operation, then an fsync of each directory
// it changed, all on the calling thread. On btrfs that is not only shorter: a rename logs
// the new name under the renaming thread, and an fsync of the directory from another thread
// marks the log as shared by several tasks, which makes btrfs wait a scheduler tick (4 to
// 10 ms) for more fsyncs to batch (btrfs_sync_log, BTRFS_ROOT_MULTI_LOG_TASKS). Issued from
// one thread, the directory fsync costs what the log write costs, about 0.5 ms.
#pragma once
#include <sys/types.h>

namespace qvol::sys {

// fsync of the directory that holds `path`. Returns 0 or -errno.
int fsync_parent(const char* path);

// Each returns 0 or -errno; *failed_call names the call that failed.
int durable_rename(const char* from, const char* to, const char** failed_call);
int durable_unlink(const char* path, const char** failed_call);
int durable_link(const char* from, const char* to, const char** failed_call);
int durable_mkdir(const char* path, mode_t mode, const char** failed_call);
int durable_rmdir(const char* path, const char** failed_call);

}  // namespace qvol::sys
