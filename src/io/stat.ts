/** stat and lstat that answer "not there" with undefined instead of ENOENT. */
import { lstat, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { hasCode } from '../native/errors.js';

function missingIsUndefined(err: unknown): undefined {
  if (hasCode(err, 'ENOENT')) return undefined;
  throw err;
}

/** stat(2), following links; undefined when `path` does not exist. */
export function statOrUndefined(path: string): Promise<Stats | undefined> {
  return stat(path).catch(missingIsUndefined);
}

/** lstat(2), never following a link; undefined when `path` does not exist. */
export function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  return lstat(path).catch(missingIsUndefined);
}
