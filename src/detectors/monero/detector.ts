/**
 * cryptnono's monero detector, on minewatch's RandomX rule: the eBPF driver's FPU figures are
 * judged by the rule "RandomX Floating-Point Rounding Pattern" (its alert is on wherever a rule
 * reads mw_fpu_rounding events); `detectors.monero.enabled: true` also kills the process it names,
 * as cryptnono's monero detector kills what it catches (outside the response section's dry run,
 * like the other detectors).
 *
 * It is built whether or not it kills: every RandomX match tells the eBPF driver the process has
 * been judged (fpuJudged, given at construction), so the kernel sends fewer of its events.
 */
import type { Match } from '../../engine/types.js';
import type { Event, SyscallEvent } from '../../events.js';
import type { ActionRequest } from '../../response/types.js';
import { RANDOMX_EVENT } from '../../sources/ebpf/randomx.js';
import type { DetectorContext } from '../module.js';
import { targetOf } from '../../response/target.js';
import type { Detector, DetectorAnswer, DetectorStats } from '../types.js';

/** The default rule that judges mw_fpu_rounding events; detectors.monero.enabled kills on its matches. */
export const RANDOMX_RULE = 'RandomX Floating-Point Rounding Pattern';

/** Processes remembered as asked about; past this the memory starts afresh. */
const MAX_ASKED = 10_000;

/**
 * cryptnono's kill for RandomX: one request per process (pid and start time), whatever number of
 * matches its events produce afterwards.
 */
export class MoneroKiller {
  private readonly asked = new Set<string>();

  /** The request for a match, or undefined (not the RandomX rule, or this process was asked about). */
  requestFor(m: Match): ActionRequest | undefined {
    if (m.rule !== RANDOMX_RULE) return undefined;
    const ev = m.event as SyscallEvent;
    if (ev.source !== 'syscall' || ev.type !== RANDOMX_EVENT || !ev.proc) return undefined;
    const key = `${ev.proc.pid}:${ev.proc.start_ts ?? ''}`;
    if (this.asked.has(key)) return undefined;
    if (this.asked.size >= MAX_ASKED) this.asked.clear();
    this.asked.add(key);
    const f = ev.fpu ?? {};
    return {
      action: 'kill', target: targetOf(ev), trigger: 'monero', mode: 'enforce', event: ev, match: m,
      details: { rounding_count: f.rounding_count ?? 0, rounding_changes: f.rounding_changes ?? 0, busy_percent: f.busy_percent ?? 0 },
    };
  }
}

export class MoneroDetector implements Detector {
  readonly name = 'monero';
  private readonly counts = { judged: 0, kills: 0 };

  /**
   * `killer`: the kill, when detectors.monero.enabled (kept across reloads: a miner already asked
   * about is not asked about again).
   */
  constructor(readonly killer: MoneroKiller | undefined, private readonly ctx: Pick<DetectorContext, 'fpuJudged'>) {}

  /** It acts on the rule's matches only. */
  onEvent(): undefined {
    return undefined;
  }

  onMatch(m: Match, ev: Event): DetectorAnswer[] | undefined {
    if (m.rule !== RANDOMX_RULE || ev.source !== 'syscall') return undefined;
    const proc = (ev as SyscallEvent).proc;
    if (proc) {
      this.counts.judged++;
      this.ctx.fpuJudged?.(proc.pid, proc.start_ts);
    }
    const request = this.killer?.requestFor(m);
    if (!request) return undefined;
    this.counts.kills++;
    return [{ request }];
  }

  stats(): DetectorStats {
    return { ...this.counts };
  }
}
