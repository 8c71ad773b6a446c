import { Command } from 'commander';
import { UsageError } from '../../errors/index.js';
import { formatBytes } from '../../util/size.js';
import { openApp, table } from '../context.js';
import { printJson, type CliIo } from '../output.js';

function parseOptions(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const pair of pairs) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new UsageError(`Invalid option '${pair}': write it as key=value, such as dir_path=/srv/qvol.`);
    const key = pair.slice(0, i);
    if (Object.hasOwn(out, key)) throw new UsageError(`Option ${key} is given twice.`);
    out[key] = pair.slice(i + 1);
  }
  return out;
}

export function poolCommand(io: CliIo): Command {
  const pool = new Command('pool').summary('storage pools: add, list, inspect, set, remove').description(
    'A pool is a place for volumes, served by a driver. The first command that needs one\n' +
      'creates the pool "default" (file-reflink) under QVOL_HOME.');

  pool.command('add').argument('<name>', 'pool name').argument('<driver>', 'driver (see qvol pool drivers)')
    .description('Create and set up a pool. Options are key=value, as in qvm-pool.')
    .option('-o, --option <key=value>', 'a driver option; repeat for several', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--json', 'print the pool as JSON')
    .addHelpText('after', [
      '', 'Examples:',
      '  qvol pool add fast file-reflink -o dir_path=/srv/fast',
      '  qvol pool add slow file-reflink -o dir_path=/mnt/ext4/qvol -o setup_check=False',
      '  qvol pool add tank zfs_zvol -o container=tank/qubes',
      '  qvol pool add new zfs_zvol -o zpool_name=fast -o block_devices=/dev/nvme1n1',
      '  qvol pool add secret zfs_encrypted -o zpool_name=tank -o passphrase_command=systemd-ask-password -o unload_timeout=600',
    ].join('\n'))
    .action(async (name: string, driver: string, flags: { option: string[]; json?: boolean }) => {
      const config = await openApp(io, async (app) => (await app.addPool({ ...parseOptions(flags.option), name, driver })).config);
      if (flags.json) printJson(io, config);
      else io.stdout.write(`pool ${name} added (${driver})\n`);
    });

  pool.command('ls').alias('list').description('List the pools.').option('--json', 'print as JSON')
    .action(async (flags: { json?: boolean }) => {
      const rows = await openApp(io, async (app) => Promise.all([...app.pools.values()].map(async (p) => ({
        name: p.name, driver: p.driver, config: p.config, size: await p.size(), usage: await p.usage(),
      }))));
      if (flags.json) printJson(io, rows);
      else io.stdout.write(table(['NAME', 'DRIVER', 'SIZE', 'USED'], rows.map((r) => [r.name, r.driver,
        r.size === undefined ? '-' : formatBytes(r.size), r.usage === undefined ? '-' : formatBytes(r.usage)])));
    });

  pool.command('info').argument('<name>', 'pool name').description('Show a pool\'s options and usage.').option('--json', 'print as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      const info = await openApp(io, async (app) => {
        const p = app.getPool(name);
        return { ...p.config, ...(await p.usageDetails()) };
      });
      if (flags.json) printJson(io, info);
      else io.stdout.write(Object.entries(info).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${String(v)}\n`).join(''));
    });

  pool.command('set').argument('<name>', 'pool name').argument('<key>', 'revisions_to_keep | ephemeral_volatile').argument('<value>', 'new value')
    .description('Change a pool setting, as qvm-pool set does. Volumes with no value of their own follow it.')
    .option('--json', 'print the pool as JSON')
    .addHelpText('after', [
      '', 'Settings:',
      '  revisions_to_keep   revisions each new volume keeps (-1: none, and no snapshots of a running VM)',
      '  ephemeral_volatile  true: writable volatile volumes (swap, root\'s changes) are encrypted with a',
      '                      key made at each start and forgotten at stop (dm-crypt aes-xts-plain64)',
      '', 'Example:', '  qvol pool set default ephemeral_volatile true',
    ].join('\n'))
    .action(async (name: string, key: string, value: string, flags: { json?: boolean }) => {
      const config = await openApp(io, async (app) => (await app.setPoolConfig(name, key, value)).config);
      if (flags.json) printJson(io, config);
      else io.stdout.write(`pool ${name}: ${key}=${String(config[key])}\n`);
    });

  pool.command('rm').alias('remove').argument('<name>', 'pool name')
    .description('Forget a pool that no volume uses. Its directory and images are left where they are.')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, flags: { json?: boolean }) => {
      await openApp(io, (app) => app.removePool(name));
      if (flags.json) printJson(io, { removed: name });
      else io.stdout.write(`pool ${name} removed\n`);
    });

  pool.command('drivers').description('List the drivers and their options (* = required).').option('--json', 'print as JSON')
    .action(async (flags: { json?: boolean }) => {
      const drivers = await openApp(io, async (app) => app.driverOptions());
      if (flags.json) printJson(io, drivers);
      else for (const d of drivers) io.stdout.write(`${d.driver} ${Object.entries(d.options).map(([k, req]) => (req ? `${k}*` : k)).join(' ')}\n`);
    });
  return pool;
}
