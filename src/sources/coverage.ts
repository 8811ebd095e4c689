/**
 * Which loaded rules a driver can feed: each rule's event types against the types the driver (and
 * the sources running beside it) deliver. A rule whose types this host cannot deliver stays
 * silent however its condition reads, so the agent names it once at load, and `minewatch doctor`
 * lists every rule's coverage.
 */
import type { CompiledRule } from '../engine/loader.js';
import { EBPF_EVENT_TYPES } from './ebpf/syscalls.js';

export type CoverageDriver = 'ebpf' | 'proc' | 'procfs';

/**
 * What each driver delivers. The proc connector and the /proc poller see processes only: an exec
 * (the kernel does not tell them whether it was execve or execveat, so both count), never a
 * syscall's arguments.
 */
const DRIVER_TYPES: Record<CoverageDriver, readonly string[]> = {
  ebpf: EBPF_EVENT_TYPES,
  proc: ['execve', 'execveat'],
  procfs: ['execve', 'execveat'],
};

/** What sources beside the driver deliver, when they run. */
export interface SideSources {
  /** The socket-table poller (sources.connections; off under the eBPF driver, which sees every connect). */
  connections?: boolean;
  /** The CPU sampler (sources.cpu). */
  cpu?: boolean;
}

export function deliveredTypes(driver: CoverageDriver, side: SideSources = {}): Set<string> {
  const out = new Set(DRIVER_TYPES[driver]);
  if (side.connections) out.add('connect');
  if (side.cpu) out.add('cpu_sustained');
  return out;
}

export interface RuleCoverage {
  rule: string;
  /** The rule's event types; undefined: it can match any type. */
  types?: string[];
  /** Those this host cannot deliver. */
  missing: string[];
  /** full: every type delivered; partial: some; none: the rule cannot fire here. */
  status: 'full' | 'partial' | 'none';
}

/** Coverage of each syscall rule, in load order. */
export function ruleCoverage(rules: readonly CompiledRule[], delivered: ReadonlySet<string>): RuleCoverage[] {
  const out: RuleCoverage[] = [];
  for (const r of rules) {
    if (r.def.source !== 'syscall') continue;
    if (!r.evttypes) {
      out.push({ rule: r.def.name, missing: [], status: 'full' });
      continue;
    }
    const types = [...r.evttypes].sort();
    const missing = types.filter((t) => !delivered.has(t));
    out.push({ rule: r.def.name, types, missing, status: missing.length === 0 ? 'full' : missing.length === types.length ? 'none' : 'partial' });
  }
  return out;
}

/** One line per rule that misses some of its types: what the agent logs at load. */
export function coverageWarnings(rules: readonly CompiledRule[], driver: CoverageDriver, side: SideSources = {}): Array<{ rule: string; missing: string[]; message: string }> {
  return ruleCoverage(rules, deliveredTypes(driver, side))
    .filter((c) => c.missing.length > 0)
    .map((c) => ({
      rule: c.rule,
      missing: c.missing,
      message: c.status === 'none'
        ? `rule "${c.rule}" cannot fire with the ${driver} driver: it reads ${c.missing.join(', ')} events, which this driver does not deliver${driver === 'ebpf' ? '' : ' (the eBPF driver does: run as root on a kernel with BTF)'}`
        : `rule "${c.rule}" sees only part of its events with the ${driver} driver: ${c.missing.join(', ')} are not delivered${driver === 'ebpf' ? '' : ' (the eBPF driver delivers them)'}`,
    }));
}
