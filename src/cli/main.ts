#!/usr/bin/env node
/**
 * The `minewatch` command. The young generation's cap (heap-setup.ts, issue 16: RSS) must be in
 * force before anything else allocates, and that includes loading the modules: an ES module's
 * static imports are all fetched, parsed and compiled before the first of them runs, and that
 * alone grew V8's new space to its 32 MB maximum (then kept for seconds, RSS). So this file
 * imports only the cap, statically, and the program once the cap holds.
 */
import { startDone } from './heap-setup.js';

await import('./program.js');
// `run` says itself when its start is over; every other command's is this loading.
if (process.argv[2] !== 'run') startDone();
