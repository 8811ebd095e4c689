/**
 * The execwhacker as a Detector: every exec's command line through the banned-strings matcher,
 * and now and then every running process's (a process can rewrite its argv after exec). It asks
 * for a kill once per process (pid and start time), and reports the spares a user wants to see:
 * an allowed pattern's, and a system reader's (spare_readers).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { readExePath, readStartTs } from '../../platform/procfs.js';
import type { Event, SyscallEvent } from '../../events.js';
import type { ActionRequest, Target } from '../../response/types.js';
import type { DetectorContext } from '../module.js';
import { targetOf } from '../../response/target.js';
import type { Detector, DetectorAnswer, DetectorStats } from '../types.js';
import type { ExecwhackerSettings } from './config.js';
import type { ExecMatcher, MatchResult } from './matcher.js';
import { spareReader } from './readers.js';

/** Processes remembered as asked about; past this the memory starts afresh (a process may then be asked about again). */
const MAX_ASKED = 10_000;

/**
 * The kill request for a match: asked for, or reported as spared or missed. `extra` adds to the
 * details (why it was spared, that a rescan found it).
 */
function whackRequest(r: MatchResult, target: Target, extra: Record<string, string | boolean> = {}, event?: Event): ActionRequest {
  return { action: 'kill', target, trigger: 'execwhacker', mode: 'enforce', ...(event ? { event } : {}), details: { config: r.config ?? '', banned: r.banned ?? '', ...extra } };
}

/**
 * What "the same process" means to the asked memory: pid and start time (a reused pid is another
 * process) and the executable (a process that execs another program is judged afresh). The exec
 * event and the rescan build it alike, so whichever sees a process first answers for both.
 */
function askedKey(pid: number, startTs: bigint | undefined, exepath: string | undefined): string {
  return `${pid}:${startTs ?? ''}:${exepath ?? ''}`;
}

export class ExecwhackerDetector implements Detector {
  readonly name = 'execwhacker';
  readonly rescanIntervalMs: number;
  private readonly counts = { checked: 0, kills: 0, spared: { allowed: 0, word_boundary: 0, no_match: 0, reader: 0 } as Record<string, number>, rescans: 0 };
  /** askedKey() (and reader:askedKey()) of processes already asked about or reported: kept across reloads. */
  private readonly asked: Set<string>;

  constructor(
    private readonly matcher: ExecMatcher,
    private readonly settings: Pick<ExecwhackerSettings, 'spare_readers' | 'rescan_interval_s'>,
    private readonly ctx: Pick<DetectorContext, 'isSelf' | 'lookup' | 'containerOf'>,
    previous?: ExecwhackerDetector,
  ) {
    this.rescanIntervalMs = settings.rescan_interval_s * 1000;
    this.asked = previous?.asked ?? new Set();
  }

  onEvent(ev: Event): DetectorAnswer[] | undefined {
    if (ev.source !== 'syscall' || (ev.type !== 'execve' && ev.type !== 'execveat')) return undefined;
    const sev = ev as SyscallEvent;
    const proc = sev.proc;
    this.counts.checked++;
    const r = this.matcher.matchProcess(proc);
    if (r.kill) {
      // The same process (pid, start time, image) a rescan has already asked about or reported:
      // the exec event came later (it may wait for the table or a container lookup), and a second
      // request or report would say nothing new.
      const key = proc.start_ts === undefined ? undefined : askedKey(proc.pid, proc.start_ts, proc.exepath);
      const target = targetOf(sev);
      const spare = this.readerSpare(proc.pid, proc.exepath, [proc.exe ?? proc.exepath ?? '', ...(proc.args ?? [])], r, target, ev);
      if (spare) {
        // Spared and reported once: the rescan does not report it again.
        if (key !== undefined) {
          if (this.asked.has(`reader:${key}`)) return undefined;
          this.remember(`reader:${key}`);
        }
        return [spare];
      }
      if (key !== undefined) {
        if (this.asked.has(key)) return undefined;
        // Asked once: the rescan does not ask again about the same process.
        this.remember(key);
      }
      this.counts.kills++;
      return [{ request: whackRequest(r, target, {}, ev) }];
    }
    if (!r.spared) return undefined;
    this.counts.spared[r.spared] = (this.counts.spared[r.spared] ?? 0) + 1;
    // A banned string matched and an allowed pattern spared the process: a decision the user
    // wants to see (every case shows up as an alert). Word-boundary and no-match spares are
    // not: nothing banned was there.
    if (r.spared !== 'allowed') return undefined;
    return [{
      report: {
        request: whackRequest(r, targetOf(sev), { allowed_by: r.allowedBy ?? '', allowed_config: r.allowedConfig ?? '' }, ev),
        outcome: 'spared',
        reason: `allowed pattern ${JSON.stringify(r.allowedBy ?? '')} of config ${r.allowedConfig ?? '?'}`,
      },
    }];
  }

  /** Every running process's current command line through the matcher. */
  rescan(): DetectorAnswer[] {
    this.counts.rescans++;
    const out: DetectorAnswer[] = [];
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
    } catch {
      return out;
    }
    for (const name of pids) {
      const pid = Number(name);
      if (this.ctx.isSelf(pid)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
      } catch {
        continue; // gone, or a kernel thread
      }
      if (argv.length && argv[argv.length - 1] === '') argv.pop();
      if (argv.length === 0) continue;
      const utf8 = argv.map((a) => Buffer.from(a, 'latin1').toString('utf8'));
      // The table may not have taken in a process that has just exec'd (its notice still on the
      // way): read the executable's path itself, or a system reader would look like an impostor.
      const exepath = this.ctx.lookup(pid)?.exepath ?? readExePath(pid);
      const r = this.matcher.matchProcess({ exe: utf8[0], exepath, args: utf8.slice(1) });
      if (!r.kill) continue;
      // Read once: the key of the reader spare and the kill request both carry it.
      const startTs = readStartTs(pid);
      const target = (): Target => ({ pid, ...(startTs === undefined ? {} : { startTs }), cmdline: argv.join(' '), container: this.ctx.containerOf(pid) });
      if (this.settings.spare_readers) {
        const key = `reader:${askedKey(pid, startTs, exepath)}`;
        if (this.asked.has(key)) continue;
        const spare = this.readerSpare(pid, exepath, utf8, r, target());
        if (spare) {
          this.remember(key);
          out.push(spare);
          continue;
        }
      }
      // One request per process: one the safety rules spared is not asked about every rescan.
      if (startTs === undefined) {
        // Gone between the two reads: a lost race, not a process whose identity cannot be
        // checked (the kill would report that as "spared").
        out.push({ report: { request: whackRequest(r, target(), { rescan: true }), outcome: 'missed', reason: 'process gone before its start time could be read' } });
        continue;
      }
      const key = askedKey(pid, startTs, exepath);
      if (this.asked.has(key)) continue;
      this.remember(key);
      this.counts.kills++;
      out.push({ request: whackRequest(r, target(), { rescan: true }) });
    }
    return out;
  }

  stats(): DetectorStats {
    return { checked: this.counts.checked, kills: this.counts.kills, spared: { ...this.counts.spared }, rescans: this.counts.rescans };
  }

  /**
   * spare_readers: a system reader (grep, less, git log…) whose banned strings are only operands
   * is spared, and the spare is reported as an outcome like an allowed pattern's.
   */
  private readerSpare(pid: number, exepath: string | undefined, argv: string[], r: MatchResult, target: Target, event?: Event): DetectorAnswer | undefined {
    if (!this.settings.spare_readers) return undefined;
    const d = spareReader({ pid, exepath, argv }, (a, e) => this.matcher.bannedIn(a, e));
    if (!d.spared) return undefined;
    this.counts.spared.reader = (this.counts.spared.reader ?? 0) + 1;
    return {
      report: {
        request: whackRequest(r, target, { spared_reader: d.tool }, event),
        outcome: 'spared',
        reason: `spare_readers: ${d.tool} is the system's own and the banned string ${JSON.stringify(r.banned ?? '')} is only in what it reads or searches for`,
      },
    };
  }

  /** Remember a process (askedKey) asked about, so it is asked about once. */
  private remember(key: string): void {
    if (this.asked.size > MAX_ASKED) this.asked.clear();
    this.asked.add(key);
  }
}

