/**
 * A FIFO async mutex: `run(fn)` waits for every earlier holder, then runs `fn` alone. Used
 * for the per-volume lock of the Qubes model (mutating volume operations never overlap).
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  get locked(): boolean {
    return this.holders > 0;
  }

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => { release = resolve; });
    this.holders++;
    try {
      await previous;
      return await fn();
    } finally {
      this.holders--;
      release();
    }
  }
}
