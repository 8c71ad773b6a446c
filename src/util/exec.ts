/**
 * The one way qvol runs external tools: execa with `LC_ALL=C`, no shell, stdin closed, a
 * timeout, and failures as ExternalCommandError with the command's facts.
 */
import { execa } from 'execa';
import { QvolError } from '../model/errors.js';

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

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

/** Runs `file args...` and returns its stdout; throws ExternalCommandError on failure. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const command = [file, ...args].join(' ');
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
    const e = err as { exitCode?: number; stderr?: string };
    throw new ExternalCommandError(command, e.exitCode ?? -1, e.stderr ?? String(err), err);
  }
}
