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

/*
 * What the single arena keeps free after a burst goes back to the kernel in malloc-trim.ts, once
 * no event came for a second.
 */
