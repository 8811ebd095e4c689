/**
 * A cap on V8's young generation (new space), set by the agent itself so `node dist/src/cli/main.js
 * run` gets it without flags (issue 16: RSS ≤ 100 MB).
 *
 * V8 doubles the new space whenever many objects survive a scavenge, up to 32 MB on 64-bit
 * (2 × --max-semi-space-size of 16 MB), and keeps it: the agent's start (rules compiled, every
 * process seeded) takes it there at once, and its pages stay resident though at most a few MB
 * of it are live. --max-semi-space-size would cap it, but only on the command line; at run time
 * V8 still reads --semi-space-growth-factor at each growth, so growth stops (factor 1) once the
 * new space reaches the cap and resumes (factor 2) below it.
 *
 * Why 8 MB and not less: with no growth at all (1–2 MB) the agent spent 1.5× the CPU on an exec
 * storm (more scavenges, and short-lived events promoted to old space); at 8 MB its storm CPU
 * was its uncapped figure, and RSS about 10 MB less (measured side by side on the same host's
 * events, bench/exec-cost.bench.ts).
 *
 * The cap is checked after GCs, between event-loop turns, so one long synchronous stretch (the
 * agent's start: rules compiled, thousands of processes seeded) could double the new space twice
 * before a check and leave it at 16 MB for good (seen on every start on a host of 3,000
 * processes: 7 MB more RSS). holdYoungGeneration() stops all growth over such a stretch.
 *
 * A --max-semi-space-size or --semi-space-growth-factor given to node (argv or NODE_OPTIONS)
 * wins: nothing is changed then.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { userGaveNodeFlag } from './node-flags.js';

export const YOUNG_GENERATION_CAP_BYTES = 8 * 1024 * 1024;

const GROWTH_FLAG = '--semi-space-growth-factor';
/** V8's default growth factor. */
const GROWTH_DEFAULT = 2;

function userChoseYoungGeneration(): boolean {
  return userGaveNodeFlag(/^--(max-semi-space-size|semi-space-growth-factor|max-young-generation-size)\b/);
}

function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

let observer: PerformanceObserver | undefined;
/** The cap in force (capYoungGeneration's). */
let cap = YOUNG_GENERATION_CAP_BYTES;
/** holdYoungGeneration() calls not yet released. */
let holds = 0;
let frozen = false;

/** Growth on (factor 2) below the cap and with no hold, off (factor 1) otherwise. */
function check(): void {
  const full = holds > 0 || newSpaceBytes() >= cap;
  if (full === frozen) return;
  setFlagsFromString(`${GROWTH_FLAG}=${full ? 1 : GROWTH_DEFAULT}`);
  frozen = full;
}

/**
 * Hold the new space at about capBytes from now on. Checked after every GC (when V8 grows it), as
 * the event loop turns: a long synchronous burst can take it one doubling past the cap before the
 * check runs (see holdYoungGeneration). Returns false, changing nothing, when node was given a
 * young-generation flag.
 */
export function capYoungGeneration(capBytes = YOUNG_GENERATION_CAP_BYTES): boolean {
  if (observer || userChoseYoungGeneration()) return false;
  cap = capBytes;
  observer = new PerformanceObserver(check);
  observer.observe({ entryTypes: ['gc'] });
  check();
  return true;
}

/**
 * No growth of the new space until the returned function is called (once; later calls do
 * nothing): for a long synchronous start, whose GCs the cap's check cannot see until it ends.
 * Its objects mostly live on (rules, the process table), so a small new space promotes them a
 * little sooner and costs little. Nothing happens unless capYoungGeneration() is in force.
 */
export function holdYoungGeneration(): () => void {
  if (!observer) return () => {};
  holds++;
  check();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holds--;
    check();
  };
}
