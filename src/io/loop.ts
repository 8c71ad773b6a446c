/**
 * Loop devices backed by our image files: after an image is resized in place, every loop
 * device over it is told its new capacity, so a running VM sees the new size.
 */
import { readdir, readFile, realpath } from 'node:fs/promises';
import { run } from '../util/exec.js';

export async function loopDevicesOf(image: string): Promise<string[]> {
  const target = await realpath(image);
  const devices: string[] = [];
  for (const name of await readdir('/sys/block').catch(() => [] as string[])) {
    if (!name.startsWith('loop')) continue;
    const backing = await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => undefined);
    if (backing?.trim() === target) devices.push(`/dev/${name}`);
  }
  return devices;
}

export async function updateLoopDeviceSizes(image: string): Promise<void> {
  for (const device of await loopDevicesOf(image)) await run('losetup', ['--set-capacity', device]);
}
