/**
 * A one-line progress bar for a terminal: bytes, percent, rate and time left. Drawn on
 * stderr, at most ten times a second, and only when stderr is a TTY.
 */
import type { CopyProgress } from '../io/progress.js';
import { formatBytes } from '../util/size.js';
import type { CliIo } from './output.js';

function clock(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export interface ProgressBar {
  update(p: CopyProgress): void;
  done(): void;
}

export function progressBar(io: CliIo, label: string, enabled: boolean): ProgressBar {
  if (!enabled || !io.stderr.isTTY) return { update() {}, done() {} };
  let last = 0;
  let drawn = false;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100 && p.done < p.total) return;
      last = now;
      const pct = p.total > 0 ? Math.floor((p.done / p.total) * 100) : 100;
      const width = Math.max(10, Math.min(30, (io.stderr.columns ?? 80) - 60));
      const fill = Math.round((pct / 100) * width);
      const bar = `${'#'.repeat(fill)}${'.'.repeat(width - fill)}`;
      io.stderr.write(`\r${p.phase === 'scan' ? 'scan' : label} [${bar}] ${String(pct).padStart(3)}% ${formatBytes(p.done)}/${formatBytes(p.total)} ${formatBytes(p.rate)}/s ETA ${clock(p.etaSeconds)}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) io.stderr.write('\r\x1b[K');
    },
  };
}
