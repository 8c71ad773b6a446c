/**
 * Where an encrypted pool's passphrase comes from: the pool's `passphrase_command` (its
 * standard output, for example `systemd-ask-password` or a qrexec call to a VM that asks),
 * else the caller's PassphraseProvider (the CLI asks on the terminal, with echo off).
 * Never from a file of ours, never logged.
 */
import { PassphraseError } from '../../errors/index.js';
import type { PassphraseProvider } from '../../model/driver-context.js';
import { ExternalCommandError, run } from '../../util/exec.js';

export { PassphraseError };

/** Runs `command` through /bin/sh and returns its output without the final newline. */
async function fromCommand(pool: string, command: string): Promise<string> {
  try {
    return await run('/bin/sh', ['-c', command], { timeoutMs: 600_000 });
  } catch (err) {
    const detail = err instanceof ExternalCommandError ? `exit status ${err.commandExitCode}` : String(err);
    throw new PassphraseError('NO_PASSPHRASE', `The passphrase_command of pool ${pool} failed (${detail}): check it by running it by hand.`, { path: pool, cause: err });
  }
}

/**
 * The passphrase for `pool`: from its `passphrase_command` when it has one, else from the
 * caller's provider (the CLI's asks on the terminal), else none, said in one sentence.
 */
export async function askPassphrase(pool: string, dataset: string, command: string | undefined, provider?: PassphraseProvider): Promise<string> {
  if (command) return fromCommand(pool, command);
  if (provider) return provider({ pool, dataset });
  throw new PassphraseError('NO_PASSPHRASE', `Pool ${pool} needs the passphrase of ${dataset} and there is no terminal to ask on: set the pool option passphrase_command (for example systemd-ask-password).`, { path: pool });
}
