/** Where qvol keeps its state: QVOL_HOME, else /var/lib/qvol as root, else the XDG data dir. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function qvolHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.QVOL_HOME) return env.QVOL_HOME;
  if (process.getuid?.() === 0) return '/var/lib/qvol';
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'qvol');
}
