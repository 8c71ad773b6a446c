// The /dev/mapper/<name> node of a mapping qvol made. The mapping's events tell udev's
// rules to stay away (dm_ioctl.h), so no rule makes the node: qvol does, as libdevmapper
// does where udev does not run, and removes it with the mapping. Both work by name in the
// directory's descriptor, and replace or remove only a block device or a symbolic link
// (what udev or libdevmapper leave there), never another kind of file.
#pragma once
#include <cstdint>

namespace qvol::sys {

// Makes /dev/mapper/<name> a block device node (0600) for `dev`; an old node or link of
// that name is replaced.
int dm_node_make(const char* name, uint64_t dev);
// Removes /dev/mapper/<name> if it is a block device or a link; 1 if it did, 0 if none.
int dm_node_remove(const char* name);

}  // namespace qvol::sys
