/**
 * Where an encrypted pool's passphrase comes from: the pool's `passphrase_command` (its
 * standard output, for example `systemd-ask-password` or a qrexec call to a VM that asks),
 * else the terminal, with echo off. Never from a file of ours, never logged.
 */
import { QvolError } from '../../errors/index.js';
import { ExternalCommandError, run } from '../../util/exec.js';

export class PassphraseError extends QvolError {}

/** Runs `command` through /bin/sh and returns its output without the final newline. */
async function fromCommand(pool: string, command: string): Promise<string> {
  try {
    return await run('/bin/sh', ['-c', command], { timeoutMs: 600_000 });
  } catch (err) {
    const detail = err instanceof ExternalCommandError ? `exit status ${err.commandExitCode}` : String(err);
    throw new PassphraseError('NO_PASSPHRASE', `The passphrase_command of pool ${pool} failed (${detail}): check it by running it by hand.`, { path: pool, cause: err });
  }
}

/** Reads one line from the terminal with echo off. */
async function fromTerminal(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let line = '';
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done(undefined, line);
          if (ch === '\u0003') return done(new PassphraseError('CANCELLED', 'Cancelled at the passphrase prompt.'));
          if (ch === '\u007f') line = line.slice(0, -1);
          else line += ch;
        }
      };
      const done = (err?: Error, value?: string) => {
        stdin.off('data', onData);
        if (err) reject(err);
        else resolve(value!);
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

/** The passphrase for `pool`, from `command` when given, else the terminal. */
export async function askPassphrase(pool: string, dataset: string, command: string | undefined): Promise<string> {
  if (command) return fromCommand(pool, command);
  if (!process.stdin.isTTY) {
    throw new PassphraseError('NO_PASSPHRASE', `Pool ${pool} needs the passphrase of ${dataset} and there is no terminal to ask on: set the pool option passphrase_command (for example systemd-ask-password).`, { path: pool });
  }
  return fromTerminal(`Passphrase for ${dataset} (qvol pool ${pool}): `);
}
