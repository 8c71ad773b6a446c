/**
 * Scratch directories under the system's temporary directory that go when the test file
 * ends, passed or failed: a test run leaves nothing of its own on disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

// Imported while vitest collects a test file, so this hook belongs to that file.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new directory `qvol-<prefix>-XXXXXX`, removed when the test file ends. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `qvol-${prefix}-`));
  made.push(dir);
  return dir;
}
