#include "peer_cred.h"

#include <sys/socket.h>

#include <cerrno>

namespace qvol::sys {

int peer_cred(int fd, PeerCred* out) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
  if (len != sizeof cred) return -EPROTO;
  out->pid = cred.pid;
  out->uid = cred.uid;
  out->gid = cred.gid;
  return 0;
}

}  // namespace qvol::sys
