/**
 * `qvol volume export` and `qvol volume import`: a volume to and from a file or a pipe, in
 * the raw, sparse (Android sparse image) or a driver's own format (zfs). The library's
 * exportVolume/importVolume route the format and publish files; this file picks the ends
 * and the words of the summary.
 */
import { isatty } from 'node:tty';
import { Command, Option } from 'commander';
import type { TransferEnd } from '../../app/transfer.js';
import type { StreamSummary } from '../../io/streams/format.js';
import { UsageError } from '../../errors/index.js';
import { formatBytes } from '../../util/size.js';
import { openApp, parseVolumeRef } from '../context.js';
import { printJson, type CliIo } from '../output.js';
import { progressBar } from '../progress.js';

function describe(ref: string, verb: string, r: StreamSummary): string {
  const parts = [`${formatBytes(r.size)} volume`, `${formatBytes(r.dataBytes)} data`];
  if (r.holeBytes > 0) parts.push(`${formatBytes(r.holeBytes)} holes`);
  const rate = r.seconds > 0 ? ` (${formatBytes(r.rate)}/s)` : '';
  return `${ref} ${verb} as ${r.format}: ${parts.join(', ')}; ${formatBytes(r.bytes)} through the stream in ${r.seconds.toFixed(2)} s${rate} by ${r.method}\n`;
}

/**
 * Where the summary goes: stdout, unless the data does; then JSON goes to stderr, and the
 * line only to a terminal (a script's stderr stays quiet, as with zfs send).
 */
function report(io: CliIo, dataOnStdout: boolean, json: boolean | undefined, value: object, line: string): void {
  const out: CliIo = dataOnStdout ? { stdout: io.stderr, stderr: io.stderr } : io;
  if (json) printJson(out, value);
  else if (!dataOnStdout || io.stderr.isTTY) out.stdout.write(line);
}

function isStdio(path: string | undefined): boolean {
  return path === undefined || path === '-';
}

function formatOption(): Option {
  // No fixed choices: the volume's driver says which formats it has (a wrong one is refused
  // with the list), so a driver that brings a format needs no change here.
  return new Option('-f, --format <format>', 'raw: the plain bytes; sparse: an Android sparse image (holes and zero runs stay out of the stream, CRC32 checked); or the driver\'s own: zfs (zfs send/recv, ZFS volumes at both ends)')
    .default('raw');
}

interface ExportFlags {
  format: string;
  output?: string;
  force?: boolean;
  crc: boolean;
  since?: string;
  revision?: string;
  json?: boolean;
  progress: boolean;
}

export function exportCommand(io: CliIo): Command {
  return new Command('export').argument('<vm:volume>', 'volume')
    .summary('write a volume\'s committed data to a file or a pipe')
    .description(
      'Write the committed data of a volume (the pre-start data of a running one, from a stable\n' +
      'snapshot or clone, never the live image) to a file or to standard output.\n\n' +
      'raw writes the plain bytes (pipe it to dd or anything that reads an image); to a file it\n' +
      'is a sparse copy (holes stay holes, reflinked where the filesystem can). sparse writes an\n' +
      'Android sparse image: data blocks as RAW chunks, zero runs as DONT_CARE, repeated words\n' +
      'as FILL, and a CRC32 of the whole image at the end; simg2img reads it. zfs writes the\n' +
      '`zfs send` stream of the committed snapshot (with --since, an incremental one).\n\n' +
      'To a pipe the data moves by splice (page references, no copy) and holes by zero pages;\n' +
      'the summary then goes to standard error.')
    .addOption(formatOption())
    .option('-o, --output <file>', 'a file, or - for standard output (the default); a FIFO or character device is written in place')
    .option('--force', 'the output may be a block device: write the volume onto it, destroying what it holds')
    .option('--no-crc', 'sparse: leave out the CRC32 chunk')
    .option('--since <revision>', 'zfs: an incremental stream from this revision or snapshot (the target must hold it)')
    .option('--revision <revision>', 'zfs: send this revision instead of the committed state')
    .option('--no-progress', 'no progress bar on a terminal')
    .option('--json', 'print a summary as JSON (bytes, data, holes, rate, method)')
    .addHelpText('after', '\nExamples:\n  qvol volume export work:private -f sparse | ssh backup qvol volume import work:private -f sparse\n  qvol volume export work:private -o private.img\n  qvol volume export work:root -f sparse -o root.simg && simg2img root.simg root.img')
    .action(async (ref: string, flags: ExportFlags) => {
      const [vm, name] = parseVolumeRef(ref);
      const toStdout = isStdio(flags.output);
      if (toStdout && isatty(1)) throw new UsageError('Refusing to write a volume to a terminal: pipe it, or use -o FILE.');
      const bar = progressBar(io, 'export', flags.progress && !flags.json);
      const to: TransferEnd = toStdout ? { fd: 1, name: 'standard output' } : { path: flags.output! };
      const result = await openApp(io, (app) => app.exportVolume(vm, name, {
        format: flags.format, to, crc: flags.crc, onProgress: bar.update, overwriteDevice: flags.force === true,
        ...(io.signal ? { signal: io.signal } : {}),
        ...(flags.since === undefined ? {} : { since: flags.since }), ...(flags.revision === undefined ? {} : { revision: flags.revision }),
      })).finally(() => bar.done());
      report(io, toStdout, flags.json, { volume: ref, ...result }, describe(ref, 'exported', result));
    });
}

interface ImportFlags {
  format: string;
  input?: string;
  size?: string;
  incremental?: boolean;
  json?: boolean;
  progress: boolean;
}

export function importCommand(io: CliIo, volumeSize: (text: string) => number): Command {
  return new Command('import').argument('<vm:volume>', 'volume')
    .summary('replace a stopped volume\'s data from a file or a pipe')
    .description(
      'Replace the data of a stopped volume with what a file or standard input holds, in the\n' +
      'raw, sparse or zfs format (see `qvol volume export --help`). The data goes into the\n' +
      'driver\'s import target and is committed only when the whole stream arrived and checked:\n' +
      'its size, its chunks and, when it carries one, its CRC32. A short, long or corrupt stream\n' +
      'is refused with the byte where it went wrong, and the volume is unchanged.\n\n' +
      'The size is, in order: --size (the stream must hold exactly that many bytes), the size\n' +
      'a qvol sparse stream records, the input file\'s size (raw), the sparse image\'s whole\n' +
      'blocks, or the volume\'s current size (raw from a pipe).')
    .addOption(formatOption())
    .option('-i, --input <file>', 'a file or block device, or - for standard input (the default)')
    .option('--size <bytes>', 'the size the volume gets (10G, 512M); the stream must match it')
    .option('--incremental', 'zfs: apply an incremental stream (export --since) to the volume in place')
    .option('--no-progress', 'no progress bar on a terminal')
    .option('--json', 'print a summary as JSON')
    .addHelpText('after', '\nExamples:\n  qvol volume export a:private -f sparse | qvol volume import b:private -f sparse\n  img2simg disk.img /dev/stdout | qvol volume import work:root -f sparse\n  qvol volume import work:private -i private.img')
    .action(async (ref: string, flags: ImportFlags) => {
      const [vm, name] = parseVolumeRef(ref);
      const size = flags.size === undefined ? undefined : volumeSize(flags.size);
      const fromStdin = isStdio(flags.input);
      if (fromStdin && isatty(0)) throw new UsageError('No input: pipe a stream in, or use -i FILE.');
      const bar = progressBar(io, 'import', flags.progress && !flags.json);
      const from: TransferEnd = fromStdin ? { fd: 0, name: 'standard input' } : { path: flags.input! };
      const result = await openApp(io, (app) => app.importVolume(vm, name, {
        format: flags.format, from, ...(size === undefined ? {} : { size }), incremental: flags.incremental === true, onProgress: bar.update,
        ...(io.signal ? { signal: io.signal } : {}),
      })).finally(() => bar.done());
      report(io, false, flags.json, { volume: ref, ...result }, describe(ref, 'imported', result));
    });
}
