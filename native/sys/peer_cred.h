// Who is at the other end of a Unix socket: the kernel's record of the peer's process and
// credentials when it connected (SO_PEERCRED), which the peer cannot forge. The daemon
// admits a client by this, never by anything the client says.
#pragma once
#include <sys/types.h>

namespace qvol::sys {

struct PeerCred {
  pid_t pid;
  uid_t uid;
  gid_t gid;
};

// 0, or -errno (ENOTSOCK, ENOPROTOOPT for a socket that is not AF_UNIX...).
int peer_cred(int fd, PeerCred* out);

}  // namespace qvol::sys
