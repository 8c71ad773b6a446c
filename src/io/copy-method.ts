/** The copy engine's rungs in a report's words, without loading the engine. */
import type { CopyMethod } from '../native/binding.js';

/** reflink, copy_file_range or sparse copy. */
export function copyMethodName(method: CopyMethod): string {
  return method === 'clone' ? 'reflink' : method === 'copy_file_range' ? 'copy_file_range' : 'sparse copy';
}
