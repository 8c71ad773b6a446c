/**
 * `qvol copy SRC DST` by the output rules of io/output.ts: a file DST gets the copy engine
 * (published whole), a block device only with `overwriteDevice`, and a FIFO, character
 * device or socket (a pipe to another program, /dev/stdout) the image as a raw stream,
 * written in place, since a stream cannot hold holes or be replaced by a file.
 */
import { UsageError } from '../errors/index.js';
import { copyVolume, type CopyOptions, type CopyResult } from './copy.js';
import { checkDeviceOutput, outputKind, writeInPlace } from './output.js';
import { exportStream, type StreamExportResult } from './streams/export.js';

export interface CopyToOutputOptions extends CopyOptions {
  /** DST may be a block device: the copy destroys what it holds. */
  overwriteDevice?: boolean;
}

export type CopyToOutputResult =
  | (CopyResult & { output: 'file' | 'block' })
  | (StreamExportResult & { output: 'stream'; source: string; target: string });

export async function copyToOutput(src: string, dst: string, options: CopyToOutputOptions = {}): Promise<CopyToOutputResult> {
  // A directory DST takes SRC's name inside it, as with cp: copyVolume's rule.
  const kind = await outputKind(dst).catch((err: unknown) => {
    if (err instanceof UsageError) return 'file' as const;
    throw err;
  });
  checkDeviceOutput(dst, kind, options.overwriteDevice, `'${src}'`);
  if (kind !== 'stream') return { ...(await copyVolume(src, dst, options)), output: kind };
  const result = await writeInPlace(dst, 'stream', (fd) => exportStream(src, fd, {
    format: 'raw',
    outPath: dst,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  }));
  return { ...result, output: 'stream', source: src, target: dst };
}
