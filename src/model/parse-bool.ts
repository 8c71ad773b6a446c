/**
 * The two boolean parsers of the Qubes model. Pools parse `ephemeral_volatile` strictly
 * (`parse_bool`: `True`/`1`/`on`, `False`/`0`/`off`/empty); the admin API and most
 * options are lenient (`qubes.property.bool`: any case, also yes/no and true/false).
 */
import { QubesValueError } from '../errors/index.js';

export function parseBoolStrict(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const s = String(value);
  if (['True', '1', 'on'].includes(s)) return true;
  if (['False', '0', 'off', ''].includes(s)) return false;
  throw new QubesValueError(`invalid bool: ${JSON.stringify(s)}`);
}

export function parseBool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const s = String(value).toLowerCase();
  if (['1', 'yes', 'true', 'on'].includes(s)) return true;
  if (['0', 'no', 'false', 'off', ''].includes(s)) return false;
  throw new QubesValueError(`Invalid boolean value '${String(value)}': use true or false.`);
}
