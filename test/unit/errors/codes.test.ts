/** One table of error codes: every code raised in src/ is in it, with its exit status. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, QubesValueError, QvolError, StoragePoolException, UnsupportedFormatError, UsageError, exitStatusOfSignal } from '../../../src/errors/index.js';

const src = join(import.meta.dirname, '..', '..', '..', 'src');

function codesRaised(): Set<string> {
  const found = new Set<string>();
  const raising = /(?:QvolError|super|CopyError|StreamError|PassphraseError)\(\s*'([A-Z][A-Z_]+)'/g;
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(raising)) found.add(m[1]!);
  }
  return found;
}

describe('error codes', () => {
  it('lists every code raised in src/', () => {
    const raised = codesRaised();
    expect(raised.size).toBeGreaterThan(20);
    expect([...raised].filter((c) => !Object.hasOwn(ERROR_CODES, c))).toEqual([]);
  });

  it('gives bad input exit status 2, everything else 1, signals 128 + n', () => {
    expect(new UsageError('x').exitCode).toBe(2);
    expect(new QubesValueError('x').exitCode).toBe(2);
    expect(new UnsupportedFormatError('x').exitCode).toBe(2);
    expect(new StoragePoolException('x').exitCode).toBe(1);
    expect(new QvolError('VM_NOT_FOUND', 'x').exitCode).toBe(1);
    expect([exitStatusOfSignal('SIGINT'), exitStatusOfSignal('SIGTERM'), exitStatusOfSignal('SIGHUP')]).toEqual([130, 143, 129]);
  });
});
