/**
 * Crash injection for tests: with QVOL_CRASH_AFTER_STEP=N the process kills itself (SIGKILL,
 * no cleanup, as a power loss would stop it) right after its Nth durable step: a create,
 * rename or remove made durable, a file published, the state file replaced. Without the
 * variable this costs one comparison per step.
 */
const limit = Number(process.env.QVOL_CRASH_AFTER_STEP ?? 0);
let steps = 0;

export function durableStep(): void {
  if (limit > 0 && ++steps >= limit) process.kill(process.pid, 'SIGKILL');
}
