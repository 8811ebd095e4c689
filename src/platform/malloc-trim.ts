/**
 * malloc_trim after a burst of events (issue 16: the agent's RSS ≤ 100 MB).
 *
 * With one malloc arena (malloc-arenas.ts) the memory a burst frees is kept for the next one,
 * but glibc gives back only what is free at the top of the heap: after the bench's exec storms
 * the main arena held 10.6 MB of which 6.1 MB was in use, and a malloc_trim(0) took the agent's
 * RSS down by 2.7–6.3 MB (gdb on a live agent after 3 and 7 storms of 3,000 execs).
 *
 * When: once no event at all came for `quietMs` (1 s), after at least `minEvents` (1,000) since
 * the last trim. An earlier try trimmed once the agent's own CPU went under 10% of a core, and
 * an agent at 1,000 execs/s is under that: trims came in the middle of storms and the exec →
 * alert p99 went from 6.0 to 9.8 ms. No event for a second is no storm, and the timer is armed
 * by events only, so an idle agent never wakes for it.
 */
import { loadNativeAddon } from './native-addon.js';
import { PauseTimer } from './pause-timer.js';

export const TRIM_QUIET_MS = 1000;
export const TRIM_MIN_EVENTS = 1000;

export interface MallocTrimOptions {
  quietMs?: number;
  minEvents?: number;
}

export class MallocTrimmer {
  private readonly pause: PauseTimer;
  private readonly minEvents: number;
  private events = 0;
  /** Trims done (metrics, tests). */
  trims = 0;

  constructor(private readonly trim: () => boolean, opts: MallocTrimOptions = {}) {
    this.minEvents = opts.minEvents ?? TRIM_MIN_EVENTS;
    this.pause = new PauseTimer({ quietMs: opts.quietMs ?? TRIM_QUIET_MS }, () => {
      this.events = 0;
      this.trims++;
      this.trim();
    });
  }

  /** `n` events were handled now. */
  busy(n: number): void {
    this.pause.commit();
    this.events += n;
    if (this.events >= this.minEvents) this.pause.arm();
  }

  stop(): void {
    this.pause.stop();
  }
}

/** A trimmer over glibc's malloc_trim, or undefined where the native addon has none (not built, not glibc). */
export function mallocTrimmer(opts?: MallocTrimOptions): MallocTrimmer | undefined {
  const load = loadNativeAddon();
  if ('error' in load) return undefined;
  const trim = load.addon.mallocTrim;
  return typeof trim === 'function' ? new MallocTrimmer(() => trim.call(load.addon), opts) : undefined;
}
