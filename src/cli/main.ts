#!/usr/bin/env node
/**
 * The `minewatch` command. The young generation's cap (heap-setup.ts, issue 16: RSS) must be in
 * force before anything else allocates, and that includes loading the modules: an ES module's
 * static imports are all fetched, parsed and compiled before the first of them runs, and that
 * alone grew V8's new space to its 32 MB maximum (then kept for seconds, RSS), instead of the
 * cap's 8 MB. So this file imports only the cap, statically, and the program once the cap holds.
 */
import './heap-setup.js';

await import('./program.js');
