/** A client of `qvol daemon` for tests: requests written as lines, replies matched by id. */
import { connect, type Socket } from 'node:net';

export interface DaemonReply {
  v: number;
  id: number | string | null;
  result?: unknown;
  error?: { type: string; code: string; message: string; path?: string };
}

export class DaemonClient {
  private buffered = '';
  private nextId = 1;
  private readonly waiting = new Map<number | string | null, (reply: DaemonReply) => void>();
  /** Replies nobody waited for (errors without an id), in order. */
  readonly unmatched: DaemonReply[] = [];
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let n: number;
      while ((n = this.buffered.indexOf('\n')) >= 0) {
        const reply = JSON.parse(this.buffered.slice(0, n)) as DaemonReply;
        this.buffered = this.buffered.slice(n + 1);
        const resolve = this.waiting.get(reply.id);
        if (resolve) {
          this.waiting.delete(reply.id);
          resolve(reply);
        } else {
          this.unmatched.push(reply);
        }
      }
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  static connect(path: string): Promise<DaemonClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new DaemonClient(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * A client once the daemon at `path` answers a hello: it may still be starting, or a
   * killed one's socket may linger. Gives up after about 5 s.
   */
  static async whenAnswering(path: string): Promise<DaemonClient> {
    for (let i = 0; ; i++) {
      try {
        const client = await DaemonClient.connect(path);
        await client.call('hello');
        return client;
      } catch (err) {
        if (i > 500) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  /** Sends `method` and resolves to its reply (a result or an error, never a rejection). */
  request(method: string, params: Record<string, unknown> = {}, id: number | string = this.nextId++): Promise<DaemonReply> {
    const reply = new Promise<DaemonReply>((resolve, reject) => {
      this.waiting.set(id, resolve);
      void this.closed.then(() => reject(new Error(`the daemon closed the connection before replying to ${method}`)));
    });
    this.socket.write(`${JSON.stringify({ v: 1, id, method, params })}\n`);
    return reply;
  }

  /** The result of `method`; throws with the daemon's error type and message. */
  async call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const reply = await this.request(method, params);
    if (reply.error) throw Object.assign(new Error(`${reply.error.type}: ${reply.error.message}`), { reply: reply.error });
    return reply.result as T;
  }

  /** Writes raw bytes (malformed requests). */
  writeRaw(text: string): void {
    this.socket.write(text);
  }

  /** The next reply that matched no request. */
  async nextUnmatched(): Promise<DaemonReply> {
    for (let i = 0; i < 500 && this.unmatched.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const reply = this.unmatched.shift();
    if (!reply) throw new Error('no reply came');
    return reply;
  }

  close(): void {
    this.socket.end();
  }
}
