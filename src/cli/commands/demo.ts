import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { formatBytes } from '../../util/size.js';
import { openApp, table } from '../context.js';
import type { CliIo } from '../output.js';

/** Writes `text` at `offset` of an image, as the VM using it would. */
async function vmWrites(path: string, offset: number, text: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(Buffer.from(text), 0, text.length, offset);
  } finally {
    await fh.close();
  }
}

export function demoCommand(io: CliIo): Command {
  return new Command('demo')
    .summary('a guided tour: a template and an app VM on the embedded default pool')
    .description('Creates a template and an app VM in a fresh QVOL_HOME (the pool "default" is made\n' +
      'there), starts them, writes into their volumes as a VM would, stops them, and shows\n' +
      'revisions, usage and the timings; then backs both up into an encrypted archive, sends\n' +
      'again after a change, and restores one into another pool. Removes everything at the\n' +
      'end unless --keep.')
    .option('--home <dir>', 'where to keep the demo\'s state (default: a new directory in /var/tmp)')
    .option('--keep', 'leave the demo\'s VMs and pool in place')
    .action(async (flags: { home?: string; keep?: boolean }) => {
      const home = flags.home ?? (await mkdtemp('/var/tmp/qvol-demo-'));
      const say = (s: string) => io.stdout.write(`${s}\n`);
      const indented = (text: string) => say(text.trimEnd().replace(/^/gm, '  '));
      const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
        const t0 = process.hrtime.bigint();
        const out = await fn();
        say(`  ${what} (${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms)`);
        return out;
      };
      say(`qvol demo in ${home}`);
      try {
        await openApp(io, async (app) => {
          say('\n1. a template VM (root 10 GiB, private 2 GiB, volatile 10 GiB: sparse, nothing allocated)');
          await timed('created template debian', () => app.createVm('debian', 'template'));
          say('\n2. the template runs once and installs software into its root');
          const started = await timed('started debian', () => app.startVm('debian'));
          await vmWrites(started[0]!.path, 0, 'debian root, version 1');
          await timed('stopped debian: root committed, the old state kept as revision 1', () => app.stopVm('debian'));
          say('\n3. an app VM: its root is a snapshot of the template\'s, its private its own');
          await timed('created app VM work', () => app.createVm('work', 'app', { template: 'debian' }));
          const devices = await timed('started work', () => app.startVm('work'));
          indented(table(['VOLUME', 'FRONTEND', 'PATH'], devices.map((d) => [d.volume, d.frontend, d.path])));
          await vmWrites(devices[1]!.path, 4096, 'my documents');
          await timed('stopped work: private committed, root snapshot discarded', () => app.stopVm('work'));
          say('\n4. revisions and usage');
          const rows: string[][] = [];
          for (const vm of ['debian', 'work']) {
            for (const v of app.volumesOf(vm).values()) {
              const revs = v.saveOnStop ? [...(await v.revisions()).keys()].join(',') || '-' : '-';
              rows.push([`${vm}:${v.name}`, v.type, formatBytes(v.size), formatBytes(await v.usage()), revs]);
            }
          }
          indented(table(['VOLUME', 'TYPE', 'SIZE', 'ALLOCATED', 'REVISIONS'], rows));
          say('\n5. the template runs again (revision 2), and its root is reverted to the state before');
          await app.startVm('debian');
          await app.stopVm('debian');
          say(`  debian:root revisions: ${[...(await app.getVolume('debian', 'root').revisions()).keys()].join(', ')}`);
          await timed('reverted debian:root to its previous revision', () => app.getVolume('debian', 'root').revert());

          say('\n6. a backup: an encrypted archive of both VMs, a change, an incremental send, a restore into another pool');
          const { backupInit, backupSend, backupRestore } = await import('../../app/backup.js');
          const dest = join(home, 'archive');
          // The demo's passphrase is 'demo'; `qvol backup` asks on the terminal or runs --passphrase-command.
          const access = { dest, passphrase: async () => 'demo', warn: (m: string) => say(`  note: ${m}`) };
          await timed(`made an encrypted archive in ${dest} (passphrase 'demo')`, () => backupInit(dest, { chunkSize: 2 ** 20, compression: { codec: 'zstd', level: 3 }, encrypt: true, passphrase: access.passphrase }));
          const stored = (r: Awaited<ReturnType<typeof backupSend>>) => { const n = r.vms.flatMap((v) => v.volumes).filter((v) => v.read).length; return `${n} volume${n === 1 ? '' : 's'} read, ${formatBytes(r.bytesStored)} stored`; };
          const first = await timed('sent debian and work', () => backupSend(app, access, { vms: ['debian', 'work'] }));
          say(`    ${stored(first)}`);
          const again = await app.startVm('work');
          await vmWrites(again[1]!.path, 8192, 'more documents');
          await app.stopVm('work');
          const second = await timed('sent again after work wrote to its private', () => backupSend(app, access, { vms: ['debian', 'work'] }));
          say(`    ${stored(second)} (debian unchanged: not read at all)`);
          await app.addPool({ name: 'spare', driver: 'file-reflink', dir_path: join(home, 'spare'), setup_check: false });
          const restored = await timed('restored work as work-restored into the pool spare', () => backupRestore(app, access, { vms: ['work'], pool: 'spare', rename: new Map([['work', 'work-restored']]) }));
          say(`    ${restored.vms.map((v) => v.volumes.map((x) => `${v.name}:${x.name} ${formatBytes(x.size)} (${formatBytes(x.written)} of data)`).join(', ')).join('; ')}`);
        }, { home, warn: (m) => say(`  note: ${m}`) });
        say(flags.keep || flags.home ? `\ndone. Look around: QVOL_HOME=${home} qvol vm ls` : '\ndone (run with --keep to leave the demo in place).');
      } finally {
        if (!flags.keep && !flags.home) await rm(home, { recursive: true, force: true });
      }
    });
}
