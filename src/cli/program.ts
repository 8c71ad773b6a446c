/**
 * The `qvol` command line: one commander program whose verbs each call one library
 * function. `runCli` never exits the process, so tests drive it directly.
 */
import { Command } from 'commander';
import { copyCommand } from './commands/copy.js';
import { demoCommand } from './commands/demo.js';
import { poolCommand } from './commands/pool.js';
import { recoverCommand } from './commands/recover.js';
import { vmCommand } from './commands/vm.js';
import { volumeCommand } from './commands/volume.js';
import { prose, reportError, type CliIo } from './output.js';
import { VERSION } from '../version.js';

export function buildProgram(io: CliIo): Command {
  const program = new Command('qvol')
    .description('VM volume storage: pools of volumes, copies and streams at device speed.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  for (const cmd of [poolCommand(io), vmCommand(io), volumeCommand(io), copyCommand(io), recoverCommand(io), demoCommand(io)]) program.addCommand(cmd);
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput(program.configureOutput()).description(prose(cmd.description()));
    cmd.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

/** Runs one command line (without node and script) and returns the exit status. */
export async function runCli(args: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(io, err, args.includes('--json'));
  }
}
