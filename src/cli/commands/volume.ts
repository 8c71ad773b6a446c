import { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { formatBytes, parseSize } from '../../util/size.js';
import { openApp, parseVolumeRef, table } from '../context.js';
import { printJson, type CliIo } from '../output.js';
import { exportCommand, importCommand } from './volume-stream.js';

/** A volume size: bytes with an optional suffix, whole 512-byte sectors. */
function volumeSize(text: string): number {
  const size = parseSize(text, 'size');
  if (size % 512 !== 0) throw new UsageError(`Invalid size '${text}': volume sizes are whole 512-byte sectors (try ${formatBytes(Math.ceil(size / 512) * 512)}).`);
  return size;
}

export function volumeCommand(io: CliIo): Command {
  const volume = new Command('volume').summary('volumes: inspect, revisions, revert, resize, export, import')
    .description('Volumes are named VM:VOLUME, such as work:private.');

  volume.command('ls').alias('list').argument('[vm]', 'only this VM\'s volumes').description('List volumes.').option('--json', 'print as JSON')
    .action(async (vmName: string | undefined, flags: { json?: boolean }) => {
      const rows = await openApp(io, async (app) => {
        const vms = vmName ? [app.getVm(vmName)] : app.listVms();
        const out: Array<Record<string, string | number | boolean>> = [];
        for (const vm of vms) for (const v of app.volumesOf(vm.name).keys()) out.push({ vm: vm.name, ...(await app.volumeInfo(vm.name, v)) });
        return out;
      });
      if (flags.json) printJson(io, rows);
      else io.stdout.write(table(['VOLUME', 'POOL', 'TYPE', 'SIZE', 'USAGE'], rows.map((r) => [
        `${String(r.vm)}:${String(r.vid).split('/').at(-1)}`, String(r.pool),
        r.snap_on_start ? 'snapshot' : r.save_on_stop ? 'origin' : 'volatile', formatBytes(Number(r.size)), formatBytes(Number(r.usage))])));
    });

  volume.command('info').argument('<vm:volume>', 'volume').description('Show a volume, as Qubes\' admin.vm.volume.Info does.').option('--json', 'print as JSON')
    .action(async (ref: string, flags: { json?: boolean }) => {
      const [vm, name] = parseVolumeRef(ref);
      const result = await openApp(io, (app) => app.volumeInfo(vm, name));
      if (flags.json) printJson(io, result);
      // Python's spelling of booleans, as Qubes prints them
      else io.stdout.write(Object.entries(result).map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v)}\n`).join(''));
    });

  volume.command('revisions').argument('<vm:volume>', 'volume').description('List revisions, oldest first.').option('--json', 'print as JSON')
    .action(async (ref: string, flags: { json?: boolean }) => {
      const [vm, name] = parseVolumeRef(ref);
      const revisions = await openApp(io, async (app) => [...(await app.getVolume(vm, name).revisions()).entries()]);
      if (flags.json) printJson(io, revisions.map(([id, timestamp]) => ({ id, timestamp })));
      else io.stdout.write(revisions.map(([id, ts]) => `${id}  ${ts}\n`).join(''));
    });

  volume.command('revert').argument('<vm:volume>', 'volume').argument('[revision]', 'revision id (default: the latest)')
    .description('Revert a stopped volume to a revision. The current state is kept as a new revision.')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, revision: string | undefined, flags: { json?: boolean }) => {
      const [vm, name] = parseVolumeRef(ref);
      await openApp(io, (app) => app.revertVolume(vm, name, revision));
      if (flags.json) printJson(io, { reverted: ref, revision: revision ?? 'latest' });
      else io.stdout.write(`${ref} reverted to ${revision ?? 'the latest revision'}\n`);
    });

  volume.command('resize').argument('<vm:volume>', 'volume').argument('<size>', 'new size (10G, 512M); shrinking truncates')
    .description('Resize a volume; a running volume is resized in place.')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, sizeText: string, flags: { json?: boolean }) => {
      const [vm, name] = parseVolumeRef(ref);
      const size = volumeSize(sizeText);
      const now = await openApp(io, (app) => app.resizeVolume(vm, name, size));
      if (flags.json) printJson(io, { volume: ref, size: now });
      else io.stdout.write(`${ref} resized to ${formatBytes(now)}\n`);
    });

  volume.command('config').argument('<vm:volume>', 'volume').argument('<key>', 'rw | revisions_to_keep | ephemeral').argument('<value>', 'new value')
    .description('Change a volume setting.').option('--json', 'print the result as JSON')
    .action(async (ref: string, key: string, value: string, flags: { json?: boolean }) => {
      const [vm, name] = parseVolumeRef(ref);
      await openApp(io, (app) => app.setVolumeConfig(vm, name, key, value));
      if (flags.json) printJson(io, { volume: ref, [key]: value });
      else io.stdout.write(`${ref} ${key}=${value}\n`);
    });

  volume.addCommand(exportCommand(io));
  volume.addCommand(importCommand(io, volumeSize));
  return volume;
}
