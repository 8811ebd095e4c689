/**
 * Run a piece of work now and then every interval, one run at a time, until stopped. The polling
 * sources (connections, CPU) share it: the next run is scheduled only after the last one ends, so
 * a slow poll never piles up behind itself.
 */
export class PollLoop {
  private timer: NodeJS.Timeout | undefined;
  private active = false;

  constructor(private readonly work: () => void, private readonly intervalMs: number) {}

  get running(): boolean {
    return this.active;
  }

  /** Runs the work once at once, then every intervalMs. A second start while running does nothing. */
  start(): void {
    if (this.active) return;
    this.active = true;
    const tick = (): void => {
      if (!this.active) return;
      this.work();
      if (this.active) this.timer = setTimeout(tick, this.intervalMs);
    };
    tick();
  }

  stop(): void {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
