/**
 * ─── MERGE POINT (issue 14) ─────────────────────────────────────────────────────────────────
 * The agent's present detectors (cryptnono's execwhacker, tcpflowkiller and monero), wrapped
 * whole as ONE object implementing the Detector contract, so the pipeline's detector stage can
 * run them. This file is the one place to replace with src/detectors/registry.ts's
 * buildDetectors(...) when the detectors move into src/detectors/ (helper p14det's branch).
 * The code below moved here unchanged from agent.ts (setDetectors, detect, readerSpared,
 * rememberAsked, rescan, onRandomxMatch); it only answers instead of calling the dispatcher.
 * ────────────────────────────────────────────────────────────────────────────────────────────
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { DetectorsConfig } from '../config/detectors.js';
import type { Detector, DetectorAnswer, DetectorStats } from '../detectors/types.js';
import type { Match } from '../engine/types.js';
import { readStartTs } from '../enrich/procfs.js';
import type { ContainerInfo, Event, ProcessInfo, SyscallEvent } from '../events.js';
import { targetOf } from '../response/dispatcher.js';
import { execMatcherFromConfig } from '../response/execwhacker/index.js';
import type { ExecMatcher, MatchResult } from '../response/execwhacker/matcher.js';
import { spareReader } from '../response/execwhacker/readers.js';
import { TcpFlowKiller } from '../response/tcpflowkiller.js';
import type { ActionRequest, Target } from '../response/types.js';
import type { Logger } from './logger.js';
import { MoneroKiller, RANDOMX_RULE } from './randomx.js';

/** What the detectors read of the process table. */
export interface DetectorTable {
  isSelf(pid: number): boolean;
  get(pid: number): ProcessInfo | undefined;
  containerOf(pid: number): ContainerInfo | undefined;
}

/**
 * The execwhacker's kill request for a match: asked for, or reported as spared or missed. `extra`
 * adds to the details (why it was spared, that a rescan found it).
 */
function whackRequest(r: MatchResult, target: Target, extra: Record<string, string | boolean> = {}, event?: Event): ActionRequest {
  return { action: 'kill', target, trigger: 'execwhacker', mode: 'enforce', ...(event ? { event } : {}), details: { config: r.config ?? '', banned: r.banned ?? '', ...extra } };
}

export class LegacyDetectors implements Detector {
  readonly name = 'detectors';
  /** cryptnono's execwhacker: undefined while it is off. Swapped whole on reload. */
  private whacker: ExecMatcher | undefined;
  /** detectors.execwhacker.spare_readers: spare system readers whose banned strings are operands. */
  private spareReaders = false;
  private flowKiller: TcpFlowKiller | undefined;
  /** cryptnono's monero detector: kills what the RandomX rule names; undefined while it is off. */
  private moneroKiller: MoneroKiller | undefined;
  private readonly rescanAsked = new Set<string>();
  rescanIntervalMs = 0;
  readonly detectorStats = { checked: 0, kills: 0, spared: { allowed: 0, word_boundary: 0, no_match: 0, reader: 0 } as Record<string, number>, rescans: 0 };

  constructor(
    private readonly table: DetectorTable,
    private readonly log: Logger,
    /** The RandomX tracepoint's state while the eBPF driver runs (undefined otherwise). */
    private readonly fpuStatus: () => string | undefined = () => undefined,
  ) {}

  /**
   * (Re)build the detectors from their config section. The new matcher is built before it replaces
   * the old one, so there is no moment without one. Detectors, once enabled, act (as cryptnono's do);
   * their safety rules are the response stage's.
   */
  configure(d: DetectorsConfig): this {
    this.whacker = d.execwhacker.enabled ? execMatcherFromConfig(d) : undefined;
    this.spareReaders = d.execwhacker.spare_readers;
    // Keeps whom it has asked about across reloads: a miner already killed is not asked about again.
    this.moneroKiller = d.monero.enabled ? (this.moneroKiller ?? new MoneroKiller()) : undefined;
    const fpu = this.fpuStatus();
    if (d.monero.enabled && fpu !== undefined && fpu !== 'on') {
      this.log.warn({}, 'detectors.monero.enabled: the RandomX tracepoint was not attached at start; restart the agent to attach it');
    }
    this.flowKiller?.close();
    this.flowKiller = undefined;
    if (d.tcpflowkiller.enabled) {
      const fk = d.tcpflowkiller.config.FlowKiller;
      this.flowKiller = new TcpFlowKiller({
        banned_ipv4_file_globs: fk.banned_ipv4_file_globs,
        lookback_duration_seconds: fk.lookback_duration_seconds,
        unique_destinations_threshold: fk.unique_destinations_threshold,
        log_connects: fk.log_connects,
        log_container_info: fk.log_container_info,
        exempt_cidrs: d.tcpflowkiller.exempt_cidrs,
        mode: 'enforce',
        log: (level, msg, fields) => this.log[level](fields ?? {}, msg),
      });
      this.flowKiller.start();
    }
    // A process can rewrite its argv after exec: look at every running one again.
    this.rescanIntervalMs = this.whacker && d.execwhacker.rescan_interval_s > 0 ? d.execwhacker.rescan_interval_s * 1000 : 0;
    return this;
  }

  /** The detectors read events directly, before the rules. */
  onEvent(e: Event): DetectorAnswer[] | undefined {
    if (e.source !== 'syscall') return undefined;
    const ev = e as SyscallEvent;
    const out: DetectorAnswer[] = [];
    if (this.whacker && (ev.type === 'execve' || ev.type === 'execveat')) {
      this.detectorStats.checked++;
      const r = this.whacker.matchProcess(ev.proc);
      if (r.kill) {
        const target = targetOf(ev);
        if (this.readerSpared(out, this.whacker, ev.proc.pid, ev.proc.exepath, [ev.proc.exe ?? ev.proc.exepath ?? '', ...(ev.proc.args ?? [])], r, target, ev)) {
          // Spared and reported once: the rescan does not report it again.
          if (ev.proc.start_ts !== undefined) this.rememberAsked(`reader:${ev.proc.pid}:${ev.proc.start_ts}`);
        } else {
          this.detectorStats.kills++;
          // Asked once: the rescan does not ask again about the same process (same start time).
          if (ev.proc.start_ts !== undefined) this.rememberAsked(`${ev.proc.pid}:${ev.proc.start_ts}`);
          out.push({ request: whackRequest(r, target, {}, ev) });
        }
      } else if (r.spared) {
        this.detectorStats.spared[r.spared] = (this.detectorStats.spared[r.spared] ?? 0) + 1;
        // A banned string matched and an allowed pattern spared the process: that is a decision
        // the user wants to see (issue: every case shows up as an alert). Word-boundary and
        // no-match spares are not: nothing banned was there.
        if (r.spared === 'allowed') {
          out.push({ report: {
            request: whackRequest(r, targetOf(ev), { allowed_by: r.allowedBy ?? '', allowed_config: r.allowedConfig ?? '' }, ev),
            outcome: 'spared',
            reason: `allowed pattern ${JSON.stringify(r.allowedBy ?? '')} of config ${r.allowedConfig ?? '?'}`,
          } });
        }
      }
    }
    if (this.flowKiller && ev.type === 'connect') {
      const req = this.flowKiller.decide(ev);
      if (req) out.push({ request: req });
    }
    return out.length ? out : undefined;
  }

  /** cryptnono's monero detector: kill what the RandomX rule named. */
  onMatch(m: Match): DetectorAnswer[] | undefined {
    if (m.rule !== RANDOMX_RULE) return undefined;
    const req = this.moneroKiller?.requestFor(m);
    return req ? [{ request: req }] : undefined;
  }

  /**
   * spare_readers: a system reader (grep, less, git log…) whose banned strings are only operands
   * is spared, and the spare is reported as an outcome like an allowed pattern's.
   */
  private readerSpared(out: DetectorAnswer[], m: ExecMatcher, pid: number, exepath: string | undefined, argv: string[], r: MatchResult, target: Target, event?: Event): boolean {
    if (!this.spareReaders) return false;
    const d = spareReader({ pid, exepath, argv }, (a, e) => m.bannedIn(a, e));
    if (!d.spared) return false;
    this.detectorStats.spared.reader = (this.detectorStats.spared.reader ?? 0) + 1;
    out.push({ report: {
      request: whackRequest(r, target, { spared_reader: d.tool }, event),
      outcome: 'spared',
      reason: `spare_readers: ${d.tool} is the system's own and the banned string ${JSON.stringify(r.banned ?? '')} is only in what it reads or searches for`,
    } });
    return true;
  }

  /** Remember a process (pid:start) the execwhacker has asked about, so it is asked about once. */
  private rememberAsked(key: string): void {
    if (this.rescanAsked.size > 10_000) this.rescanAsked.clear();
    this.rescanAsked.add(key);
  }

  /** Every running process's current command line through the execwhacker. */
  rescan(): DetectorAnswer[] {
    const m = this.whacker;
    const out: DetectorAnswer[] = [];
    if (!m) return out;
    this.detectorStats.rescans++;
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
    } catch {
      return out;
    }
    for (const name of pids) {
      const pid = Number(name);
      if (this.table.isSelf(pid)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      } catch {
        continue; // gone, or a kernel thread
      }
      if (argv.length && argv[argv.length - 1] === '') argv.pop();
      if (argv.length === 0) continue;
      const utf8 = argv.map((a) => Buffer.from(a, 'latin1').toString('utf8'));
      const exepath = this.table.get(pid)?.exepath;
      const r = m.matchProcess({ exe: utf8[0], exepath, args: utf8.slice(1) });
      if (!r.kill) continue;
      // Read once: the key of the reader spare and the kill request both carry it.
      const startTs = readStartTs(pid);
      const target = (): Target => ({ pid, ...(startTs === undefined ? {} : { startTs }), cmdline: argv.join(' '), container: this.table.containerOf(pid) });
      if (this.spareReaders) {
        const key = `reader:${pid}:${startTs ?? ''}`;
        if (this.rescanAsked.has(key)) continue;
        if (this.readerSpared(out, m, pid, exepath, utf8, r, target())) {
          this.rememberAsked(key);
          continue;
        }
      }
      // One request per process: one the safety rules spared is not asked about every rescan.
      if (startTs === undefined) {
        // Gone between the two reads: a lost race, not a process whose identity cannot be
        // checked (the kill would report that as "spared").
        out.push({ report: {
          request: whackRequest(r, target(), { rescan: true }),
          outcome: 'missed',
          reason: 'process gone before its start time could be read',
        } });
        continue;
      }
      const key = `${pid}:${startTs}`;
      if (this.rescanAsked.has(key)) continue;
      this.rememberAsked(key);
      this.detectorStats.kills++;
      out.push({ request: whackRequest(r, target(), { rescan: true }) });
    }
    return out;
  }

  stats(): DetectorStats {
    const s = this.detectorStats;
    return { checked: s.checked, kills: s.kills, rescans: s.rescans, spared: { ...s.spared } };
  }

  close(): void {
    this.flowKiller?.close();
    this.flowKiller = undefined;
  }
}
