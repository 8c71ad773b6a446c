import { Command } from 'commander';
import { openApp } from '../context.js';
import { printJson, type CliIo } from '../output.js';

export function recoverCommand(io: CliIo): Command {
  return new Command('recover')
    .summary('after a crash or reboot: commit what VMs left uncommitted')
    .description('Stops the storage of every VM that is not running (no running marker of this\nboot), as Qubes does at startup: uncommitted state is committed, snapshots removed.')
    .option('--json', 'print the result as JSON')
    .action(async (flags: { json?: boolean }) => {
      const committed = await openApp(io, (app) => app.recover());
      if (flags.json) printJson(io, { committed });
      else io.stdout.write(committed.length ? `committed uncommitted state of: ${committed.join(', ')}\n` : 'nothing to recover\n');
    });
}
