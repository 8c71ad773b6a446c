/**
 * Names that reach paths, datasets and device-mapper tables are checked once, here, at the
 * edge: pools, VMs and volumes.
 */
import { UsageError } from '../errors/index.js';

export const MAX_NAME_LENGTH = 64;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export type NameKind = 'pool' | 'VM' | 'volume';

/** Returns `name` if it is a valid pool, VM or volume name; throws a UsageError saying why not. */
export function validateName(kind: NameKind, name: string): string {
  const bad = (why: string) => new UsageError(`Invalid ${kind} name '${name}': ${why}.`, { path: name });
  if (name.length === 0) throw bad('it is empty');
  if (name.length > MAX_NAME_LENGTH) throw bad(`use at most ${MAX_NAME_LENGTH} characters`);
  if (name.includes('..')) throw bad("it must not contain '..'");
  if (!NAME.test(name)) {
    throw bad('use letters, digits, _, . and -, starting with a letter or digit');
  }
  return name;
}
