/**
 * Imported first by main.ts, and alone (the program is imported once this has run), so it runs
 * before any other module loads: the young generation's cap (src/platform/young-generation.ts)
 * holds only if set before loading and the agent's start grow it.
 *
 * Loading the modules and the agent's start are long synchronous stretches that the cap's check
 * cannot see into: the new space does not grow at all until they are over. For `run` that is when
 * the agent has started (run.ts calls startDone); for every other command, once loading is done.
 */
import { capYoungGeneration, holdYoungGeneration } from '../platform/young-generation.js';

capYoungGeneration();
const release = holdYoungGeneration();

/** The start is over: the new space may grow again, up to the cap. */
export function startDone(): void {
  release();
}
