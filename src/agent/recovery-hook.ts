/** The agent's side of exec recovery (src/enrich/recovery.ts): started with the host sources. */
import type { SyscallEvent } from '../events.js';
import type { ProcessTable } from '../enrich/process-table.js';
import { ExecRecovery } from '../enrich/recovery.js';
import type { Logger } from '../platform/logger.js';

export type { ExecRecovery };

export function startRecovery(table: ProcessTable, checkMs: number, drops: () => number, emit: (ev: SyscallEvent) => void, log: Logger): ExecRecovery {
  let logged = 0;
  const r = new ExecRecovery(table, {
    drops,
    checkMs,
    emit: (ev) => {
      // One line per scan that found something, not one per process.
      if (r.stats.scans !== logged) {
        logged = r.stats.scans;
        log.warn({ pid: ev.proc.pid, name: ev.proc.name, scans: r.stats.scans }, 'events were dropped: exec events recovered from /proc (mw.exec.recovered=true)');
      }
      emit(ev);
    },
  });
  r.start();
  return r;
}
