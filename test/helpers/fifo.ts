/** A real kernel pipe between two jobs of one process: a FIFO opened at both ends. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** Runs `produce(writeFd)` and `consume(readFd)` at once; the writer closes when produce ends. */
export async function throughFifo<P, C>(dir: string, produce: (fd: number) => Promise<P>, consume: (fd: number) => Promise<C>): Promise<[P, C]> {
  const here = mkdtempSync(join(dir, 'fifo-'));
  const fifo = join(here, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const [reader, writer] = await Promise.all([open(fifo, 'r'), open(fifo, 'w')]);
  try {
    const producing = produce(writer.fd).finally(() => writer.close());
    return await Promise.all([producing, consume(reader.fd)]);
  } finally {
    await reader.close();
    rmSync(here, { recursive: true, force: true });
  }
}
