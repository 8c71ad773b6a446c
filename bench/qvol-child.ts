/** One timed copy by qvol in a fresh process: prints {seconds, detail} as JSON. */
import { copyVolume, type CopyOptions } from '../src/io/copy.js';

const [src, dst, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}') as CopyOptions;
const t0 = process.hrtime.bigint();
const r = await copyVolume(src!, dst!, options);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(JSON.stringify({ seconds, detail: r.method }));
