/**
 * One glibc malloc arena for the whole process (issue 16: the agent's RSS ≤ 100 MB).
 *
 * glibc gives each thread that mallocs an arena of its own (up to 8 per core), and an arena
 * keeps the memory freed in it. V8's worker threads (GC helpers, concurrent compilers) malloc a
 * few MB each in bursts during an exec storm and free it: after the bench's storms their arenas
 * held 11–13 MB resident of which under 0.3 MB was in use (glibc's malloc_stats). With a single
 * arena the next burst reuses what the last one freed: 8–10 MB less RSS after the storms
 * (eBPF driver, measured side by side), see native/malloc_tune.c.
 *
 * MALLOC_ARENA_MAX in the environment would do the same, but only for a process started with it:
 * `node dist/src/cli/main.js run` gets this with no wrapper. A MALLOC_ARENA_MAX (or the tunable
 * glibc.malloc.arena_max in GLIBC_TUNABLES) given by the user wins: nothing is changed then.
 */
import { loadNativeAddon } from './native-addon.js';

/** Arenas the process may use (glibc's default is 8 per core). */
export const MALLOC_ARENAS = 1;

/** Why limitMallocArenas did what it did, for a debug line and the tests. */
export type ArenaLimit = { applied: true; arenas: number } | { applied: false; reason: string };

function userChoseArenas(env: NodeJS.ProcessEnv): boolean {
  return env.MALLOC_ARENA_MAX !== undefined || /(^|:)glibc\.malloc\.arena_max=/.test(env.GLIBC_TUNABLES ?? '');
}

/**
 * Cap glibc's arenas at `arenas` from now on. Never throws: without the native addon (not built
 * on this host) or off glibc it changes nothing and says why.
 */
export function limitMallocArenas(arenas = MALLOC_ARENAS, env: NodeJS.ProcessEnv = process.env): ArenaLimit {
  if (userChoseArenas(env)) return { applied: false, reason: 'MALLOC_ARENA_MAX or GLIBC_TUNABLES set by the user' };
  const load = loadNativeAddon();
  if ('error' in load) return { applied: false, reason: `native addon: ${load.error}` };
  if (typeof load.addon.mallocArenaMax !== 'function') return { applied: false, reason: 'native addon built before mallocArenaMax (run `npm rebuild minewatch`)' };
  return load.addon.mallocArenaMax(arenas) ? { applied: true, arenas } : { applied: false, reason: 'the C library has no M_ARENA_MAX (not glibc)' };
}

/** How often the trimmer looks whether the process went quiet (ms). */
export const TRIM_CHECK_MS = 500;
/** A check window is quiet under this share of one core (the idle agent uses well under 1%). */
export const TRIM_QUIET_SHARE = 0.1;
/** CPU (µs, all threads) the process must have spent since the last trim to be worth another. */
export const TRIM_AFTER_WORK_US = 100_000;

/**
 * Give freed malloc memory back to the system once the process goes quiet after work: glibc
 * returns only the top of an arena by itself, and after the bench's storms (one arena, see
 * above) about 5 MB of the main arena was free but resident; malloc_trim gave back 4.7 MB.
 *
 * Trimming while busy would only make the next mallocs fault those pages in again (CPU per
 * exec), so it waits for a quiet check window (TRIM_QUIET_SHARE of a core) that follows at
 * least TRIM_AFTER_WORK_US of CPU since the last trim: once per burst of work, and never while
 * idle, where the check is one cpuUsage() call every TRIM_CHECK_MS. The timer never keeps the
 * process alive. Returns a stop function; without the native addon's mallocTrim it does nothing.
 */
export function trimMallocWhenQuiet(opts: { checkMs?: number; quietShare?: number; afterWorkUs?: number; trim?: () => boolean } = {}): () => void {
  const checkMs = opts.checkMs ?? TRIM_CHECK_MS;
  const quietShare = opts.quietShare ?? TRIM_QUIET_SHARE;
  const afterWorkUs = opts.afterWorkUs ?? TRIM_AFTER_WORK_US;
  let trim = opts.trim;
  if (!trim) {
    const load = loadNativeAddon();
    if ('error' in load || typeof load.addon.mallocTrim !== 'function') return () => {};
    const addon = load.addon as { mallocTrim(): boolean };
    trim = () => addon.mallocTrim();
  }
  const used = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let last = used();
  let lastAt = performance.now();
  let atTrim = last;
  const timer = setInterval(() => {
    const now = used();
    const at = performance.now();
    // Quiet relative to the window's real length: a timer that fires late has a longer window.
    if (now - last < quietShare * (at - lastAt) * 1000 && now - atTrim >= afterWorkUs) {
      trim!();
      atTrim = used();
    }
    last = now;
    lastAt = at;
  }, checkMs);
  timer.unref();
  return () => clearInterval(timer);
}
