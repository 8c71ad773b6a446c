/**
 * qvol's own errors: one sentence that names the thing at fault and the fix, a stable
 * `code` for scripts (codes.ts lists them all), the `path` or name concerned, and the
 * low-level `cause`.
 */
import { exitStatusOf } from './codes.js';

export { ERROR_CODES, exitStatusOf, exitStatusOfSignal, type ErrorCode } from './codes.js';
export interface QvolErrorOptions {
  path?: string;
  /** The second path of an error that names two (a copy's target), as Node's `dest`. */
  dest?: string;
  cause?: unknown;
}

export class QvolError extends Error {
  readonly code: string;
  readonly path?: string;
  readonly dest?: string;

  /** The CLI's exit status for this error (codes.ts: 2 for bad input, else 1). */
  get exitCode(): number {
    return exitStatusOf(this.code);
  }

  constructor(code: string, message: string, options: QvolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.path !== undefined) this.path = options.path;
    if (options.dest !== undefined) this.dest = options.dest;
  }
}

/** Bad input from the command line or the API caller: exit status 2. */
export class UsageError extends QvolError {
  constructor(message: string, options: QvolErrorOptions = {}) {
    super('USAGE', message, options);
  }
}

/** A transfer format that one end of the transfer does not speak: exit status 2. */
export class UnsupportedFormatError extends QvolError {
  constructor(message: string, options: QvolErrorOptions = {}) {
    super('UNSUPPORTED_FORMAT', message, options);
  }
}

/** No passphrase could be had, or it was wrong (an encrypted pool's key). */
export class PassphraseError extends QvolError {}

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

/** The codes of a refused stream, each tested. */
export type StreamErrorCode =
  | 'STREAM_TRUNCATED'
  | 'STREAM_TOO_LONG'
  | 'STREAM_CORRUPT'
  | 'STREAM_CRC_MISMATCH'
  | 'STREAM_SIZE_MISMATCH';

/** An import stream that is not what it should be; the volume was left unchanged. */
export class StreamError extends QvolError {
  declare readonly code: StreamErrorCode;
  /** The byte of the image where the stream went wrong. */
  readonly at: number;

  constructor(code: StreamErrorCode, message: string, at: number, options: QvolErrorOptions = {}) {
    super(code, message, options);
    this.at = at;
  }
}

/*
 * The Qubes storage exceptions, by the names and messages of docs/qubes-contract.md:
 * users and scripts match on them. Each carries a stable code as well.
 */

/** A storage operation failed (Qubes `StoragePoolException`). */
export class StoragePoolException extends QvolError {
  constructor(message: string, options: QvolErrorOptions = {}) {
    super('STORAGE_POOL', message, options);
  }
}

/**
 * A name in a pool is not what qvol makes there (a symbolic link, a device, a FIFO, a path
 * that leaves the pool): refused, since qvol runs as root among paths it does not own.
 * A `StoragePoolException` to Qubes.
 */
export class UnsafePathError extends StoragePoolException {}

/** The codes of the backup archive's errors. */
export type ArchiveErrorCode = 'ARCHIVE_NOT_FOUND' | 'ARCHIVE_EXISTS' | 'ARCHIVE_CORRUPT' | 'ARCHIVE_ROLLBACK' | 'ARCHIVE_LOCKED' | 'ARCHIVE_TOO_NEW';

/**
 * An archive that is missing, in use, rolled back, or whose object failed its checks; `path`
 * names the archive or the object at fault. Nothing of a refused object was parsed.
 */
export class ArchiveError extends QvolError {
  declare readonly code: ArchiveErrorCode;

  constructor(code: ArchiveErrorCode, message: string, options: QvolErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A value is not acceptable for this volume or pool (Qubes `QubesValueError`). */
export class QubesValueError extends QvolError {
  constructor(message: string, options: QvolErrorOptions = {}) {
    super('INVALID_VALUE', message, options);
  }
}

/** The operation needs the VM halted (Qubes `QubesVMNotHaltedError`). */
export class QubesVMNotHaltedError extends QvolError {
  constructor(vm: string, message = `Domain is not powered off: ${vm}`) {
    super('VM_NOT_HALTED', message, { path: vm });
  }
}

/** A VM-level storage failure (Qubes `QubesVMError`). */
export class QubesVMError extends QvolError {
  constructor(vm: string, message: string, options: { cause?: unknown } = {}) {
    super('VM_ERROR', message, { path: vm, ...options });
  }
}

/** The pool is used by a volume or a default (Qubes `QubesPoolInUseError`). */
export class QubesPoolInUseError extends QvolError {
  constructor(pool: string, message = `Storage pool is in use: ${pool}`) {
    super('POOL_IN_USE', message, { path: pool });
  }
}

/** No such revision of the volume (Qubes `QubesVolumeRevisionNotFoundError`, KeyError). */
export class RevisionNotFoundError extends QvolError {
  constructor(vid: string, revision: string) {
    super('REVISION_NOT_FOUND', `Volume ${vid} has no revision '${revision}': see its revisions.`, { path: vid });
  }
}

/** The driver does not implement this operation for this volume (Python `NotImplementedError`). */
export class NotImplementedError extends QvolError {
  constructor(message: string) {
    super('NOT_IMPLEMENTED', message);
  }
}
