import { Command, Option } from 'commander';
import type { VmClass } from '../../app/state.js';
import { UsageError } from '../../errors/index.js';
import { openApp, table } from '../context.js';
import { printJson, type CliIo } from '../output.js';

export function vmCommand(io: CliIo): Command {
  const vm = new Command('vm').summary('VMs: create, start, stop, clone, remove, list').description(
    'A VM is a set of volumes with the Qubes semantics of its class:\n' +
      '  template    root and private are origins (committed on stop, with revisions)\n' +
      '  app         root is a snapshot of its template\'s root; private is its own\n' +
      '  standalone  like a template, used on its own\n' +
      '  disp        root and private are snapshots of a disposable template (an app VM)\n' +
      'qvol prepares and commits storage; running the VM is the hypervisor\'s job.');

  vm.command('create').argument('<name>', 'VM name')
    .description('Create a VM and its volumes.')
    .addOption(new Option('--class <class>', 'VM class').choices(['template', 'app', 'standalone', 'disp']).makeOptionMandatory())
    .option('--template <vm>', 'the template (app) or disposable template (disp)')
    .option('-P, --pool <[volume=]pool>', 'the pool for its own volumes (default: the pool "default"), or with VOLUME= for one volume; repeatable', (v: string, acc: string[] = []) => [...acc, v])
    .option('--volatile-pool <pool>', 'the pool for its volatile volume, as -P volatile=POOL (a tmpfs or a fast disk: the data is discarded at every start and stop)')
    .option('--json', 'print the VM as JSON')
    .addHelpText('after', '\nA disposable VM\'s volatile volume goes to its template\'s volatile pool unless a pool is given.\n\nExamples:\n  qvol vm create --class template debian\n  qvol vm create --class app --template debian work\n  qvol vm create --class app --template debian --volatile-pool fast work')
    .action(async (name: string, flags: { class: VmClass; template?: string; pool?: string[]; volatilePool?: string; json?: boolean }) => {
      let pool: string | undefined;
      const volumePools: Record<string, string> = {};
      for (const p of flags.pool ?? []) {
        const eq = p.indexOf('=');
        if (eq < 0) {
          if (pool !== undefined) throw new UsageError(`Two pools for the VM's volumes (-P ${pool}, -P ${p}): give one, and VOLUME=POOL for the others.`);
          pool = p;
        } else {
          const [volume, named] = [p.slice(0, eq), p.slice(eq + 1)];
          if (!volume || !named || Object.hasOwn(volumePools, volume)) throw new UsageError(`Invalid -P ${p}: write VOLUME=POOL, once per volume.`);
          volumePools[volume] = named;
        }
      }
      if (flags.volatilePool !== undefined) {
        if (Object.hasOwn(volumePools, 'volatile')) throw new UsageError('Both --volatile-pool and -P volatile=...: give one.');
        volumePools.volatile = flags.volatilePool;
      }
      const record = await openApp(io, (app) => app.createVm(name, flags.class, {
        ...(flags.template ? { template: flags.template } : {}), ...(pool ? { pool } : {}), volumePools,
      }));
      if (flags.json) printJson(io, record);
      else io.stdout.write(`VM ${name} created (${flags.class}; volumes ${Object.keys(record.volumes).join(', ')})\n`);
    });

  vm.command('start').argument('<name>', 'VM name')
    .description('Prepare every volume for the VM\'s start and print the block devices to give it. An\n' +
      'ephemeral volume (see qvol pool set ... ephemeral_volatile) is given as its dm-crypt mapping,\n' +
      '/dev/mapper/vm-volatile-NAME-crypt@VOLUME, keyed afresh at every start.')
    .option('--json', 'print the devices as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      const devices = await openApp(io, (app) => app.startVm(name));
      if (flags.json) printJson(io, devices);
      else io.stdout.write(table(['VOLUME', 'FRONTEND', 'MODE', 'PATH'], devices.map((d) => [d.volume, d.frontend, `${d.rw ? 'rw' : 'ro'}${d.ephemeral ? ',ephemeral' : ''}`, d.path])));
    });

  vm.command('stop').argument('<name>', 'VM name')
    .description('Commit (save_on_stop) or discard every volume. Also commits what a crash left.')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      await openApp(io, (app) => app.stopVm(name));
      if (flags.json) printJson(io, { stopped: name });
      else io.stdout.write(`VM ${name} stopped\n`);
    });

  vm.command('rm').alias('remove').argument('<name>', 'VM name').description('Remove a stopped VM and all its volumes and revisions.')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      await openApp(io, (app) => app.removeVm(name));
      if (flags.json) printJson(io, { removed: name });
      else io.stdout.write(`VM ${name} removed\n`);
    });

  vm.command('ls').alias('list').description('List the VMs.').option('--json', 'print as JSON')
    .action(async (flags: { json?: boolean }) => {
      const vms = await openApp(io, async (app) => Promise.all(app.listVms().map(async (v) => ({ ...v, running: await app.isRunning(v.name) }))));
      if (flags.json) printJson(io, vms);
      else io.stdout.write(table(['NAME', 'CLASS', 'TEMPLATE', 'STATE'], vms.map((v) => [v.name, v.class, v.template ?? '-', v.running ? 'running' : 'halted'])));
    });

  vm.command('clone').argument('<src>', 'VM to clone').argument('<dst>', 'name of the new VM')
    .description('A new VM with the same class, template and data. Each volume takes the fastest\n' +
      'correct path, and the command says which: reflink (shared extents, same filesystem),\n' +
      'zfs clone (same zpool), zfs send/recv (another zpool), else the sparse copy engine from\n' +
      'the source\'s export to the target (copy_file_range, or sparse copy: holes never filled).')
    .option('-P, --pool <pool>', 'pool for the new VM\'s own volumes (default: the source\'s)')
    .option('--json', 'print the new VM as JSON, with how each volume\'s data came over')
    .action(async (src: string, dst: string, flags: { pool?: string; json?: boolean }) => {
      const { record, copied } = await openApp(io, (app) => app.cloneVm(src, dst, { ...(flags.pool ? { pool: flags.pool } : {}), ...(io.signal ? { signal: io.signal } : {}) }));
      if (flags.json) printJson(io, { ...record, copied });
      else io.stdout.write(`VM ${dst} cloned from ${src}${Object.keys(copied).length > 0 ? ` (${Object.entries(copied).map(([n, m]) => `${n}: ${m}`).join(', ')})` : ''}\n`);
    });
  return vm;
}
