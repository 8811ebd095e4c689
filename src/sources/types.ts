/** What every producer of events implements (ARCHITECTURE.md: sources → enrichment → engine). */
import type { Event, ProcNotice } from '../events.js';

export interface Source {
  readonly name: string;
  /** Begin producing; resolves when the source has finished (replay) or has started (live). */
  start(emit: (ev: Event) => void): Promise<void>;
  stop(): Promise<void>;
}

// The notice shapes live with the other event shapes (events.ts); sources name them here too.
export type { KernelExec, KernelExecFacts, ProcNotice } from '../events.js';
export { EXE_DELETED, EXE_KNOWN, EXE_MEMFD, EXE_OVERLAY, EXE_RDONLY, EXE_UPPER } from '../events.js';

/** A producer of ProcNotices (proc connector, procfs poller). */
export interface ProcNoticeSource {
  readonly name: string;
  /** Resolves once it is listening; rejects with a reason a user can act on when it cannot run here. */
  start(notify: (n: ProcNotice) => void): Promise<void>;
  stop(): Promise<void>;
  /** Notices lost (kernel buffer overruns, queue overflow) since start. */
  readonly drops: number;
}
