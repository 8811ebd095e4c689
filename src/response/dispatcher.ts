/**
 * Takes every match (and every detector's request) first, before throttling or storage, and runs
 * the configured actions on it. Each outcome — done, would-do, spared, missed, failed — comes back
 * as an alert of its own, so what minewatch did is in the same place as what it saw.
 */
import { hostname as osHostname } from 'node:os';
import type { Match, Priority } from '../engine/types.js';
import { parsePriority, priorityRank } from '../engine/types.js';
import type { PluginEvent, SyscallEvent } from '../events.js';
import type { ResponseConfig } from './config.js';
import { auditSkipReason, auditTarget } from './k8s/audit-target.js';
import type { ActionName, ActionOutcome, ActionRequest, ActionResult, ResponseAction } from './types.js';
import { targetOf } from './target.js';

export interface DispatcherStats {
  requested: number;
  byOutcome: Record<ActionOutcome, number>;
}

const OUTCOME_PRIORITY: Record<ActionOutcome, Priority> = {
  done: 'CRITICAL',
  failed: 'ERROR',
  dryrun: 'WARNING',
  missed: 'NOTICE',
  spared: 'NOTICE',
  skipped: 'INFORMATIONAL',
};

export { targetOf };

/** An action's outcome as an alert: its own rule name, the process, and what was done or why not. */
export function resultToMatch(r: ActionResult, host: string): Match {
  const { request: q, outcome } = r;
  const t = q.target;
  const verb = outcome === 'done' ? 'done' : outcome === 'dryrun' ? 'would run (dry run)' : outcome;
  const why = r.reason ? ` (${r.reason})` : '';
  const o = t.object;
  const what = o ? `${o.kind} ${o.namespace}/${o.name}` : `pid ${t.pid}`;
  const fields: Match['outputFields'] = {
    'mw.response.action': q.action,
    'mw.response.outcome': outcome,
    'mw.response.reason': r.reason ?? null,
    'mw.response.trigger': q.trigger,
    'mw.response.mode': q.mode,
    'proc.pid': o ? null : t.pid,
    'proc.cmdline': t.cmdline ?? null,
    'container.id': t.container?.id ?? null,
    'k8s.ns.name': t.k8s?.ns_name ?? null,
    'k8s.pod.name': t.k8s?.pod_name ?? null,
    'fd.rip': t.remote?.ip ?? null,
  };
  if (o) Object.assign(fields, { 'ka.target.resource': o.resource, 'ka.target.name': o.name, 'ka.target.namespace': o.namespace, 'ka.user.name': o.user ?? null });
  for (const [k, v] of Object.entries(q.details ?? {})) fields[`mw.response.${k}`] = v;
  const detail = Object.entries(q.details ?? {}).map(([k, v]) => ` ${k}=${String(v)}`).join('');
  return {
    rule: `minewatch response: ${q.action}`,
    priority: OUTCOME_PRIORITY[outcome],
    source: 'minewatch',
    tags: ['minewatch', 'response', q.action, outcome],
    output: o
      ? `${q.action} of ${what} ${verb}${why}: triggered by ${q.trigger} | user=${o.user ?? '<NA>'} verb=${o.verb ?? '<NA>'}${detail}`
      : `${q.action} of ${what} ${verb}${why}: triggered by ${q.trigger} | cmdline=${t.cmdline ?? '<NA>'} container_id=${t.container?.id ?? '<NA>'}${t.remote ? ` destination=${t.remote.ip}` : ''}${detail}`,
    outputFields: fields,
    time: BigInt(Date.now()) * 1_000_000n,
    hostname: host,
    event: q.event ?? ({ source: 'minewatch', type: 'response', ts: BigInt(Date.now()) * 1_000_000n } as Match['event']),
  };
}

/** What the outcome alert says when enforce mode was lowered to a dry run for a learned name. */
export const DNS_ONLY_DRYRUN = 'dry run: destination named only by a DNS answer';

/**
 * The event without the names that came only from DNS answers (fd.sip_name_dns, fd.cip_name_dns),
 * or undefined when it has none: what a match must still match for an action to run for real.
 */
function withoutLearnedNames(ev: SyscallEvent): SyscallEvent | undefined {
  const fd = ev.fd;
  if (!fd || (!fd.sip_name_dns && !fd.cip_name_dns)) return undefined;
  const copy = { ...fd };
  if (copy.sip_name_dns) delete copy.sip_name;
  if (copy.cip_name_dns) delete copy.cip_name;
  delete copy.sip_name_dns;
  delete copy.cip_name_dns;
  return { ...ev, fd: copy };
}

export interface ResponseDispatcherOptions {
  /**
   * Whether a rule still matches an event (the rules engine's `recheck`: undefined when the rule is
   * no longer loaded, which counts as not matching). Without it, any match on an event named by a
   * DNS answer runs as a dry run.
   */
  stillMatches?: (rule: string, ev: SyscallEvent) => boolean | undefined;
}

export class ResponseDispatcher {
  readonly stats: DispatcherStats = { requested: 0, byOutcome: { done: 0, dryrun: 0, spared: 0, missed: 0, failed: 0, skipped: 0 } };
  private readonly host: string;

  constructor(
    private cfg: ResponseConfig,
    private readonly actions: Partial<Record<ActionName, ResponseAction>>,
    /** Where the outcome alerts go (the alert pipeline). */
    private readonly emit: (m: Match) => void,
    host?: string,
    private readonly opts: ResponseDispatcherOptions = {},
  ) {
    this.host = host ?? osHostname();
  }

  /** A config reload: the new response.mode and actions apply to the next match. */
  setConfig(cfg: ResponseConfig): void {
    this.cfg = cfg;
  }

  /** The actions configured for a rule match (or a rule), in the order they are listed, each once. */
  actionsFor(m: Pick<Match, 'rule' | 'tags' | 'priority'>): ActionName[] {
    const out: ActionName[] = [];
    for (const entry of this.cfg.actions) {
      const min = entry.priority ? parsePriority(entry.priority) : undefined;
      const hit = entry.rules.includes(m.rule) || entry.tags.some((t) => m.tags.includes(t)) || (min !== undefined && priorityRank(m.priority) <= priorityRank(min));
      if (hit) for (const a of entry.do) if (!out.includes(a)) out.push(a);
    }
    return out;
  }

  /**
   * A rule matched: run its actions. A syscall match acts on its process (and its pod); a k8s_audit
   * match on the object the API request named, and the actions that cannot apply to it are
   * recorded as skipped. Never throws; outcomes arrive as alerts.
   */
  onMatch(m: Match): void {
    if (m.source === 'minewatch') return; // never act on our own outcome alerts
    const ev = m.event as SyscallEvent | PluginEvent;
    if (ev.source === 'k8s_audit') return this.onAuditMatch(m, ev as PluginEvent);
    if (ev.source !== 'syscall' || !(ev as SyscallEvent).proc) return;
    const names = this.actionsFor(m);
    if (names.length === 0) return;
    const target = targetOf(ev as SyscallEvent);
    // A name from a DNS answer can be forged (by whoever runs the resolver a namespace uses, or
    // owns the namespace): when the match holds only because of one, nothing is done for real.
    let mode = this.cfg.mode;
    let details: ActionRequest['details'];
    if (mode === 'enforce' && this.learnedNameOnly(m, ev as SyscallEvent)) {
      mode = 'dryrun';
      details = { note: DNS_ONLY_DRYRUN };
    }
    for (const action of names) this.request({ action, target, trigger: m.rule, mode, event: ev, match: m, ...(details ? { details } : {}) });
  }

  /** True when the match no longer holds once the names learned from DNS are taken away. */
  private learnedNameOnly(m: Match, ev: SyscallEvent): boolean {
    const bare = withoutLearnedNames(ev);
    if (!bare) return false;
    const check = this.opts.stillMatches;
    if (!check) return true;
    try {
      return check(m.rule, bare) !== true;
    } catch {
      return true;
    }
  }

  private onAuditMatch(m: Match, ev: PluginEvent): void {
    const names = this.actionsFor(m);
    if (names.length === 0) return;
    const a = auditTarget(ev);
    for (const action of names) {
      const req: ActionRequest = { action, target: a.target, trigger: m.rule, mode: this.cfg.mode, event: ev, match: m };
      const skip = auditSkipReason(action, a);
      if (skip) {
        this.stats.requested++;
        this.report({ request: req, outcome: 'skipped', reason: skip });
      } else this.request(req);
    }
  }

  /**
   * A detector decided not to act and says so (execwhacker: a banned string matched, an allowed
   * pattern spared the process): the outcome is written as an alert like any other; nothing runs.
   */
  report(r: ActionResult): void {
    this.stats.byOutcome[r.outcome]++;
    try {
      this.emit(resultToMatch(r, this.host));
    } catch {
      // An output failing must not throw into the detector.
    }
  }

  /** A detector (execwhacker, tcpflowkiller) asks for an action. */
  request(req: ActionRequest): void {
    this.stats.requested++;
    const impl = this.actions[req.action];
    const started = process.hrtime.bigint();
    const finish = (r: ActionResult): void => {
      r.decideNs ??= Number(process.hrtime.bigint() - started);
      if (r.outcome === 'dryrun' && req.details?.note === DNS_ONLY_DRYRUN) r.reason = r.reason ? `${DNS_ONLY_DRYRUN}; ${r.reason}` : DNS_ONLY_DRYRUN;
      this.report(r);
    };
    if (!impl) {
      finish({ request: req, outcome: 'failed', reason: `action '${req.action}' is not available on this host` });
      return;
    }
    impl.run(req).then(finish, (e: unknown) => finish({ request: req, outcome: 'failed', reason: (e as Error).message ?? String(e) }));
  }
}
