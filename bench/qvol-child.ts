/**
 * One timed copy by qvol in a fresh process: prints {seconds, detail} as JSON. A warm-up
 * copy of a 1 MiB scratch file beside the target comes first, so the time is the copy's,
 * not Node's start-up, JIT or thread-pool creation (the harness reports those apart).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { copyVolume, type CopyOptions } from '../src/io/copy.js';

const [src, dst, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}') as CopyOptions;

async function warmUp(): Promise<void> {
  const dir = dst!.startsWith('/dev/') ? dirname(src!) : dirname(dst!);
  const a = join(dir, `.qvol-warmup-${process.pid}`);
  writeFileSync(a, Buffer.alloc(1 << 20, 1));
  try {
    await copyVolume(a, `${a}.copy`, options);
  } finally {
    rmSync(a, { force: true });
    rmSync(`${a}.copy`, { force: true });
  }
}

await warmUp();
const t0 = process.hrtime.bigint();
const r = await copyVolume(src!, dst!, options);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(JSON.stringify({ seconds, detail: r.method }));
