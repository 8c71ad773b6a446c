/**
 * The CLI never prints raw system text: a system error that reaches it is one sentence with
 * the fix, naming the path (and the second path, when the call had two); scripts keep the
 * errno's name as the code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorRecord } from '../../../src/cli/output.js';
import { CopyError } from '../../../src/errors/index.js';
import { describeSystemError } from '../../../src/errors/system-text.js';
import { ERROR_CODES } from '../../../src/errors/codes.js';
import { scratchDir } from '../../helpers/scratch.js';

describe('system errors in words', () => {
  it('a missing file: one sentence with the path and the fix, code ENOENT', async () => {
    const err = await readFile('/nonexistent/qvol/x').catch((e: unknown) => e);
    const r = errorRecord(err);
    expect(r).toMatchObject({ code: 'ENOENT', path: '/nonexistent/qvol/x', exitCode: 1 });
    expect(r.message).toBe('\'/nonexistent/qvol/x\' does not exist: check the path.');
    expect(r.message).not.toMatch(/ENOENT|no such file/);
  });

  it('a rename names both paths, in the record and in the sentence', async () => {
    const dir = scratchDir('words');
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'f'), 'x');
    const err = await rename(join(dir, 'd'), join(dir, 'f')).catch((e: unknown) => e);
    const r = errorRecord(err);
    expect(r).toMatchObject({ code: 'ENOTDIR', path: join(dir, 'd'), dest: join(dir, 'f') });
    expect(r.message).toContain(`'${join(dir, 'd')}' -> '${join(dir, 'f')}'`);
  });

  it('every errno has words with a fix; an unknown one still names the call and the path', () => {
    for (const code of ['EACCES', 'EPERM', 'ENOSPC', 'EROFS', 'EBUSY', 'EIO', 'EXDEV', 'ELOOP', 'EMFILE', 'EOPNOTSUPP']) {
      const text = describeSystemError({ code, errno: -1, syscall: 'open', path: '/p' });
      expect(text, code).toMatch(/^[A-Z'].*: .+\.$/);
      expect(text, code).not.toContain(code);
    }
    expect(describeSystemError({ code: 'ESTALE', errno: -116, syscall: 'open', path: '/p' })).toBe('open of \'/p\' failed with ESTALE: check the path and try again.');
  });

  it('qvol errors that name two paths carry both', () => {
    const err = new CopyError('SAME_FILE', 'Source and target are the same file', { path: '/a', dest: '/b' });
    expect(errorRecord(err)).toMatchObject({ code: 'SAME_FILE', path: '/a', dest: '/b', exitCode: ERROR_CODES.SAME_FILE });
  });
});
