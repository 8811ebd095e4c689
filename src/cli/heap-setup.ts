/**
 * Imported first by main.ts, so it runs before any other module loads: the young generation's cap
 * (src/platform/young-generation.ts) holds only if set before loading and the agent's start grow it.
 */
import { capYoungGeneration } from '../platform/young-generation.js';

capYoungGeneration();
