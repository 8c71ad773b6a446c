/**
 * The CLI's passphrase provider: one line from the terminal with echo off. Drivers never
 * touch the terminal themselves (src/model/driver-context.ts).
 */
import { PassphraseError } from '../errors/index.js';
import type { PassphraseProvider } from '../model/driver-context.js';

/** Reads one line from the terminal with echo off. */
export async function fromTerminal(prompt: string): Promise<string> {
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

/** Asks on the terminal when there is one; without one there is no provider. */
export function terminalPassphrase(): PassphraseProvider | undefined {
  if (!process.stdin.isTTY) return undefined;
  return ({ pool, dataset }) => fromTerminal(`Passphrase for ${dataset} (qvol pool ${pool}): `);
}
