/** Progress and cancellation of a long native data job (copy, export, import). */
export interface CopyProgress {
  /** Bytes of the source dealt with so far (copied or found to be holes). */
  done: number;
  total: number;
  /** Bytes per second since the start. */
  rate: number;
  /** Seconds left at the current rate, or undefined before there is a rate. */
  etaSeconds: number | undefined;
  /** What the job is doing: 'scan' (a sparse export's first pass) or 'copy'. */
  phase?: 'scan' | 'copy';
}

/** Turns the native (done, total, phase) callbacks into CopyProgress with rate and ETA. */
export function progressReporter(onProgress: ((p: CopyProgress) => void) | undefined) {
  if (!onProgress) return undefined;
  const start = process.hrtime.bigint();
  return (done: number, total: number, phase = 1) => {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const rate = seconds > 0 ? done / seconds : 0;
    onProgress({ done, total, rate, etaSeconds: rate > 0 ? (total - done) / rate : undefined, phase: phase === 0 ? 'scan' : 'copy' });
  };
}

/** Cancellation as the native jobs take it: an Int32Array set from an AbortSignal. */
export function cancelFlag(signal: AbortSignal | undefined): { flag: Int32Array; release(): void } {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const onAbort = () => Atomics.store(flag, 0, 1);
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  return { flag, release: () => signal?.removeEventListener('abort', onAbort) };
}
