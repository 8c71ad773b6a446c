/** What this kernel and CPU offer the data path (per-filesystem abilities are found by trying). */
import { native, type Capabilities } from '../native/binding.js';

let cached: Capabilities | undefined;

export function capabilities(): Capabilities {
  cached ??= native.capabilitiesSync();
  return cached;
}
