/**
 * The `qvol` command line: one commander program whose verbs each call one library
 * function. `runCli` never exits the process, so tests drive it directly.
 */
import { Command } from 'commander';
import { prose, reportError, type CliIo } from './output.js';
import { VERSION } from '../version.js';

/** The verbs, in the order help lists them; each module is loaded only when needed. */
const VERBS: Record<string, (io: CliIo) => Promise<Command>> = {
  pool: async (io) => (await import('./commands/pool.js')).poolCommand(io),
  vm: async (io) => (await import('./commands/vm.js')).vmCommand(io),
  volume: async (io) => (await import('./commands/volume.js')).volumeCommand(io),
  copy: async (io) => (await import('./commands/copy.js')).copyCommand(io),
  backup: async (io) => (await import('./commands/backup.js')).backupCommand(io),
  recover: async (io) => (await import('./commands/recover.js')).recoverCommand(io),
  daemon: async (io) => (await import('./commands/daemon.js')).daemonCommand(io),
  demo: async (io) => (await import('./commands/demo.js')).demoCommand(io),
};

/**
 * The program for `args`: when they start with a verb, only that verb is defined (a CLI
 * pays its start-up on every command); otherwise (help, a typo) every verb is.
 */
export async function buildProgram(io: CliIo, args: string[] = []): Promise<Command> {
  const program = new Command('qvol')
    .description('VM volume storage: pools of volumes, copies and streams at device speed.')
    .version(VERSION)
    .option('--qubes-xml <path>', "read the pools and VMs from Qubes' qubes.xml, changing nothing there (default: /var/lib/qubes/qubes.xml where it exists; 'none': qvol's own registry)")
    .hook('preAction', (root) => {
      const given = (root.opts() as { qubesXml?: string }).qubesXml;
      if (given !== undefined) io.qubesXml = given;
    })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  const verb = args[0];
  const names = verb !== undefined && Object.hasOwn(VERBS, verb) ? [verb] : Object.keys(VERBS);
  for (const cmd of await Promise.all(names.map((name) => VERBS[name]!(io)))) program.addCommand(cmd);
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput(program.configureOutput()).description(prose(cmd.description()));
    cmd.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

/** Runs one command line (without node and script) and returns the exit status. */
export async function runCli(args: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    const program = await buildProgram(io, args);
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(io, err, args.includes('--json'));
  }
}
