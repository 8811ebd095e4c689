/**
 * Run a piece of work now and then every interval, one run at a time, until stopped. The polling
 * sources (connections, CPU) share it: the next run is scheduled only after the last one ends
 * (for asynchronous work, once its promise settles), so a slow poll never piles up behind itself.
 */
export interface PollLoopOptions {
  /** Wait one interval before the first run instead of running at once (the caller ran it). */
  delayFirst?: boolean;
}

export class PollLoop {
  private timer: NodeJS.Timeout | undefined;
  private active = false;
  /** performance.now() when the waiting timer fires (undefined: none waits, a run is on). */
  private dueAt: number | undefined;
  private tick: (() => void) | undefined;

  constructor(
    private readonly work: () => void | Promise<void>,
    private intervalMs: number,
    private readonly opts: PollLoopOptions = {},
  ) {}

  /** The wait between runs from the next one on; a wait already begun keeps its end. */
  setIntervalMs(ms: number): void {
    this.intervalMs = ms;
  }

  /** The next run no later than `ms` from now (a shorter wait already begun stays). */
  hurry(ms: number): void {
    if (!this.active || this.dueAt === undefined || !this.tick || this.dueAt <= performance.now() + ms) return;
    clearTimeout(this.timer);
    this.dueAt = performance.now() + ms;
    this.timer = setTimeout(this.tick, ms);
  }

  get running(): boolean {
    return this.active;
  }

  /** Runs the work once at once (or after one interval), then every intervalMs. A second start while running does nothing. */
  start(): void {
    if (this.active) return;
    this.active = true;
    const next = (): void => {
      if (!this.active) return;
      this.dueAt = performance.now() + this.intervalMs;
      this.timer = setTimeout(tick, this.intervalMs);
    };
    const tick = (): void => {
      this.dueAt = undefined;
      if (!this.active) return;
      const done = this.work();
      // The work reports its own errors; a rejection must not stop the loop either.
      if (done) done.then(next, next);
      else next();
    };
    this.tick = tick;
    if (this.opts.delayFirst) next();
    else tick();
  }

  stop(): void {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = undefined;
  }
}
