/** What every producer of events implements (ARCHITECTURE.md: sources → enrichment → engine). */
import type { Event } from '../events.js';

export interface Source {
  readonly name: string;
  /** Begin producing; resolves when the source has finished (replay) or has started (live). */
  start(emit: (ev: Event) => void): Promise<void>;
  stop(): Promise<void>;
}
