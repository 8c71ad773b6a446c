import { Command, Option } from 'commander';
import type { ArchivePassphrase, Compression } from '../../backup/archive.js';
import { PassphraseError, UsageError } from '../../errors/index.js';
import { formatBytes, parseSize } from '../../util/size.js';
import { openApp, table } from '../context.js';
import { ReportedFailure, printJson, type CliIo } from '../output.js';
import { fromTerminal } from '../passphrase-prompt.js';
import { progressBar } from '../progress.js';

interface Common {
  passphraseCommand?: string;
  acceptRollback?: boolean;
  json?: boolean;
  progress?: boolean;
  checkIds?: boolean;
}

/**
 * The archive's passphrase: the output of --passphrase-command or
 * QVOL_BACKUP_PASSPHRASE_COMMAND, else the terminal (asked twice for a new one); never an
 * argument or a variable holding the passphrase itself.
 */
function archivePassphrase(command: string | undefined): ArchivePassphrase | undefined {
  const cmd = command ?? process.env.QVOL_BACKUP_PASSPHRASE_COMMAND;
  if (cmd) {
    return async () => {
      const { run } = await import('../../util/exec.js');
      return run('/bin/sh', ['-c', cmd], { timeoutMs: 600_000 }).catch((err: unknown) => {
        throw new PassphraseError('NO_PASSPHRASE', `The passphrase command failed (${(err as Error).message}): check it by running it by hand.`, { cause: err });
      });
    };
  }
  if (!process.stdin.isTTY) return undefined;
  return async ({ archive, confirm }) => {
    const first = await fromTerminal(`Passphrase for the archive in ${archive}: `);
    if (confirm && (await fromTerminal('The same passphrase again: ')) !== first) {
      throw new PassphraseError('BAD_PASSPHRASE', 'The two passphrases differ: nothing was written; try again.');
    }
    return first;
  };
}

function parseCompression(text: string): Compression {
  if (text === 'none') return { codec: 'none' };
  const m = /^zstd(?::(-?\d+))?$/.exec(text);
  const level = m ? Number(m[1] ?? 3) : NaN;
  if (!m || level < -7 || level > 22 || level === 0) throw new UsageError(`Invalid compression '${text}': use zstd, zstd:LEVEL (1 to 22, or -7 to -1 for faster) or none.`);
  return { codec: 'zstd', level };
}

const checkIdsOption = () => new Option('--check-ids', 'also hash every chunk to its id, as verify --data does (each chunk is authenticated either way: its tag binds its id; it costs about 60 % more CPU)');

const passphraseOption = () => new Option('--passphrase-command <cmd>', 'a command whose output is the passphrase (default: $QVOL_BACKUP_PASSPHRASE_COMMAND, else ask on the terminal)');

export function backupCommand(io: CliIo): Command {
  const backup = new Command('backup').summary('encrypted, deduplicated, incremental backups of VMs: init, send, ls, restore, verify').description(
    'An archive in a directory holds sessions: each send stores the VMs named, their registry\n' +
      'entries and the data of their volumes that keep data (save_on_stop), cut in fixed chunks,\n' +
      'each stored once across VMs and sessions, compressed, encrypted and authenticated\n' +
      '(XChaCha20-Poly1305, keys from the passphrase by Argon2id). Only what changed since the\n' +
      'last send is stored again. docs/archive-format.md is the format; contrib/qvol-extract.py\n' +
      'restores a volume from it without qvol.');
  const access = (dest: string, f: Common) => ({
    dest,
    passphrase: archivePassphrase(f.passphraseCommand),
    acceptRollback: f.acceptRollback === true,
    checkIds: f.checkIds === true,
    warn: (m: string) => io.stderr.write(`qvol: warning: ${m}\n`),
    ...(io.signal ? { signal: io.signal } : {}),
  });

  backup.command('init').argument('<dest>', 'directory for the archive (made if missing; must be empty)')
    .description('Make a new archive.')
    .option('--chunk-size <size>', 'chunk size, a power of two from 64K to 4M', '1M')
    .option('--compression <codec>', 'zstd, zstd:LEVEL or none', 'zstd:3')
    .addOption(new Option('--encrypt <when>', 'on (default) or off: off stores everything readable by anyone').choices(['on', 'off']).default('on'))
    .addOption(passphraseOption())
    .option('--json', 'print the archive as JSON')
    .action(async (dest: string, f: Common & { chunkSize: string; compression: string; encrypt: 'on' | 'off' }) => {
      const { backupInit } = await import('../../app/backup.js');
      const r = await backupInit(dest, {
        chunkSize: parseSize(f.chunkSize, '--chunk-size'),
        compression: parseCompression(f.compression),
        encrypt: f.encrypt === 'on',
        passphrase: archivePassphrase(f.passphraseCommand),
      });
      if (f.json) printJson(io, r);
      else io.stdout.write(`archive ${r.id} made in ${dest}: ${formatBytes(r.chunkSize)} chunks, ${r.compression}, ${r.encrypted ? 'encrypted' : 'NOT encrypted'}\n`);
    });

  backup.command('send').argument('<dest>', 'the archive').argument('[vm...]', 'VMs to back up')
    .description('Back up VMs into the archive as one session; only chunks the archive does not hold are stored.')
    .option('--all', 'every VM')
    .option('--tag <tag>', 'a label for the session')
    .addOption(passphraseOption())
    .option('--accept-rollback', 'accept an archive older than the newest this host has seen')
    .option('--no-progress', 'no progress bar on a terminal')
    .option('--json', 'print the result as JSON')
    .action(async (dest: string, vms: string[], f: Common & { all?: boolean; tag?: string }) => {
      const bar = progressBar(io, 'backup', f.progress !== false && !f.json);
      const started = Date.now();
      const r = await openApp(io, async (app) => {
        const { backupSend } = await import('../../app/backup.js');
        return backupSend(app, access(dest, f), {
          vms, all: f.all === true, tag: f.tag,
          onProgress: (_vm, _vol, done, total) => {
            const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
            bar.update({ done, total, rate, etaSeconds: rate > 0 ? (total - done) / rate : undefined });
          },
        });
      }).finally(() => bar.done());
      if (f.json) printJson(io, r);
      else {
        io.stdout.write(table(['VM', 'VOLUME', 'SIZE', 'CHUNKS', 'ZERO', 'NEW', 'STORED'], r.vms.flatMap((vm) => vm.volumes.map((v) =>
          [vm.name, v.name, formatBytes(v.size), String(v.chunks), String(v.zero), String(v.new), formatBytes(v.newBytes)]))));
        io.stdout.write(`session ${r.session} (generation ${r.generation}): ${r.packs} packs, ${formatBytes(r.bytesStored)} stored in ${r.seconds.toFixed(2)} s\n`);
      }
    });

  backup.command('ls').argument('<dest>', 'the archive').argument('[vm]', 'only sessions holding this VM')
    .description('List the sessions: when, which VMs and volumes, what each stored anew.')
    .addOption(passphraseOption())
    .option('--accept-rollback', 'accept an archive older than the newest this host has seen')
    .option('--tag <tag>', 'only sessions sent with this --tag')
    .option('--json', 'print the sessions as JSON')
    .action(async (dest: string, vm: string | undefined, f: Common & { tag?: string }) => {
      const sessions = await openApp(io, async (app) => (await import('../../app/backup.js')).backupList(app, access(dest, f)));
      const shown = sessions.filter((s) => (vm === undefined || s.vms.some((v) => v.name === vm)) && (f.tag === undefined || s.tag === f.tag));
      if (f.json) printJson(io, shown);
      else {
        io.stdout.write(table(['SESSION', 'TIME', 'TAG', 'VM', 'VOLUMES', 'NEW'], shown.flatMap((s) => s.vms.filter((v) => vm === undefined || v.name === vm).map((v) =>
          [s.id.slice(0, 12), s.time, s.tag ?? '-', v.name, v.volumes.map((x) => `${x.name} ${formatBytes(x.size)}`).join(', '), formatBytes(v.volumes.reduce((n, x) => n + x.newBytes, 0))]))));
      }
    });

  backup.command('restore').argument('<dest>', 'the archive').argument('[vm...]', 'VMs to restore (default: every VM of the session)')
    .description('Recreate VMs from the archive, templates first, each volume through its pool\'s import path (holes stay holes). An existing VM is not overwritten unless --replace; a VM that fails part way is removed again.')
    .option('--session <id>', 'a session (its id or a prefix); default: the newest backup of each VM')
    .option('-P, --pool <pool>', 'the pool for the restored volumes (default: the pool "default")')
    .option('--rename <old=new...>', 'restore VM old as new', (v: string, acc: string[] = []) => [...acc, v])
    .option('--replace', 'a VM that exists (halted, same class) gets the backup\'s data in its volumes, each committed whole as an import, its former data kept as a revision where the volume keeps them; its settings, template and pools stay')
    .option('--verify-only', 'read and check everything the restore would write (every chunk authenticated and hashed to its id), and write nothing')
    .addOption(checkIdsOption())
    .addOption(passphraseOption())
    .option('--accept-rollback', 'accept an archive older than the newest this host has seen')
    .option('--no-progress', 'no progress bar on a terminal')
    .option('--json', 'print the result as JSON')
    .action(async (dest: string, vms: string[], f: Common & { session?: string; pool?: string; rename?: string[]; verifyOnly?: boolean; replace?: boolean }) => {
      const rename = new Map<string, string>();
      for (const r of f.rename ?? []) {
        const [from, to] = r.split('=');
        if (!from || !to) throw new UsageError(`Invalid --rename '${r}': write it as OLD=NEW.`);
        rename.set(from, to);
      }
      const bar = progressBar(io, 'restore', f.progress !== false && !f.json);
      const started = Date.now();
      const r = await openApp(io, async (app) => (await import('../../app/backup.js')).backupRestore(app, access(dest, f), {
        vms, session: f.session, pool: f.pool, rename, verifyOnly: f.verifyOnly === true, replace: f.replace === true,
        onProgress: (_vm, _vol, done, total) => {
          const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
          bar.update({ done, total, rate, etaSeconds: rate > 0 ? (total - done) / rate : undefined });
        },
      })).finally(() => bar.done());
      if (f.json) printJson(io, r);
      else {
        const done = r.verifyOnly ? 'checked, nothing written' : 'restored';
        for (const vm of r.vms) io.stdout.write(`VM ${vm.name} ${vm.replaced ? 'replaced' : done}${vm.from !== vm.name ? ` (from ${vm.from})` : ''}: ${vm.volumes.map((v) => `${v.name} ${formatBytes(v.size)} (${formatBytes(v.written)} of data)`).join(', ')}\n`);
        io.stdout.write(`${r.verifyOnly ? 'checked' : 'restored'} ${r.vms.length} VM${r.vms.length === 1 ? '' : 's'} in ${r.seconds.toFixed(2)} s\n`);
      }
    });

  backup.command('verify').argument('<dest>', 'the archive')
    .description('Check every object the archive\'s current root reaches (and with --data every chunk): each problem is named; exit status 1 if there is one.')
    .option('--data', 'also read, decrypt and hash every chunk')
    .option('--repair-index', 'first rebuild the index from the packs\' own headers (after an index object was lost or damaged), then verify')
    .addOption(passphraseOption())
    .option('--accept-rollback', 'accept an archive older than the newest this host has seen')
    .option('--json', 'print the result as JSON')
    .action(async (dest: string, f: Common & { data?: boolean; repairIndex?: boolean }) => {
      const r = await openApp(io, async (app) => (await import('../../app/backup.js')).backupVerify(app, access(dest, f), {
        data: f.data === true,
        repairIndex: f.repairIndex === true,
        onRepaired: (repair) => {
          if (f.json) return;
          io.stdout.write(`index rebuilt from ${repair.packs} packs: ${repair.blobs} blobs in ${repair.indexObjects} index object${repair.indexObjects === 1 ? '' : 's'} (generation ${repair.generation})\n`);
          for (const u of repair.unreadable) io.stderr.write(`qvol: warning: left out of the index: ${u.message}\n`);
        },
      }));
      if (f.json) printJson(io, r);
      else {
        io.stdout.write(`generation ${r.generation}: ${r.sessions} sessions, ${r.volumes} volumes${f.data ? `, ${r.chunksChecked} chunks (${formatBytes(r.bytesChecked)}) read and checked` : ''}\n`);
        for (const p of r.problems) io.stderr.write(`qvol: ${p.message}\n`);
      }
      if (r.problems.length > 0) {
        if (f.json) throw new ReportedFailure(1); // the document lists them
        const { ArchiveError } = await import('../../errors/index.js');
        throw new ArchiveError('ARCHIVE_CORRUPT', `verify found ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} in ${dest} (above).`, { path: dest });
      }
    });

  backup.command('cat').argument('<dest>', 'the archive').argument('<vm:volume>', 'the volume')
    .description('Write one volume of a backup: to a file (made whole; raw, it is a sparse file), or in place to a pipe, terminal or device (default: standard output).')
    .option('--session <id>', 'a session (its id or a prefix); default: the newest backup of the VM')
    .addOption(new Option('-f, --format <format>', 'raw: the plain bytes, zeros included on a stream; sparse: an Android sparse image, holes 12 bytes each (what `qvol volume import -f sparse` reads)').choices(['raw', 'sparse']).default('raw'))
    .option('-o, --output <path>', 'where to write (default: standard output)')
    .addOption(checkIdsOption())
    .addOption(passphraseOption())
    .option('--accept-rollback', 'accept an archive older than the newest this host has seen')
    .action(async (dest: string, ref: string, f: Common & { session?: string; output?: string; format: 'raw' | 'sparse' }) => {
      const { parseVolumeRef } = await import('../context.js');
      const [vm, volume] = parseVolumeRef(ref);
      const { catToOutput } = await import('./backup-cat.js');
      await openApp(io, async (app) => catToOutput(app, access(dest, f), vm, volume, f.session, f.output, f.format));
    });

  backup.command('prune').argument('<dest>', 'the archive')
    .description('Remove the sessions a keep policy does not keep (per VM) and the packs nothing kept references; a pack less than half of which is still used has its used chunks copied into new packs first, so its space comes back too. Also removes what interrupted sends left.')
    .option('--keep-last <n>', 'the newest N sessions of each VM', Number)
    .option('--keep-daily <n>', 'the newest session of each of the last N days with one', Number)
    .option('--keep-weekly <n>', 'the same per week', Number)
    .option('--keep-monthly <n>', 'the same per month', Number)
    .option('--dry-run', 'say what would go, remove nothing')
    .addOption(passphraseOption())
    .option('--accept-rollback', 'accept an archive older than the newest this host has seen')
    .option('--json', 'print the result as JSON')
    .action(async (dest: string, f: Common & { keepLast?: number; keepDaily?: number; keepWeekly?: number; keepMonthly?: number; dryRun?: boolean }) => {
      const r = await openApp(io, async (app) => (await import('../../app/backup.js')).backupPrune(app, access(dest, f), {
        last: f.keepLast, daily: f.keepDaily, weekly: f.keepWeekly, monthly: f.keepMonthly,
      }, f.dryRun === true));
      if (f.json) printJson(io, r);
      else {
        const moved = r.packsRepacked > 0 ? `, of which ${r.packsRepacked} mostly garbage, whose live ${formatBytes(r.bytesMoved)} ${r.dryRun ? 'would move' : 'moved'} to new packs` : '';
        io.stdout.write(`${r.dryRun ? 'would remove' : 'removed'} ${r.sessionsRemoved.length} sessions and ${r.packsRemoved} packs${moved} (${formatBytes(r.bytesFreed)} freed); ${r.sessionsKept} sessions kept\n`);
      }
    });

  backup.command('passwd').argument('<dest>', 'the archive')
    .description('Change the archive\'s passphrase: the master key is wrapped anew; no data is rewritten.')
    .addOption(passphraseOption())
    .option('--new-passphrase-command <cmd>', 'a command whose output is the new passphrase (default: ask on the terminal)')
    .option('--json', 'print the result as JSON')
    .action(async (dest: string, f: Common & { newPassphraseCommand?: string }) => {
      const fresh = f.newPassphraseCommand ? archivePassphrase(f.newPassphraseCommand) : process.stdin.isTTY ? archivePassphrase(undefined) : undefined;
      if (!fresh) throw new UsageError('Give the new passphrase with --new-passphrase-command, or run on a terminal.');
      await (await import('../../app/backup.js')).backupPasswd(access(dest, f), fresh);
      if (f.json) printJson(io, { archive: dest, passphraseChanged: true });
      else io.stdout.write(`passphrase of ${dest} changed\n`);
    });

  return backup;
}
