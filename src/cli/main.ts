#!/usr/bin/env node
import { runCli } from './program.js';

// A reader that goes away (`qvol volume ls | head -1`) ends our output quietly, as it ends
// any Unix tool's, instead of with a stack trace. (A stream export reports its own EPIPE.)
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await runCli(process.argv.slice(2));
