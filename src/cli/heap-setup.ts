/**
 * Imported first by main.ts, and alone (the program is imported once this has run), so it runs
 * before any other module loads: the young generation's cap (src/platform/young-generation.ts)
 * holds only if set before loading and the agent's start grow it.
 *
 * Loading the modules takes the new space to the cap and no further: it comes in many turns of
 * the event loop (files are read asynchronously), and the cap is checked between them. Before it
 * was set first, loading alone took the new space to V8's maximum (32 MB).
 *
 * The agent's start is one long synchronous stretch that the cap's check cannot see into, so
 * `run` holds the new space where it is from startBegins() to startDone() (run.ts).
 *
 * glibc's malloc arenas are capped here too (src/platform/malloc-arenas.ts), before loading the
 * modules sets V8's worker threads compiling: a thread keeps the arena it first malloced in.
 *
 * V8's memory reducer is held to one GC per run (src/platform/memory-reducer.ts): after every
 * start it would otherwise spend 150–250 ms of an idle agent's CPU on three.
 */
import { limitMallocArenas } from '../platform/malloc-arenas.js';
import { limitMemoryReducer } from '../platform/memory-reducer.js';
import { capYoungGeneration, holdYoungGeneration } from '../platform/young-generation.js';

capYoungGeneration();
limitMallocArenas();
limitMemoryReducer();

let release: (() => void) | undefined;

/** A long start begins: the new space keeps its size until startDone(). */
export function startBegins(): void {
  release ??= holdYoungGeneration();
}

/** The start is over: the new space may grow again, up to the cap. */
export function startDone(): void {
  release?.();
}
