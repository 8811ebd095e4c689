/**
 * Work that waits for a pause in a stream of activity: the alert store's WAL checkpoint
 * (src/alerts/checkpoint.ts) and text index batches (src/alerts/text-index.ts) after commits.
 * Work comes in bursts; in the gap after one, work on the main thread holds up no event and no
 * alert line (issue 16: exec → alert latency).
 *
 * A pause is `quietMs` with no commit (activity). `maxDelayMs` after the first commit that armed it the work
 * runs, pause or not (a stream that never pauses). A timer that fires late, by a quarter of
 * quietMs or more, says the event loop was held (the machine busy, a long task): the commits of
 * that time may be events still waiting to be read, not a pause, so it waits a whole pause again,
 * within maxDelayMs. Seen once: a 33 ms checkpoint in the middle of an exec storm on a loaded host.
 *
 * The timer is unref'd: the agent's lifetime is not this work's. Each owner says what is left
 * undone at close (SQLite checkpoints at close; the text index's waiting rows stay listed).
 */

export interface PauseTimerOptions {
  quietMs: number;
  /** Run at the latest this long after the commit that armed the timer (default: no bound). */
  maxDelayMs?: number;
}

export class PauseTimer {
  private readonly quietMs: number;
  private readonly maxDelayMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() of the last commit. */
  private lastCommit = 0;
  /** performance.now() when the armed timer's wait began (undefined: not armed). */
  private armedAt: number | undefined;
  private stopped = false;

  /** `run` is called once a pause came; it may call `again()` for more in a later turn. */
  constructor(opts: PauseTimerOptions, private readonly run: () => void) {
    this.quietMs = opts.quietMs;
    this.maxDelayMs = Math.max(this.quietMs, opts.maxDelayMs ?? Infinity);
  }

  /** A commit: the pause starts again from now. Every commit says so, armed or not. */
  commit(): void {
    this.lastCommit = performance.now();
  }

  /** Wait for the next pause, unless already waiting. */
  arm(): void {
    if (this.stopped || this.timer) return;
    this.armedAt = performance.now();
    this.wait(this.quietMs);
  }

  /** More work after `run`: in a later turn of the event loop, pause or not. */
  again(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedAt ??= performance.now();
    this.timer = this.timeout(1, () => this.fire());
  }

  get armed(): boolean {
    return this.timer !== undefined;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private wait(ms: number): void {
    const wait = Math.max(1, Math.ceil(ms));
    const due = performance.now() + wait;
    this.timer = this.timeout(wait, () => {
      const now = performance.now();
      const waited = now - (this.armedAt ?? now);
      if (waited < this.maxDelayMs) {
        if (now - due >= this.quietMs / 4) return this.wait(Math.min(this.quietMs, this.maxDelayMs - waited));
        const quietFor = now - this.lastCommit;
        if (quietFor < this.quietMs) return this.wait(Math.min(this.quietMs - quietFor, this.maxDelayMs - waited));
      }
      this.fire();
    });
  }

  private fire(): void {
    this.armedAt = undefined;
    if (!this.stopped) this.run();
  }

  private timeout(ms: number, f: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timer = undefined;
      f();
    }, ms);
    t.unref();
    return t;
  }
}
