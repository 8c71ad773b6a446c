/**
 * Where the CLI writes: human lines or one JSON document on stdout, messages and progress on
 * stderr. Tests hand in their own streams.
 */
import { CommanderError } from 'commander';
import { QvolError } from '../errors/index.js';
import { describeSystemError } from '../errors/system-text.js';
import { isSystemError } from '../native/errors.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Aborted when the command is to stop (Ctrl-C, SIGTERM, SIGHUP): long verbs pass it on. */
  signal?: AbortSignal;
  /** `--qubes-xml`: Qubes' registry to read instead of qvol's own ('none': qvol's own). */
  qubesXml?: string;
}

export interface OutputOptions {
  json?: boolean;
}

/**
 * Help prose: a single line break inside a paragraph becomes a space, so commander wraps the
 * text to the terminal instead of breaking our lines again; blank lines and lines that start
 * indented or with '-' (lists, examples) stay as written.
 */
export function prose(text: string): string {
  return text.replace(/([^\n])\n(?=[^\n\s-])/g, '$1 ');
}

export function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * An error as scripts see it: a stable code, one sentence, the path at fault (and the
 * second one, `dest`, of an error that names two), the exit status.
 */
export function errorRecord(err: unknown): { code: string; message: string; path?: string; dest?: string; exitCode: number } {
  let code = 'INTERNAL';
  let message = String(err);
  let exitCode = 1;
  let path: string | undefined;
  let dest: string | undefined;
  if (err instanceof QvolError) {
    ({ code, message, exitCode, path, dest } = err);
  } else if (isSystemError(err)) {
    ({ code, path, dest } = err);
    message = describeSystemError(err);
  } else if (err instanceof Error) {
    message = err.message;
  }
  return { code, message, exitCode, ...(path === undefined ? {} : { path }), ...(dest === undefined ? {} : { dest }) };
}

/**
 * A failure the verb has already reported in its own output (a `--json` document that lists
 * what failed): the command ends with `exitCode` and prints nothing more, so stdout stays one
 * JSON document.
 */
export class ReportedFailure extends Error {
  constructor(readonly exitCode: number) {
    super('reported by the verb');
  }
}

/** Prints an error the way a user or a script needs it, and returns the exit status. */
export function reportError(io: CliIo, err: unknown, json: boolean): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof ReportedFailure) return err.exitCode;
  const { exitCode, ...record } = errorRecord(err);
  const { message } = record;
  if (json) printJson(io, { error: record });
  else io.stderr.write(`qvol: ${message}\n`);
  if (!(err instanceof QvolError) && !isSystemError(err) && err instanceof Error && process.env.QVOL_DEBUG) {
    io.stderr.write(`${err.stack}\n`);
  }
  return exitCode;
}
