import { Command, Option } from 'commander';
import type { CopyResult } from '../../io/copy.js';
import type { CopyToOutputResult } from '../../io/copy-to-output.js';
import { formatBytes, parseSize } from '../../util/size.js';
import { printJson, type CliIo } from '../output.js';
import { progressBar } from '../progress.js';

interface CopyFlags {
  sparse: 'auto' | 'always' | 'never';
  reflink: 'auto' | 'always' | 'never';
  size?: string;
  targetIsZero?: boolean;
  json?: boolean;
  force?: boolean;
  progress: boolean;
}

function summary(r: CopyToOutputResult): string {
  if (r.output === 'stream') {
    const rate = r.seconds > 0 ? `, ${formatBytes(r.rate)}/s` : '';
    return `${r.source} -> ${r.target}: ${formatBytes(r.size)} written as a raw stream by ${r.method} in ${r.seconds.toFixed(2)} s${rate}\n`;
  }
  return fileSummary(r);
}

function fileSummary(r: CopyResult): string {
  const rate = r.seconds > 0 ? `, ${formatBytes(r.size / r.seconds)}/s` : '';
  const head = `${r.source} -> ${r.target}: ${formatBytes(r.size)}`;
  if (r.method === 'clone') {
    return `${head} cloned in ${r.seconds.toFixed(2)} s: it shares every extent with the source\n`;
  }
  const details = [`written ${formatBytes(r.bytesWritten)}`];
  if (r.holes > 0) details.push(`${r.holes} holes (${formatBytes(r.bytesSkipped + r.bytesZeroed)})`);
  if (r.bytesZeroed > 0) details.push(`zeroed ${formatBytes(r.bytesZeroed)} of the target`);
  return `${head} copied by ${r.method} in ${r.seconds.toFixed(2)} s${rate}\n  ${details.join(', ')}\n`;
}

export function copyCommand(io: CliIo): Command {
  return new Command('copy')
    .summary('copy a volume image or block device, sparse and at device speed')
    .description(
      'Copy SRC to DST. Each may be a regular file or a block device (a loop device, a zvol,\n' +
        'an LV). qvol clones the file when the filesystem shares extents (btrfs, XFS), else\n' +
        'copies each data extent with copy_file_range, else reads, skips zero blocks and\n' +
        'writes. Holes and 4 KiB zero blocks stay holes in a file target; on a device target\n' +
        'they are discarded or zeroed, so DST always reads back equal to SRC.\n\n' +
        'A file DST is written under a temporary name and renamed into place only when the\n' +
        'data is on disk: an interrupted copy leaves nothing behind; an existing file is\n' +
        'replaced, as cp and qemu-img convert replace theirs. A block device DST is written\n' +
        'only with --force, since the copy destroys what it holds; it is opened exclusively\n' +
        '(refused while mounted) and must hold the whole copy. A FIFO, character device or\n' +
        'socket DST (a pipe, /dev/stdout) receives the image as a raw stream, in place.',
    )
    .argument('<src>', 'source image file or block device')
    .argument('<dst>', 'target file, directory or block device')
    .addOption(new Option('--sparse <when>', 'holes in the target: auto keeps the source\'s and those found in data read through qvol; always scans all data for zero blocks; never allocates everything').choices(['auto', 'always', 'never']).default('auto'))
    .addOption(new Option('--reflink <when>', 'share extents with the source: auto tries, always fails if it cannot, never always copies').choices(['auto', 'always', 'never']).default('auto'))
    .option('--size <bytes>', 'size of the target (10G, 512M): truncates or extends with zeros')
    .option('--target-is-zero', 'the device target already reads as zeros (a new LV or zvol): skip zeroing holes')
    .option('-f, --force', 'DST may be a block device: overwrite what it holds')
    .option('--no-progress', 'no progress bar on a terminal')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  qvol copy root.img /var/lib/qvol/root.img\n  qvol copy --force --size 20G private.img /dev/vg0/vm-work-private\n  qvol copy /dev/zvol/tank/vm/root /dev/stdout | zstd > root.img.zst\n  qvol copy --json /dev/zvol/tank/vm/root backup.img')
    .action(async (src: string, dst: string, flags: CopyFlags) => {
      const bar = progressBar(io, 'copy', flags.progress && !flags.json);
      const { copyToOutput } = await import('../../io/copy-to-output.js');
      const result = await copyToOutput(src, dst, {
        overwriteDevice: flags.force === true,
        sparse: flags.sparse,
        reflink: flags.reflink,
        ...(flags.size === undefined ? {} : { size: parseSize(flags.size, '--size') }),
        targetIsZero: flags.targetIsZero === true,
        onProgress: (p) => bar.update(p),
        ...(io.signal ? { signal: io.signal } : {}),
      }).finally(() => bar.done());
      if (flags.json) printJson(io, result);
      else io.stdout.write(summary(result));
    });
}
