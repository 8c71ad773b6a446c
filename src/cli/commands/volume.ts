import { Command } from 'commander';
import type { QvolApp } from '../../app/app.js';
import { QubesValueError, UsageError } from '../../model/errors.js';
import { parseBool } from '../../model/parse-bool.js';
import type { Volume } from '../../model/volume.js';
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

async function info(v: Volume): Promise<Record<string, string | number | boolean>> {
  // Qubes' admin.vm.volume.Info keys, in its order.
  return {
    pool: v.pool.name, vid: v.vid, size: v.size, usage: await v.usage(), rw: v.rw, source: v.source?.vid ?? '',
    path: v.path ?? '', save_on_stop: v.saveOnStop, snap_on_start: v.snapOnStart,
    revisions_to_keep: v.revisionsToKeep, ephemeral: v.ephemeral, is_outdated: await v.isOutdated(),
  };
}

/** `qvol volume config VM:VOL KEY VALUE`: rw, revisions_to_keep, ephemeral (spec §1.8, §7). */
async function setConfig(app: QvolApp, vm: string, v: Volume, key: string, value: string): Promise<void> {
  switch (key) {
    case 'rw':
      await app.requireHalted(vm);
      v.rw = parseBool(value);
      break;
    case 'revisions_to_keep': {
      const n = Number(value);
      if (!Number.isInteger(n) || n < -1) throw new QubesValueError('Invalid value for revisions_to_keep');
      if (n !== v.revisionsToKeep && (n === -1 || v.revisionsToKeep === -1)) await app.requireHalted(vm);
      v.revisionsToKeep = n;
      break;
    }
    case 'ephemeral':
      v.ephemeral = parseBool(value);
      break;
    default:
      throw new UsageError(`Unknown volume setting '${key}': use rw, revisions_to_keep or ephemeral.`);
  }
  await app.saveVolume(vm);
}

export function volumeCommand(io: CliIo): Command {
  const volume = new Command('volume').summary('volumes: inspect, revisions, revert, resize, export, import')
    .description('Volumes are named VM:VOLUME, such as work:private.');

  volume.command('ls').alias('list').argument('[vm]', 'only this VM\'s volumes').description('List volumes.').option('--json', 'print as JSON')
    .action(async (vmName: string | undefined, flags: { json?: boolean }) => {
      const rows = await openApp(io, async (app) => {
        const vms = vmName ? [app.getVm(vmName)] : app.listVms();
        const out: Array<Record<string, string | number | boolean>> = [];
        for (const vm of vms) for (const v of app.volumesOf(vm.name).values()) out.push({ vm: vm.name, ...(await info(v)) });
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
      const result = await openApp(io, async (app) => info(app.getVolume(vm, name)));
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
      await openApp(io, async (app) => {
        await app.requireHalted(vm);
        await app.getVolume(vm, name).revert(revision);
        await app.saveVolume(vm);
      });
      if (flags.json) printJson(io, { reverted: ref, revision: revision ?? 'latest' });
      else io.stdout.write(`${ref} reverted to ${revision ?? 'the latest revision'}\n`);
    });

  volume.command('resize').argument('<vm:volume>', 'volume').argument('<size>', 'new size (10G, 512M); shrinking truncates')
    .description('Resize a volume; a running volume is resized in place.')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, sizeText: string, flags: { json?: boolean }) => {
      const [vm, name] = parseVolumeRef(ref);
      const size = volumeSize(sizeText);
      await openApp(io, async (app) => {
        await app.getVolume(vm, name).resize(size);
        await app.saveVolume(vm);
      });
      if (flags.json) printJson(io, { volume: ref, size });
      else io.stdout.write(`${ref} resized to ${formatBytes(size)}\n`);
    });

  volume.command('config').argument('<vm:volume>', 'volume').argument('<key>', 'rw | revisions_to_keep | ephemeral').argument('<value>', 'new value')
    .description('Change a volume setting.').option('--json', 'print the result as JSON')
    .action(async (ref: string, key: string, value: string, flags: { json?: boolean }) => {
      const [vm, name] = parseVolumeRef(ref);
      await openApp(io, (app) => setConfig(app, vm, app.getVolume(vm, name), key, value));
      if (flags.json) printJson(io, { volume: ref, [key]: value });
      else io.stdout.write(`${ref} ${key}=${value}\n`);
    });

  volume.addCommand(exportCommand(io));
  volume.addCommand(importCommand(io, volumeSize));
  return volume;
}
