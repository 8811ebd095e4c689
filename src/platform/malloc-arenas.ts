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
import { addonFunction } from './native-addon.js';

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
  const arenaMax = addonFunction('mallocArenaMax');
  if (typeof arenaMax === 'string') return { applied: false, reason: arenaMax };
  return arenaMax(arenas) ? { applied: true, arenas } : { applied: false, reason: 'the C library has no M_ARENA_MAX (not glibc)' };
}

/*
 * No malloc_trim here. Tried twice (issue 16):
 *  - once the process went quiet after work (under 10% of a core for 500 ms, after 100 ms of
 *    CPU): ~1 MB back at the end of the bench, but an agent busy at 1,000 execs/s uses under 10%
 *    of a core, trims came during the storm, and the exec → alert p99 went from 6.0 ms to 9.8;
 *  - once no event at all came for 1 s, after 1,000 or more: a live agent after 7 storms gave
 *    back 3 MB (97.9 against 100.9 MB), the bench 1–2 MB (100.0 and 100.6 against 102.2 and
 *    101.6), and the p99 of the latency storm that starts half a second after a trim was worse in
 *    5 of 5 paired rounds (8.2–14.4 ms against 4.4–8.0), where the same code without the trim
 *    was worse in 1 of 2. Its memory comes back within the next burst anyway.
 * The single arena above is the RSS that mattered (8–10 MB).
 */
