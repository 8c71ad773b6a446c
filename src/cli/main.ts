#!/usr/bin/env node
import * as nodeModule from 'node:module';

// Node 22.1 and later keep the compiled code of our modules between runs: a CLI pays its
// start-up on every command. (Node 20 has no such cache; then this does nothing.)
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

// A reader that goes away (`qvol volume ls | head -1`) ends our output quietly, as it ends
// any Unix tool's, instead of with a stack trace. (A stream export reports its own EPIPE.)
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

// Imported after the cache is on, so that the program's modules come from it.
const { runCli } = await import('./program.js');
process.exitCode = await runCli(process.argv.slice(2));
