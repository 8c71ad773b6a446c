/**
 * The one way qvol runs external tools: execa with `LC_ALL=C`, no shell, stdin closed, a
 * timeout, and failures as ExternalCommandError with the command's facts.
 */
import type { Options } from 'execa';
import { QvolError } from '../errors/index.js';

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

/** A failed execa run as an ExternalCommandError naming `command`; anything else as it is. */
function commandFailed(command: string, err: unknown): ExternalCommandError {
  const e = err as { exitCode?: number; stderr?: string };
  return new ExternalCommandError(command, e.exitCode ?? -1, e.stderr ?? String(err), err);
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

/** Runs `file args...` and returns its stdout; throws ExternalCommandError on failure. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const command = [file, ...args].join(' ');
  const { execa } = await loadExeca();
  try {
    const result = await execa(file, args, {
      env: { LC_ALL: 'C' },
      stdin: options.input === undefined ? 'ignore' : 'pipe',
      ...(options.input === undefined ? {} : { input: options.input }),
      timeout: options.timeoutMs ?? 60_000,
      stripFinalNewline: true,
    });
    return result.stdout;
  } catch (err) {
    throw commandFailed(command, err);
  }
}

export interface StreamEnds {
  /** A file descriptor the tool reads as its stdin (a pipe, a file): handed over, not copied. */
  stdin?: number;
  /** A file descriptor the tool writes its stdout to. */
  stdout?: number;
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
    // execa hands a numeric fd to the child as is (its types admit only 0-2 by name).
    const options = { env: { LC_ALL: 'C' }, stdin: ends.stdin ?? 'ignore', stdout: ends.stdout ?? 'ignore', stripFinalNewline: true } as unknown as Options;
    const result = await execa(file, args, options);
    return String(result.stderr);
  } catch (err) {
    throw commandFailed(command, err);
  }
}

/**
 * `a | b` through a kernel pipe between the two tools (bash, pipefail: either failing fails
 * the whole), argv passed as positional parameters, never parsed by a shell.
 */
export async function runPipeline(a: readonly string[], b: readonly string[]): Promise<string> {
  const script = 'set -o pipefail; n=$1; shift; "${@:1:n}" | "${@:n+1}"';
  const { execa } = await loadExeca();
  try {
    const result = await execa('bash', ['-c', script, 'qvol-pipe', String(a.length), ...a, ...b], {
      env: { LC_ALL: 'C' },
      stdin: 'ignore',
      stdout: 'ignore',
      stripFinalNewline: true,
    });
    return result.stderr;
  } catch (err) {
    throw commandFailed(`${a.join(' ')} | ${b.join(' ')}`, err);
  }
}
