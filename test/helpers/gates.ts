/**
 * Capability gates: a test that cannot run here is skipped with the reason in its name,
 * and the reason is printed, so a skip is never silent.
 */
import { execFileSync } from 'node:child_process';

export const isRoot = process.getuid?.() === 0;

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the fs tier cannot run here, or undefined when it can. */
export function fsTierBlocker(tools: string[] = []): string | undefined {
  if (!isRoot) return 'needs root for loop devices and mounts';
  const missing = tools.filter((t) => !hasCommand(t));
  if (missing.length > 0) return `needs ${missing.join(', ')} (scripts/test.sh installs them as root)`;
  return undefined;
}

export function skipReason(reason: string | undefined, title: string): string {
  if (reason === undefined) return title;
  console.warn(`skipped: ${title}: ${reason}`);
  return `${title} (skipped: ${reason})`;
}
