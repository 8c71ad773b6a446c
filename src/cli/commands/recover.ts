import { Command } from 'commander';
import { QvolError } from '../../errors/index.js';
import { openApp } from '../context.js';
import { ReportedFailure, errorRecord, printJson, type CliIo } from '../output.js';

export function recoverCommand(io: CliIo): Command {
  return new Command('recover')
    .summary('after a crash or reboot: commit what VMs left uncommitted')
    .description('Stops the storage of every VM that is not running (no running marker of this\nboot), as Qubes does at startup: uncommitted state is committed, snapshots removed. A VM\nthat a crashed create or clone left half made is removed. A VM that fails does not stop\nthe others: every failure is reported at the end, and the exit status is then 1.')
    .option('--json', 'print the result as JSON')
    .action(async (flags: { json?: boolean }) => {
      const r = await openApp(io, (app) => app.recover());
      const failed = r.failed.map(({ vm, error }) => {
        const { code, message, path } = errorRecord(error);
        return { vm, code, message, ...(path === undefined ? {} : { path }) };
      });
      if (flags.json) printJson(io, { committed: r.committed, removed: r.removed, failed });
      else {
        const lines = [
          ...(r.committed.length ? [`committed uncommitted state of: ${r.committed.join(', ')}`] : []),
          ...(r.removed.length ? [`removed half-made VMs: ${r.removed.join(', ')}`] : []),
        ];
        io.stdout.write(lines.length ? `${lines.join('\n')}\n` : failed.length ? '' : 'nothing to recover\n');
        for (const f of failed) io.stderr.write(`qvol: VM ${f.vm}: ${f.message}\n`);
      }
      if (failed.length > 0) {
        if (flags.json) throw new ReportedFailure(1); // the document above lists them
        throw new QvolError('RECOVER_INCOMPLETE', `recover could not finish ${failed.map((f) => f.vm).join(', ')}: see the errors above, fix them and run it again.`);
      }
    });
}
