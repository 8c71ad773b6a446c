/**
 * Running-state markers: one file per started volume (Qubes' volume-running-<pool>:<vid>),
 * holding the boot id, so a marker left by a crash before a reboot does not count.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from '../io/atomic.js';
import type { Volume } from '../model/volume.js';
import { durableStep } from '../util/crash.js';

const BOOT_ID = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
})();

/** Qubes' state file name: `-` doubled, `/` turned into `-`. */
export function markerName(pool: string, vid: string): string {
  return `volume-running-${`${pool}:${vid}`.replaceAll('-', '--').replaceAll('/', '-')}`;
}

export class RunningMarkers {
  constructor(readonly dir: string) {}

  private path(v: Volume): string {
    return join(this.dir, markerName(v.pool.name, v.vid));
  }

  async isRunning(v: Volume): Promise<boolean> {
    const boot = await readFile(this.path(v), 'utf8').catch(() => undefined);
    return boot?.trim() === BOOT_ID;
  }

  async mark(volumes: Volume[]): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const v of volumes) await writeFile(this.path(v), `${BOOT_ID}\n`, { mode: 0o600 });
    await fsyncDir(this.dir);
    durableStep();
  }

  async clear(volumes: Volume[]): Promise<void> {
    for (const v of volumes) await unlink(this.path(v)).catch(() => undefined);
    await fsyncDir(this.dir).catch(() => undefined);
  }

  /** Markers of an earlier boot: their VMs are not running whatever the files say. */
  async stale(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: string[] = [];
    for (const n of names) {
      const boot = await readFile(join(this.dir, n), 'utf8').catch(() => '');
      if (boot.trim() !== BOOT_ID) out.push(n);
    }
    return out;
  }
}
