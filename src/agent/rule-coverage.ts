/**
 * At each rules load: name the rules the running driver cannot feed (coverage.ts), and work out
 * which opens for reading the eBPF driver ships (read-filter.ts), naming the rules that force it
 * to ship them all.
 */
import type { RulesEngine } from '../engine/engine.js';
import { type CoverageDriver, coverageWarnings, type SideSources } from '../sources/coverage.js';
import { deriveReadFilter, type ReadFilter } from '../sources/ebpf/read-filter.js';
import type { Logger } from '../platform/logger.js';

export interface CoverageContext {
  driver: CoverageDriver;
  side: SideSources;
  /** sources.ebpf.open_read. */
  openRead: boolean | 'auto';
}

/** Logs what the rules cannot get here; returns the read filter the eBPF driver is to apply. */
export function logRuleCoverage(engine: RulesEngine, ctx: CoverageContext, log: Logger): ReadFilter {
  for (const w of coverageWarnings(engine.active, ctx.driver, ctx.side)) {
    log.warn({ rule: w.rule, types: w.missing, driver: ctx.driver }, w.message);
  }
  const filter = deriveReadFilter((t) => engine.rulesFor('syscall', t));
  if (ctx.driver !== 'ebpf' || filter.readers.length === 0) return filter;
  if (ctx.openRead === false) {
    log.warn({ rules: filter.readers }, `sources.ebpf.open_read is false: ${filter.readers.length} rules read opens for reading and will not see them (set it to auto)`);
  } else if (ctx.openRead === 'auto') {
    for (const u of filter.unbounded) {
      log.warn({ rule: u.rule, why: u.why }, `rule "${u.rule}" reads opens for reading with a condition the kernel cannot narrow to path prefixes or process names (${u.why}): every open for reading is shipped to user space while it is loaded`);
    }
    if (filter.mode === 'prefix') log.info({ prefixes: filter.prefixes, comms: filter.comms, rules: filter.readers.length }, 'opens for reading filtered in the kernel by the rules\' path prefixes and process names');
  }
  return filter;
}
