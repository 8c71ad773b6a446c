/**
 * The one way qvol runs external tools: execa with `LC_ALL=C`, no shell, stdin closed, a
 * timeout, and failures as ExternalCommandError with the command's facts.
 */
import { appendFileSync, closeSync } from 'node:fs';
import type { Options, ResultPromise } from 'execa';
import { CancelledError, QvolError } from '../errors/index.js';

/** execa is loaded when a tool first runs: a command that runs none does not pay for it. */
const loadExeca = () => import('execa');

export class ExternalCommandError extends QvolError {
  readonly command: string;
  /** The tool's exit status (execa's exitCode; `exitCode` here is the CLI's). */
  readonly commandExitCode: number;
  readonly stderr: string;

  constructor(command: string, exitCode: number, stderr: string, cause: unknown) {
    const detail = stderr.trim().split('\n').at(-1) || `exit status ${exitCode}`;
    super('EXTERNAL_COMMAND', `${command} failed: ${detail}`, { cause });
    this.command = command;
    this.commandExitCode = exitCode;
    this.stderr = stderr;
  }
}

/**
 * A failed execa run as an ExternalCommandError naming `command`, or a CancelledError when
 * the caller's signal stopped it.
 */
function commandFailed(command: string, err: unknown): ExternalCommandError | CancelledError {
  const e = err as { exitCode?: number; stderr?: string; isCanceled?: boolean };
  if (e.isCanceled) return new CancelledError(`${command} was cancelled.`, { cause: err });
  return new ExternalCommandError(command, e.exitCode ?? -1, e.stderr ?? String(err), err);
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  /** Added to the tool's environment (which is otherwise `LC_ALL=C` and the inherited one). */
  env?: Record<string, string>;
}

/**
 * With QVOL_TRACE_COMMANDS=FILE, every tool run appends `<ms>\t<started>\t<command>` to FILE
 * (`started` in ms since the epoch): which tool took the time of a slow operation, and when,
 * so tools run side by side are told apart (the benchmarks' measure of qvol's own cost).
 */
const traceFile = process.env.QVOL_TRACE_COMMANDS;

function trace(command: string, startedAt: number): void {
  if (!traceFile) return;
  const line = `${(performance.now() - startedAt).toFixed(3)}\t${(performance.timeOrigin + startedAt).toFixed(3)}\t${command}\n`;
  appendFileSync(traceFile, line, { mode: 0o600 });
}

/** Runs `file args...` and returns its stdout; throws ExternalCommandError on failure. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const command = [file, ...args].join(' ');
  const { execa } = await loadExeca();
  const startedAt = performance.now();
  try {
    const result = await execa(file, args, {
      env: { LC_ALL: 'C', ...options.env },
      stdin: options.input === undefined ? 'ignore' : 'pipe',
      ...(options.input === undefined ? {} : { input: options.input }),
      timeout: options.timeoutMs ?? 60_000,
      stripFinalNewline: true,
    });
    return result.stdout;
  } catch (err) {
    throw commandFailed(command, err);
  } finally {
    trace(command, startedAt);
  }
}

export interface StreamEnds {
  /** A file descriptor the tool reads as its stdin (a pipe, a file): handed over, not copied. */
  stdin?: number;
  /** A file descriptor the tool writes its stdout to. */
  stdout?: number;
  /** Stops the tool (SIGTERM) when aborted; the run then fails as CANCELLED. */
  signal?: AbortSignal | undefined;
}

/** The options of a streaming tool: fds as they are, no timeout, stopped by `signal`. */
function streamingOptions(stdin: number | 'ignore', stdout: number | 'ignore', signal: AbortSignal | undefined): Options {
  // execa hands a numeric fd to the child as is (its types admit only 0-2 by name).
  return { env: { LC_ALL: 'C' }, stdin, stdout, stripFinalNewline: true, ...(signal ? { cancelSignal: signal } : {}) } as unknown as Options;
}

/**
 * Runs a tool whose stdin or stdout is a stream of bulk data: the fds go to the child as
 * they are, so the data never passes through this process. No timeout (a stream takes as
 * long as it takes); resolves to the tool's stderr.
 */
export async function runStreaming(file: string, args: readonly string[], ends: StreamEnds): Promise<string> {
  const command = [file, ...args].join(' ');
  const { execa } = await loadExeca();
  try {
    const result = await execa(file, args, streamingOptions(ends.stdin ?? 'ignore', ends.stdout ?? 'ignore', ends.signal));
    return String(result.stderr);
  } catch (err) {
    throw commandFailed(command, err);
  }
}

/**
 * `a | b` through a kernel pipe between the two tools, with no shell: each tool is its own
 * child, stopped by `signal`, and either failing fails the whole (as pipefail would). The
 * failure reported is the one that caused it: a writer killed by SIGPIPE only because the
 * reader had failed is not it. Resolves to both tools' stderr.
 */
export async function runPipeline(a: readonly string[], b: readonly string[], options: { signal?: AbortSignal | undefined } = {}): Promise<string> {
  const { execa } = await loadExeca();
  const { native } = await import('../native/binding.js');
  const [readEnd, writeEnd] = native.pipeSync();
  let writer: ResultPromise | undefined;
  let reader: ResultPromise | undefined;
  try {
    writer = execa(a[0]!, a.slice(1), streamingOptions('ignore', writeEnd, options.signal));
    reader = execa(b[0]!, b.slice(1), streamingOptions(readEnd, 'ignore', options.signal));
  } finally {
    // The children hold their own copies; ours must go, or the reader never sees the end.
    closeSync(readEnd);
    closeSync(writeEnd);
  }
  const [w, r] = await Promise.allSettled([writer, reader]);
  const failed = (x: PromiseSettledResult<unknown>): x is PromiseRejectedResult => x.status === 'rejected';
  const brokenPipe = failed(w) && (w.reason as { signal?: string }).signal === 'SIGPIPE';
  if (failed(w) && !(brokenPipe && failed(r))) throw commandFailed(a.join(' '), w.reason);
  if (failed(r)) throw commandFailed(b.join(' '), r.reason);
  const stderr = (x: PromiseSettledResult<unknown>) => String((x as PromiseFulfilledResult<{ stderr: unknown }>).value.stderr);
  return [stderr(w), stderr(r)].filter((t) => t.length > 0).join('\n');
}
