/**
 * `qvol daemon`: the driver layer served over a Unix stream socket (docs/daemon-protocol.md)
 * to qubesd's bridge. Only root, or members of one configured group, may connect: the kernel's
 * record of the peer (SO_PEERCRED) decides, never anything the client says. Calls on a
 * connection run at once, replies go back as each ends (matched by id); a volume's own
 * operations queue behind its lock in the driver layer. A bad request gets an error reply
 * and the daemon goes on; a client that stops reading is dropped, not waited for; a client
 * that goes away cancels its calls in flight.
 */
import { chown, lstat, readFile, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { QvolError, UsageError } from '../errors/index.js';
import type { DriverContext } from '../model/driver-context.js';
import { native } from '../native/binding.js';
import { callMethod } from './methods.js';
import { errorReply, MAX_REQUEST_BYTES, parseRequest, ProtocolError, resultReply, type Reply, type RequestId } from './protocol.js';
import { DriverSession } from './session.js';

/** Replies a client has not read past this are its problem: it is dropped. */
const MAX_UNREAD_REPLY_BYTES = 16 << 20;

export interface DaemonOptions {
  /** The socket to make (mode 0600, or 0660 with `group`); or use `listenFd`. */
  socketPath?: string;
  /** A listening socket handed over by systemd (LISTEN_FDS). */
  listenFd?: number;
  /** Besides root, the members of this group id may connect. */
  group?: number;
  context?: DriverContext;
  /** Told of each connection refused, and of replies that could not be sent (a log). */
  log?: (line: string) => void;
}

export interface Daemon {
  server: Server;
  /** Stops listening, cancels the calls in flight and waits for them to end. */
  close(): Promise<void>;
}

/** Qubes' name for a caller that may not call (qubes.api.PermissionDenied). */
class PermissionDenied extends QvolError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** Whether the peer is root or in `group` (its primary group or a supplementary one). */
async function admitted(socket: Socket, group: number | undefined): Promise<{ ok: boolean; who: string }> {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return { ok: false, who: 'a peer with no descriptor' };
  const peer = native.peerCredSync(fd);
  const who = `pid ${peer.pid} uid ${peer.uid}`;
  if (peer.uid === 0) return { ok: true, who };
  if (group === undefined) return { ok: false, who };
  if (peer.gid === group) return { ok: true, who };
  const status = await readFile(`/proc/${peer.pid}/status`, 'utf8').catch(() => '');
  const groups = /^Groups:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
  return { ok: groups.includes(group), who };
}

/** Removes a socket a daemon before us left, never anything else, never a live one. */
async function clearStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new UsageError(`${path} exists and is not a socket: qvol daemon will not replace it.`, { path });
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new UsageError(`A daemon already listens on ${path}.`, { path });
  await unlink(path);
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const session = new DriverSession(options.context);
  const log = options.log ?? (() => undefined);
  const calls = new Set<AbortController>();
  const running = new Set<Promise<void>>();
  const sockets = new Set<Socket>();

  const server = createServer({ allowHalfOpen: false }, (socket) => {
    void serveConnection(socket);
  });

  async function serveConnection(socket: Socket): Promise<void> {
    socket.pause();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let access: { ok: boolean; who: string };
    try {
      access = await admitted(socket, options.group);
    } catch (err) {
      access = { ok: false, who: `an unknown peer (${String(err)})` };
    }
    if (!access.ok) {
      log(`refused ${access.who}: only root${options.group !== undefined ? ` and group ${options.group}` : ''} may connect`);
      socket.end(`${JSON.stringify(errorReply(null, new PermissionDenied('Only root may use the qvol daemon.')))}\n`);
      return;
    }
    const inFlight = new Map<RequestId, AbortController>();
    let buffered = '';
    const send = (reply: Reply) => {
      if (socket.destroyed) return;
      socket.write(`${JSON.stringify(reply)}\n`);
      if (socket.writableLength > MAX_UNREAD_REPLY_BYTES) {
        log(`dropped ${access.who}: it stopped reading its replies`);
        socket.destroy();
      }
    };
    const handle = (line: string) => {
      let request;
      try {
        request = parseRequest(line);
      } catch (err) {
        send(errorReply(err instanceof ProtocolError ? err.requestId : null, err));
        return;
      }
      const { id, method, params } = request;
      if (method === 'cancel') {
        inFlight.get(params.id as RequestId)?.abort();
        send(resultReply(id, null));
        return;
      }
      if (inFlight.has(id)) {
        send(errorReply(id, new ProtocolError(`A call with id ${JSON.stringify(id)} is already running on this connection.`, id)));
        return;
      }
      const controller = new AbortController();
      inFlight.set(id, controller);
      calls.add(controller);
      const done = callMethod(method, { session, params, signal: controller.signal })
        .then((result) => send(resultReply(id, result)), (err: unknown) => send(errorReply(id, err)))
        .finally(() => {
          inFlight.delete(id);
          calls.delete(controller);
          running.delete(done);
        });
      running.add(done);
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() !== '') handle(line);
      }
      if (Buffer.byteLength(buffered) > MAX_REQUEST_BYTES) {
        send(errorReply(null, new ProtocolError(`A request is longer than ${MAX_REQUEST_BYTES} bytes: the connection is closed.`)));
        socket.end();
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const controller of inFlight.values()) controller.abort();
    });
    socket.resume();
  }

  if (options.listenFd !== undefined) {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ fd: options.listenFd }, resolve));
  } else if (options.socketPath !== undefined) {
    const path = options.socketPath;
    await clearStaleSocket(path);
    // The socket is made with no access but its owner's (and the group's): the mode is set
    // by the umask at bind, so there is no moment where anyone else could connect.
    const umask = process.umask(options.group !== undefined ? 0o117 : 0o177);
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
    } finally {
      process.umask(umask);
    }
    if (options.group !== undefined) await chown(path, process.getuid?.() ?? 0, options.group);
  } else {
    throw new UsageError('qvol daemon needs --socket PATH, or a socket from systemd.');
  }

  return {
    server,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const controller of calls) controller.abort();
      await Promise.allSettled([...running]);
      for (const socket of sockets) socket.end();
      await closed;
    },
  };
}
