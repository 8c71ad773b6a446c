/**
 * The one error shape the native layer produces: Node's own system errors, with `code`
 * ('ENOSPC'), negative `errno`, `syscall` ('ioctl(FICLONE)'), `path` and `dest`.
 */
export interface SystemErrorProps {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  dest?: string;
}

export class SystemError extends Error implements SystemErrorProps {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  dest?: string;

  constructor(message: string, props: SystemErrorProps) {
    super(message);
    this.name = 'SystemError';
    this.code = props.code;
    this.errno = props.errno;
    this.syscall = props.syscall;
    if (props.path !== undefined) this.path = props.path;
    if (props.dest !== undefined) this.dest = props.dest;
  }
}

/** True for our SystemError and for Node's own fs errors, which have the same fields. */
export function isSystemError(err: unknown): err is SystemErrorProps & Error {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' &&
    typeof (err as { errno?: unknown }).errno === 'number';
}

export function hasCode(err: unknown, ...codes: string[]): boolean {
  return isSystemError(err) && codes.includes(err.code);
}

/**
 * Runs a native call and, if it rejects, grafts the caller's stack onto the error so a
 * failure deep in a worker thread still points at the line that asked for it.
 */
export async function withCallerStack<T>(run: () => Promise<T>): Promise<T> {
  const here = new Error();
  try {
    return await run();
  } catch (err) {
    if (err instanceof Error && here.stack) {
      const frames = here.stack.split('\n').slice(1).join('\n');
      err.stack = `${err.name}: ${err.message}\n${frames}`;
    }
    throw err;
  }
}
