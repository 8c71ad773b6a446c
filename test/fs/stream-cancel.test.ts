/**
 * Jobs that never hang: an import whose writer has gone quiet and an export whose reader has
 * gone quiet both end promptly when aborted, as CANCELLED, and change nothing. Their waits
 * on the pipe are bounded (100 ms) and look at the job's cancel flag.
 */
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/errors/index.js';
import { exportStream } from '../../src/io/streams/export.js';
import { importStream } from '../../src/io/streams/import.js';
import { scratchDir } from '../helpers/scratch.js';

const MiB = 2 ** 20;

/** Both ends of a new FIFO, opened in this process. */
async function fifo(dir: string) {
  const path = join(dir, `pipe-${Math.random().toString(16).slice(2)}`);
  execFileSync('mkfifo', [path]);
  const [reader, writer] = await Promise.all([open(path, 'r'), open(path, 'w')]);
  return { reader, writer };
}

async function abortedWithin(ms: number, run: (signal: AbortSignal) => Promise<unknown>, after = 300): Promise<{ err: unknown; took: number }> {
  const ac = new AbortController();
  const job = run(ac.signal).then(() => undefined, (e: unknown) => e);
  await new Promise((r) => setTimeout(r, after));
  const t0 = Date.now();
  ac.abort();
  const err = await Promise.race([job, new Promise((r) => setTimeout(() => r('still running'), ms))]);
  return { err, took: Date.now() - t0 };
}

describe('cancelling a job stalled on a pipe', () => {
  it('an import whose writer went quiet ends within a second of the abort, the target unchanged', async () => {
    const dir = scratchDir('cancel');
    const target = join(dir, 'target.img');
    writeFileSync(target, 'OLD');
    const { reader, writer } = await fifo(dir);
    try {
      writeFileSync(join(dir, 'import.img'), '');
      const { err, took } = await abortedWithin(1000, async (signal) => {
        const job = importStream(reader.fd, join(dir, 'import.img'), { format: 'raw', size: 64 * MiB, signal });
        await writer.write(Buffer.alloc(MiB, 0x44)); // then nothing more, and the pipe stays open
        return job;
      });
      expect(err).toBeInstanceOf(CancelledError);
      expect(took).toBeLessThan(1000);
      expect(statSync(target).size).toBe(3);
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('eight stalled imports leave the rest of the process alone: fs.stat answers at once', async () => {
    const dir = scratchDir('cancel');
    const pipes = await Promise.all(Array.from({ length: 8 }, () => fifo(dir)));
    const ac = new AbortController();
    try {
      const jobs = pipes.map(({ reader }, i) => {
        const target = join(dir, `import-${i}.img`);
        writeFileSync(target, '');
        return importStream(reader.fd, target, { format: 'raw', size: 64 * MiB, signal: ac.signal }).then(() => undefined, (e: unknown) => e);
      });
      await new Promise((r) => setTimeout(r, 300)); // every job is now waiting on its pipe
      const t0 = process.hrtime.bigint();
      await stat('/');
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      expect(ms).toBeLessThan(100);
      ac.abort();
      for (const err of await Promise.all(jobs)) expect(err).toBeInstanceOf(CancelledError);
    } finally {
      for (const { reader, writer } of pipes) {
        await writer.close();
        await reader.close();
      }
    }
  });

  it('an export whose reader went quiet ends within a second of the abort', async () => {
    const dir = scratchDir('cancel');
    const src = join(dir, 'src.img');
    writeFileSync(src, Buffer.alloc(16 * MiB, 0x55));
    const { reader, writer } = await fifo(dir);
    try {
      // Nobody reads: the pipe fills after its first MiB.
      const { err, took } = await abortedWithin(1000, (signal) => exportStream(src, writer.fd, { format: 'raw', signal }));
      expect(err).toBeInstanceOf(CancelledError);
      expect(took).toBeLessThan(1000);
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('an export by the write() rung into a blocking pipe whose reader went quiet ends within a second of the abort', async () => {
    const dir = scratchDir('cancel');
    const src = join(dir, 'src.img');
    writeFileSync(src, Buffer.alloc(16 * MiB, 0x55));
    const { reader, writer } = await fifo(dir); // fs.open: a blocking file description
    try {
      const disable = ['splice', 'vmsplice', 'sendfile'] as const;
      const { err, took } = await abortedWithin(1000, (signal) => exportStream(src, writer.fd, { format: 'raw', signal, disable: [...disable] }));
      expect(err).toBeInstanceOf(CancelledError);
      expect(took).toBeLessThan(1000);
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});
