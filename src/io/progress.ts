/** Progress of a long data job, as the copy engine and the stream jobs report it. */
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
