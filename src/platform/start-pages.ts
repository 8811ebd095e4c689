/**
 * Let go of the program pages only the agent's start used (issue 16: the agent's RSS ≤ 100 MB).
 *
 * After its start an agent had 41 MB of the node binary resident, most of it code that ran once:
 * the module loader, V8's parser and compilers working on every module, the rules compiler, the
 * YAML and schema libraries. The native addon's dropCleanFilePages (native/resident_pages.c)
 * unmaps the node binary's never-written private mappings; the pages stay in the page cache, and
 * those the agent goes on using fault back in (minor faults). The node binary only: the SQLite
 * addon's pages, dropped too at first, came back on the first alert's insert and made it the
 * slowest of the exec → alert latency storm (the bench's p99 8.2 ms against 4.5–6.6). Done once, a few seconds after the start, so
 * that the start's asynchronous tail (driver attach, first GC, listeners) is over.
 */
import { realpathSync } from 'node:fs';
import { addonFunction } from './native-addon.js';

/** How long after the start the pages are let go, ms. */
export const START_PAGES_DELAY_MS = 3000;

export type StartPagesDrop = { applied: true; mappings: number; bytes: number } | { applied: false; reason: string };

/** Unmap the clean file pages now. Never throws: says why it did nothing instead. */
export function dropStartPages(): StartPagesDrop {
  const drop = addonFunction('dropCleanFilePages');
  if (typeof drop === 'string') return { applied: false, reason: drop };
  try {
    return { applied: true, ...drop(realpathSync(process.execPath)) };
  } catch (e) {
    return { applied: false, reason: (e as Error).message };
  }
}

/** dropStartPages() once, START_PAGES_DELAY_MS from now; the timer keeps no process alive. */
export function dropStartPagesSoon(report: (r: StartPagesDrop) => void): void {
  setTimeout(() => report(dropStartPages()), START_PAGES_DELAY_MS).unref();
}
