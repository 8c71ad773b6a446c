/** What this kernel and CPU offer the data path (per-filesystem abilities are found by trying). */
import { native, type Capabilities, type DisableBits } from '../native/binding.js';

let cached: Capabilities | undefined;

export function capabilities(): Capabilities {
  cached ??= native.capabilitiesSync();
  return cached;
}

/** The native `disable` mask for the named rungs (tests and benchmarks force them off). */
export function disableMask(names: Array<keyof DisableBits> = []): number {
  const bits = capabilities().disableBits;
  return names.reduce((mask, name) => mask | bits[name], 0);
}
