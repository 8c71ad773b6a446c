/**
 * Every code a qvol error carries, with the exit status the `qvol` command gives it: 2 when
 * the input is at fault (asking differently fixes it), 1 for everything else. A command
 * ended by a signal exits 128 + its number (SIGINT 130, SIGTERM 143), as a shell reports it.
 * Scripts and the qubesd bridge match on these codes, so they are stable; a test checks
 * that every code raised in src/ is here.
 */
export const ERROR_CODES = {
  // the input
  USAGE: 2, INVALID_VALUE: 2, UNSUPPORTED_FORMAT: 2,
  // the registry
  POOL_NOT_FOUND: 1, POOL_EXISTS: 1, POOL_IN_USE: 1, UNKNOWN_DRIVER: 1, VM_NOT_FOUND: 1, VM_EXISTS: 1,
  VM_IN_USE: 1, VM_NOT_HALTED: 1, VM_ERROR: 1, VOLUME_NOT_FOUND: 1, STATE_CORRUPT: 1, STATE_TOO_NEW: 1,
  LOCKED: 1, RECOVER_INCOMPLETE: 1, QUBES_REGISTRY: 1,
  // the Qubes contract
  STORAGE_POOL: 1, REVISION_NOT_FOUND: 1, NOT_IMPLEMENTED: 1,
  // the data path
  SOURCE_NOT_FOUND: 1, SOURCE_NOT_SUPPORTED: 1, TARGET_DIR_NOT_FOUND: 1, TARGET_NOT_SUPPORTED: 1,
  TARGET_TOO_SMALL: 1, TARGET_READ_ONLY: 1, TARGET_BUSY: 1, SAME_FILE: 1, NO_SPACE: 1, REFLINK_UNSUPPORTED: 1,
  STREAM_TRUNCATED: 1, STREAM_TOO_LONG: 1, STREAM_CORRUPT: 1, STREAM_CRC_MISMATCH: 1, STREAM_SIZE_MISMATCH: 1,
  DEVICE_TIMEOUT: 1, CANCELLED: 1,
  // drivers and tools
  EXTERNAL_COMMAND: 1, NO_PASSPHRASE: 1, BAD_PASSPHRASE: 1, WRONG_PASSPHRASE: 1,
  // the backup archive
  ARCHIVE_NOT_FOUND: 1, ARCHIVE_EXISTS: 1, ARCHIVE_CORRUPT: 1, ARCHIVE_ROLLBACK: 1, ARCHIVE_LOCKED: 1,
  ARCHIVE_TOO_NEW: 1,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The exit status for `code`: its entry, else 1. */
export function exitStatusOf(code: string): number {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : 1;
}

/** The exit status of a command ended by `signal`: 128 + its number. */
export function exitStatusOfSignal(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15, SIGPIPE: 13 };
  return 128 + (numbers[signal] ?? 15);
}
