/**
 * One timed stream by qvol in a fresh process: export SRC into a FIFO and import it into
 * DST at the same time, both native jobs on a real kernel pipe, as `qvol volume export |
 * qvol volume import` does without the two Node start-ups (the harness compares data paths).
 * Prints {seconds, detail} as JSON; a small warm-up stream runs first.
 */
import { closeSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { throughFifo } from '../test/helpers/fifo.js';
import { exportStream } from '../src/io/streams/export.js';
import { importStream, readStreamHeader } from '../src/io/streams/import.js';
import { openSource } from '../src/io/copy-target.js';

const [src, dst, format] = process.argv.slice(2) as [string, string, 'raw' | 'sparse'];

async function stream(from: string, to: string) {
  const size = await openSource(from).then(async (s) => { await s.handle.close(); return s.size; });
  closeSync(openSync(to, 'w'));
  const [out] = await throughFifo(dirname(to), (fd) => exportStream(from, fd, { format }), async (fd) => {
    const header = format === 'sparse' ? await readStreamHeader(fd) : undefined;
    return importStream(fd, to, { format, size, ...(header ? { header } : {}) });
  });
  return out;
}

const warm = join(dirname(dst), `.qvol-warmup-${process.pid}`);
writeFileSync(warm, Buffer.alloc(1 << 20, 1));
await stream(warm, `${warm}.copy`).finally(() => { rmSync(warm, { force: true }); rmSync(`${warm}.copy`, { force: true }); });
const t0 = process.hrtime.bigint();
const r = await stream(src, dst);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const through = r.dataBytes > 0 ? `, ${(r.bytes / r.dataBytes).toFixed(4)}x the data` : '';
process.stdout.write(JSON.stringify({ seconds, detail: `data by ${r.method}; ${r.bytes} bytes through the pipe${through}` }));
