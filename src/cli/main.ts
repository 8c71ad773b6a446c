#!/usr/bin/env node
import * as nodeModule from 'node:module';

// Node 22.1 and later keep the compiled code of our modules between runs: a CLI pays its
// start-up on every command. (Node 20 has no such cache; then this does nothing.)
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

// `qvol --version` answers before the command line parser is loaded: a script that checks
// the version pays for one small module, not for commander and every verb's definition.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const { VERSION } = await import('../version.js');
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}

// A reader that goes away (`qvol volume ls | head -1`) ends our output quietly, as it ends
// any Unix tool's, instead of with a stack trace. (A stream export reports its own EPIPE.)
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

// Ctrl-C, SIGTERM and SIGHUP abort the command: a copy, export or import stops at its next
// buffer and removes what it made, a short verb finishes its durable step. The exit status
// is then 128 + the signal's number, as a shell reports it. A second signal, or a command
// still running five seconds later, ends the process at once.
const controller = new AbortController();
let caught: NodeJS.Signals | undefined;
const { exitStatusOfSignal, CancelledError } = await import('../errors/index.js');
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (caught) process.exit(exitStatusOfSignal(caught));
    caught = signal;
    controller.abort(new CancelledError(`Stopped by ${signal}: nothing was left half done.`));
    setTimeout(() => process.exit(exitStatusOfSignal(signal)), 5000).unref();
  });
}

// Imported after the cache is on, so that the program's modules come from it.
const { runCli } = await import('./program.js');
const status = await runCli(args, { stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
process.exitCode = caught ? exitStatusOfSignal(caught) : status;
