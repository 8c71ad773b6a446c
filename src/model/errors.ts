/**
 * qvol's own errors: one sentence that names the thing at fault and the fix, a stable
 * `code` for scripts, the `path` or name concerned, and the low-level `cause`.
 */
export interface QvolErrorOptions {
  path?: string;
  cause?: unknown;
}

export class QvolError extends Error {
  readonly code: string;
  readonly path?: string;
  /** The CLI's exit status for this error. */
  readonly exitCode: number = 1;

  constructor(code: string, message: string, options: QvolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.path !== undefined) this.path = options.path;
  }
}

/** Bad input from the command line or the API caller: exit status 2. */
export class UsageError extends QvolError {
  override readonly exitCode: number = 2;

  constructor(message: string, options: QvolErrorOptions = {}) {
    super('USAGE', message, options);
  }
}

/** The operation was cancelled through its AbortSignal; nothing was left behind. */
export class CancelledError extends QvolError {
  constructor(message: string, options: QvolErrorOptions = {}) {
    super('CANCELLED', message, options);
  }
}

/** The codes of the copy engine's errors, each tested. */
export type CopyErrorCode =
  | 'SOURCE_NOT_FOUND'
  | 'SOURCE_NOT_SUPPORTED'
  | 'TARGET_DIR_NOT_FOUND'
  | 'TARGET_NOT_SUPPORTED'
  | 'TARGET_TOO_SMALL'
  | 'TARGET_READ_ONLY'
  | 'TARGET_BUSY'
  | 'SAME_FILE'
  | 'NO_SPACE'
  | 'REFLINK_UNSUPPORTED';

export class CopyError extends QvolError {
  declare readonly code: CopyErrorCode;

  constructor(code: CopyErrorCode, message: string, options: QvolErrorOptions = {}) {
    super(code, message, options);
  }
}
