/** Writing every byte at a descriptor's position, whatever short writes the kernel makes. */
import { write } from 'node:fs';
import { promisify } from 'node:util';

const writeAsync = promisify(write);

export async function writeAll(fd: number, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await writeAsync(fd, data, done, data.length - done, null);
    done += bytesWritten;
  }
}
