import { readFile, unlink } from 'node:fs/promises';
import { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import type { CliIo } from '../output.js';

/** A group name or number to its id, from /etc/group (Node has no getgrnam). */
async function groupId(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new UsageError(`No group ${group} in /etc/group.`, { path: group });
}

/** systemd's socket activation: the listening socket is fd 3 when LISTEN_PID is ours. */
function activatedFd(): number | undefined {
  if (process.env.LISTEN_PID !== String(process.pid)) return undefined;
  return Number(process.env.LISTEN_FDS ?? '0') >= 1 ? 3 : undefined;
}

export function daemonCommand(io: CliIo): Command {
  return new Command('daemon')
    .summary('serve the pool drivers to qubesd over a Unix socket')
    .description(`Serves qvol's pool drivers over a Unix stream socket, for the qubesd bridge
(integrations/qubes) or any program that speaks the protocol in docs/daemon-protocol.md:
one JSON request per line, carrying the pool's and the volume's config, one JSON reply per
line. The daemon keeps no registry of its own: in Qubes, qubes.xml is the registry.

Only root may connect (checked with the kernel's SO_PEERCRED), and with --group the members
of that group. Calls run concurrently; a volume's operations run one at a time. SIGTERM or
SIGINT stops it: calls in flight are cancelled and the storage is left as after a crash,
which the next start or stop repairs. Under systemd, socket activation is used when
LISTEN_FDS is set (contrib/qvol-daemon.socket).

Example:
  qvol daemon --socket /run/qvol/daemon.sock`)
    .option('--socket <path>', 'the socket to listen on (made mode 0600, 0660 with --group)')
    .option('--group <group>', 'also admit members of this group (name or number)')
    .action(async (flags: { socket?: string; group?: string }) => {
      const { startDaemon } = await import('../../daemon/server.js');
      const { inProcessKeyUnloadTimer } = await import('../../drivers/zfs/key-unload.js');
      const listenFd = activatedFd();
      const daemon = await startDaemon({
        ...(listenFd !== undefined ? { listenFd } : flags.socket !== undefined ? { socketPath: flags.socket } : {}),
        ...(flags.group !== undefined ? { group: await groupId(flags.group) } : {}),
        context: { keyUnload: inProcessKeyUnloadTimer() },
        log: (line) => io.stderr.write(`qvol daemon: ${line}\n`),
      });
      io.stderr.write(`qvol daemon: listening on ${listenFd !== undefined ? 'the socket from systemd' : flags.socket}\n`);
      await new Promise<void>((resolve) => {
        if (!io.signal) return;
        if (io.signal.aborted) resolve();
        else io.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await daemon.close();
      if (flags.socket !== undefined && listenFd === undefined) await unlink(flags.socket).catch(() => undefined);
    });
}
