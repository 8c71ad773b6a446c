/**
 * One timed stream by qvol in a fresh process: export SRC into a FIFO and import it into
 * DST at the same time, both native jobs on a real kernel pipe, as `qvol volume export |
 * qvol volume import` does without the two Node start-ups (the harness compares data paths).
 * Prints {seconds, detail} as JSON; a small warm-up stream runs first.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exportStream } from '../src/io/streams/export.js';
import { importStream, readStreamHeader } from '../src/io/streams/import.js';
import { openSource } from '../src/io/copy-target.js';

const [src, dst, format] = process.argv.slice(2) as [string, string, 'raw' | 'sparse'];

async function stream(from: string, to: string) {
  const dir = mkdtempSync(join(dirname(to), '.fifo-'));
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  try {
    const size = await openSource(from).then(async (s) => { await s.handle.close(); return s.size; });
    const [reader, writer] = await Promise.all([open(fifo, 'r'), open(fifo, 'w')]);
    closeSync(openSync(to, 'w'));
    try {
      const exporting = exportStream(from, writer.fd, { format }).finally(() => writer.close());
      const header = format === 'sparse' ? await readStreamHeader(reader.fd) : undefined;
      const [out] = await Promise.all([exporting, importStream(reader.fd, to, { format, size, ...(header ? { header } : {}) })]);
      return out;
    } finally {
      await reader.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const warm = join(dirname(dst), `.qvol-warmup-${process.pid}`);
writeFileSync(warm, Buffer.alloc(1 << 20, 1));
await stream(warm, `${warm}.copy`).finally(() => { rmSync(warm, { force: true }); rmSync(`${warm}.copy`, { force: true }); });
const t0 = process.hrtime.bigint();
const r = await stream(src, dst);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const through = r.dataBytes > 0 ? `, ${(r.bytes / r.dataBytes).toFixed(4)}x the data` : '';
process.stdout.write(JSON.stringify({ seconds, detail: `data by ${r.method}; ${r.bytes} bytes through the pipe${through}` }));
