/**
 * The alert pipeline (ARCHITECTURE.md, "Matches, alerts, actions"): throttle and group → store →
 * outputs. A group's first match is stored and queued for every output at once, never delayed; its
 * repeats only count, and when the window closes one summary with the count is queued. Response
 * actions never pass through here: they ran before the match reached us.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '../platform/logger.js';
import type { OutputValue } from '../engine/output.js';
import { toJsonText } from '../engine/json.js';
import type { Match } from '../engine/types.js';
import { storePath, type AlertsConfig } from './config.js';
import { WalCheckpointer } from './checkpoint.js';
import { DeliveryWorker } from './delivery.js';
import { alertMessage, candidateFromMatch, forwardedCount, forwardedGroup, readIncoming, type Incoming } from './intake.js';
import { AlertStore, type GroupUpdate } from './store.js';
import { Throttle, type Candidate, type OpenGroup, type Placement, type ThrottleStats } from './throttle.js';
import { MatchCounts, type MatchCount } from './match-counts.js';
import { warmMatch } from './warm.js';
import type {
  AlertListener, AlertMessage, AlertQuery, AlertRecord, AlertService, AlertStats, DeliveryKind, IncomingAlert, Output, OutputStats,
} from './types.js';

/** How often counted repeats are written and windows checked. Also the most a SIGKILL can lose of a count. */
const FLUSH_MS = 200;
/** At most one log line this often about groups closed early (max_open_groups). */
const EARLY_LOG_MS = 60_000;

export interface PipelineOptions {
  config: AlertsConfig;
  outputs: Output[];
  log: Logger;
  /** An open store to use instead of opening config.store.path (tests, benches). */
  store?: AlertStore;
  /** Wall clock in ns (tests move it). */
  now?: () => bigint;
  /**
   * Distinct rule names (and sources) the match counts for /metrics keep; the rest are counted
   * under `other` (web.metrics_max_label_values). Posted alerts name their own rules.
   */
  maxLabelValues?: number;
}

export type { MatchCount } from './match-counts.js';

export class AlertPipeline implements AlertService {
  readonly store: AlertStore;
  private readonly throttle: Throttle;
  private readonly workers: DeliveryWorker[];
  private readonly outputNames: string[];
  private readonly listeners = new Set<AlertListener>();
  private readonly log: Logger;
  private readonly now: () => bigint;
  private timer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** A write transaction is open (group commit: committed once per event-loop turn). */
  private txOpen = false;
  private readonly matchCounts: MatchCounts;
  /** WAL checkpoints after a commit's lines, not inside the commit before them (none for a store in memory). */
  private readonly checkpointer: WalCheckpointer | undefined;
  /** When groups closed early were last logged, and how many since. */
  private earlyLoggedAt = 0;
  private earlySinceLog = 0;
  readonly counters = { matches: 0, groups: 0, repeats: 0, summaries: 0, ingested: 0, storeErrors: 0 };

  constructor(private readonly opts: PipelineOptions) {
    this.log = opts.log;
    this.now = opts.now ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.store = opts.store ?? new AlertStore(storePath(opts.config.store.path));
    this.throttle = new Throttle(opts.config.throttle);
    this.matchCounts = new MatchCounts(opts.maxLabelValues);
    const names = new Set<string>();
    for (const o of opts.outputs) {
      if (names.has(o.name)) throw new Error(`outputs: two outputs are named '${o.name}'; give each a unique name`);
      names.add(o.name);
    }
    this.outputNames = [...names];
    this.workers = opts.outputs.map((o) => new DeliveryWorker(o, this.store, opts.config.delivery, opts.log));
    this.store.keepsQueued = true;
    this.checkpointer = this.store.path === ':memory:' ? undefined : new WalCheckpointer(this.store.db, this.store.path, { log: opts.log });
  }

  /** Resume open groups and pending deliveries, start the timers and the outputs. */
  start(): this {
    const now = this.now();
    for (const rec of this.store.openGroups()) {
      this.closeGroups(this.throttle.start(rec.groupKey, rec, rec.windowEnd ?? now, now), now);
    }
    for (const [output, n] of this.store.pendingByOutput()) {
      if (!this.outputNames.includes(output)) {
        this.log.warn({ output, pending: n }, 'alerts are pending for an output that is no longer configured; they stay stored until it is configured again');
      } else {
        this.log.info({ output, pending: n }, 'resuming pending alert deliveries');
      }
    }
    this.warm();
    this.tick();
    this.armTick();
    this.store.textIndex.start();
    const r = this.opts.config.retention;
    this.runRetention();
    this.retentionTimer = setInterval(() => this.runRetention(), r.interval_s * 1000);
    this.retentionTimer.unref();
    for (const w of this.workers) w.start();
    return this;
  }

  /**
   * Run the alert path once on a made-up match, keeping nothing: its group is inserted in a
   * transaction rolled back at once (no row, no delivery, no listener, no output told, no count),
   * its message encoded and rendered by each output that can (Output.warm) but not sent. The
   * agent evaluates events from its start, but nothing on the alert path ran before the first
   * alert, which paid for all of it (compiling the functions, the throttle's key plan, SQLite's
   * first statement runs): 3–5 ms more than the next one, the slowest alert of a storm in 8 of
   * 10 runs (issue 16: exec → alert p99).
   */
  private warm(): void {
    if (this.store.db.inTransaction) return;
    try {
      const c = candidateFromMatch(warmMatch(this.now()));
      const at = this.throttle.place(c, this.now());
      const group = {
        uuid: randomUUID(), groupKey: at.key, rule: c.rule, priority: c.priority, source: c.source, tags: c.tags, hostname: c.hostname,
        output: c.output, outputFields: c.outputFields, firstSeen: c.time, lastSeen: c.time, count: 1, changed: {}, namespace: c.namespace, pod: c.pod,
        containerId: c.containerId, containerName: c.containerName, origin: c.origin, windowEnd: null,
      };
      const msg = this.message({ ...group, id: 0, event: null }, 'first');
      const payload = toJsonText(msg);
      this.store.db.exec('BEGIN');
      try {
        // No outputs: nothing is queued for delivery even in the transaction.
        this.store.insertGroup({ ...group, event: c.event() }, [], payload, msg);
      } finally {
        this.store.db.exec('ROLLBACK');
      }
      for (const w of this.workers) w.output.warm?.(msg);
    } catch (err) {
      // Only time is at stake: the first alert pays for what was not warmed.
      this.log.debug({ err: String(err) }, 'alert path warm-up failed');
    }
  }

  // ---- intake ----

  /** A match from this process's engine. */
  accept(m: Match): AlertRecord | undefined {
    return this.offer(candidateFromMatch(m));
  }

  /** A Falco JSON alert received over HTTP (from Falco, or from another minewatch agent). */
  ingest(received: IncomingAlert): AlertRecord | undefined {
    this.counters.ingested++;
    const x = readIncoming(received, this.now);
    if (x.group) return this.ingestGroup(x, x.group);
    return this.offer(x.candidate);
  }

  /** An agent's group, under the agent's uuid: created once, updated by its summary. */
  private ingestGroup(x: Incoming, mw: AlertMessage['minewatch']): AlertRecord {
    const { a, priority } = x;
    const count = forwardedCount(mw);
    this.begin();
    // A uuid names a group of one host (the inputs stamp each sender's hostname): another host's
    // alert under it goes to a uuid of its own host, derived from both, so it never updates the
    // first host's group and its own later summaries still find it.
    const host = a.hostname ?? '';
    let existing = this.store.getByUuid(mw.uuid);
    if (existing && existing.hostname !== host) {
      mw = { ...mw, uuid: `${mw.uuid}.${createHash('sha256').update(host).digest('hex').slice(0, 16)}` };
      existing = this.store.getByUuid(mw.uuid);
      if (existing && existing.hostname !== host) mw = { ...mw, uuid: randomUUID() };
      if (existing?.uuid !== mw.uuid) existing = undefined;
    }
    this.countMatch(a.rule, priority, a.source ?? 'syscall', existing ? Math.max(0, count - existing.count) : count);
    const { group, payload } = forwardedGroup(x, mw);
    if (existing) {
      if (count <= existing.count && group.lastSeen <= existing.lastSeen) return existing; // a redelivery
      const u: GroupUpdate = { id: existing.id, count: Math.max(count, existing.count), lastSeen: group.lastSeen > existing.lastSeen ? group.lastSeen : existing.lastSeen, changed: mw.changed ?? existing.changed, windowEnd: null };
      this.store.closeGroup(u, payload, this.outputNames);
      const rec = { ...existing, ...u };
      this.afterWrite(rec, 'update');
      return rec;
    }
    const rec = this.store.insertGroup(group, this.outputNames, payload);
    this.counters.groups++;
    this.afterWrite(rec, 'new');
    return rec;
  }

  private countMatch(ruleName: string, priority: string, sourceName: string, n: number): void {
    this.counters.matches += n;
    this.matchCounts.add(ruleName, priority, sourceName, n);
  }

  private offer(c: Candidate): AlertRecord | undefined {
    this.countMatch(c.rule, c.priority, c.source, 1);
    const now = this.now();
    const at = this.throttle.place(c, now);
    if (at.group) {
      this.throttle.count(at.group, c, at.what);
      this.counters.repeats++;
      return undefined;
    }
    const key = at.key;
    // Its last group's window ended between two ticks: that summary goes out before the new first.
    const ended = this.throttle.takeEnded(key, now);
    if (ended) this.closeGroups([ended]);
    const windowEnd = this.throttle.enabled ? this.throttle.windowEndFrom(now) : null;
    const uuid = randomUUID();
    const group = {
      uuid, groupKey: key, rule: c.rule, priority: c.priority, source: c.source, tags: c.tags, hostname: c.hostname,
      output: at.overflow ? c.output + this.overflowNote(c.source) : c.output,
      outputFields: c.outputFields, firstSeen: c.time, lastSeen: c.time, count: 1, changed: at.overflow ? firstValues(at) : {}, namespace: c.namespace, pod: c.pod,
      containerId: c.containerId, containerName: c.containerName, origin: c.origin, windowEnd,
    };
    let rec: AlertRecord;
    this.begin();
    try {
      // Stored before anything forwards it; the first message is queued in the same transaction.
      const msg = this.message({ ...group, id: 0, event: null }, 'first');
      rec = this.store.insertGroup({ ...group, event: c.event() }, this.outputNames, toJsonText(msg), msg);
    } catch (err) {
      this.counters.storeErrors++;
      this.log.error({ rule: c.rule, err: String(err) }, 'cannot store an alert; it is written to the log instead');
      this.log.error({ alert: { rule: c.rule, priority: c.priority, output: c.output, hostname: c.hostname } }, 'unstored alert');
      return undefined;
    }
    this.counters.groups++;
    this.afterWrite(rec, 'new');
    if (windowEnd !== null) {
      this.closeGroups(this.throttle.start(key, rec, windowEnd, now), now);
      this.armTick();
    }
    return rec;
  }

  /** What an overflow group's output says after the first match's own text. */
  private overflowNote(source: string): string {
    const t = this.opts.config.throttle;
    const what = this.throttle.whatKeys(source).join(', ');
    return ` [more than ${t.max_new_groups} groups of this rule here within ${t.window_s} s: matches with other values of ${what} are counted in this alert, their values listed in its summary]`;
  }

  /**
   * Open the write transaction for this callback, if none is. Every alert of a burst (the event
   * pipeline evaluates a batch of events in one callback) then shares one commit (and one full-text
   * index flush) instead of paying for its own; the commit comes as the callback returns, before
   * any output is told of the new messages. Not at the next turn's setImmediate: the poll phase
   * before it (a ring buffer batch to decode, other I/O) held the line back by up to milliseconds
   * (issue 16: exec → alert).
   */
  private begin(): void {
    if (this.txOpen || this.stopped) return;
    this.store.db.exec('BEGIN');
    this.txOpen = true;
    queueMicrotask(() => this.commit());
  }

  commit(): void {
    if (!this.txOpen) return;
    this.txOpen = false;
    try {
      this.store.db.exec('COMMIT');
    } catch (err) {
      this.counters.storeErrors++;
      this.log.error({ err: String(err) }, 'cannot commit alerts to the store');
      try {
        if (this.store.db.inTransaction) this.store.db.exec('ROLLBACK');
      } catch {
        /* already rolled back */
      }
      this.store.takeQueued();
      return;
    }
    // Committed: each output is handed its new messages as they are, and sends them now if it
    // has nothing older to send (the exec → alert path reads nothing back, issue 16).
    const queued = this.store.takeQueued();
    for (const w of this.workers) {
      if (queued.length > 0) w.handOff(this.workers.length === 1 ? queued : queued.filter((q) => q.output === w.output.name));
      w.wake();
    }
    // The text index after (src/alerts/text-index.ts), then the checkpoint: both wait for a pause.
    this.store.textIndex.committed();
    this.checkpointer?.committed();
  }

  private afterWrite(rec: AlertRecord, change: 'new' | 'update'): void {
    for (const l of this.listeners) {
      try {
        l(rec, change);
      } catch (err) {
        this.log.warn({ err: String(err) }, 'alert listener failed');
      }
    }
  }

  /** Falco's JSON alert for a group, with the group data beside it. */
  message(rec: AlertRecord, kind: DeliveryKind): AlertMessage {
    return alertMessage(rec, kind);
  }

  // ---- timers ----

  /**
   * The flush tick runs only while a group is open: with none, it has nothing to write or close,
   * and an idle agent woke 5 times a second for it (issue 16). It stops itself once all are closed.
   */
  /** Whether the flush tick is running (only while a group is open). */
  get ticking(): boolean {
    return this.timer !== undefined;
  }

  private armTick(): void {
    if (this.timer || this.stopped || this.throttle.idle) return;
    this.timer = setInterval(() => this.tick(), FLUSH_MS);
    this.timer.unref();
  }

  private toUpdate(g: OpenGroup, open: boolean): GroupUpdate {
    return { id: g.id, count: g.count, lastSeen: g.lastSeen, changed: g.changed, windowEnd: open ? g.windowEnd : null };
  }

  /** Write counted repeats; close the windows that ended, queueing a summary where there were repeats. */
  private tick(): void {
    if (this.stopped) return;
    try {
      const dirty = this.throttle.takeDirty();
      // Nothing counted since the last tick: no transaction (an idle agent wakes here 5 times a second).
      if (dirty.length > 0) {
        this.begin();
        this.store.updateGroups(dirty.map((g) => this.toUpdate(g, true)));
      }
      for (const g of dirty) this.notifyUpdate(g.id);
      this.closeGroups(this.throttle.closeDue(this.now()));
    } catch (err) {
      this.counters.storeErrors++;
      this.log.error({ err: String(err) }, 'cannot write alert counts; retrying');
      return;
    }
    if (this.timer && this.throttle.idle) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * Close groups: final counts written, a summary queued where there were repeats. With `nowNs`,
   * those whose window had not ended by then were closed early, to keep max_open_groups: they are
   * logged (at most once a minute).
   */
  private closeGroups(groups: OpenGroup[], nowNs?: bigint): void {
    if (groups.length === 0) return;
    this.begin();
    for (const g of groups) {
      try {
        // A lone match has no summary: only its window is closed, without reading the row back.
        if (g.count <= 1) {
          this.store.closeGroup(this.toUpdate(g, false), null, this.outputNames);
          continue;
        }
        const rec = this.store.get(g.id);
        if (!rec) continue;
        const final = { ...rec, count: g.count, lastSeen: g.lastSeen, changed: g.changed, windowEnd: null };
        const summary = this.message(final, 'summary');
        this.store.closeGroup(this.toUpdate(g, false), toJsonText(summary), this.outputNames, summary);
        this.counters.summaries++;
        this.afterWrite(final, 'update');
      } catch (err) {
        this.counters.storeErrors++;
        this.log.error({ err: String(err), rule: g.rule, count: g.count, uuid: g.uuid }, 'cannot close an alert group in the store; its final count is in this line');
      }
    }
    if (nowNs === undefined) return;
    const early = groups.filter((g) => g.windowEnd > nowNs).length;
    if (early === 0) return;
    this.earlySinceLog += early;
    const ms = Date.now();
    if (ms - this.earlyLoggedAt < EARLY_LOG_MS) return;
    this.log.warn(
      { closedEarly: this.earlySinceLog, maxOpenGroups: this.opts.config.throttle.max_open_groups },
      'alert groups closed before their window ended: alerts.throttle.max_open_groups are open; their counts and summaries went out early, nothing is lost (raise the limit if this is normal here)',
    );
    this.earlyLoggedAt = ms;
    this.earlySinceLog = 0;
  }

  private notifyUpdate(id: number): void {
    if (this.listeners.size === 0) return;
    const rec = this.store.get(id);
    if (rec) for (const l of this.listeners) l(rec, 'update');
  }

  private runRetention(): void {
    const r = this.opts.config.retention;
    this.begin();
    try {
      const n = this.store.applyRetention({ nowNs: this.now(), maxAgeDays: r.max_age_days, maxAlerts: r.max_alerts, maxSizeMb: r.max_size_mb });
      if (n > 0) this.log.info({ deleted: n }, 'alert retention deleted old groups');
    } catch (err) {
      this.log.error({ err: String(err) }, 'alert retention failed');
    }
  }

  /** Write what is counted now, and commit (tests, before a planned stop). */
  flush(): void {
    this.tick();
    this.commit();
  }

  // ---- AlertService ----

  query(q: AlertQuery): AlertRecord[] {
    return this.store.query(q);
  }

  get(id: number): AlertRecord | undefined {
    return this.store.get(id);
  }

  stats(q: AlertQuery, bucketMs: number): AlertStats {
    return this.store.stats(q, bucketMs);
  }

  subscribe(l: AlertListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  outputStats(): OutputStats[] {
    return this.outputNames.map((name) => {
      const c = this.store.counters(name);
      return { name, pending: c.pending, delivered: c.delivered, failures: c.failures, lastError: c.lastError };
    });
  }

  /** Matches counted so far, by rule, priority and source (for /metrics). */
  matchCountsByRule(): MatchCount[] {
    return this.matchCounts.list();
  }

  get openGroups(): number {
    return this.throttle.size;
  }

  /** Open groups, groups closed early, matches folded into overflow groups (for /metrics). */
  groupingStats(): ThrottleStats {
    return this.throttle.stats();
  }

  /** Write what is counted, stop the outputs (pending messages stay stored), close the store. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.tick();
    this.commit();
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.retentionTimer);
    await Promise.all(this.workers.map((w) => w.stop()));
    // Rows still waiting for the text index stay listed: the next open indexes them.
    this.store.textIndex.stop();
    this.checkpointer?.stop();
    if (!this.opts.store) this.store.close();
  }
}

/** An overflow group's first values of the keys that fold into it, so its list of them is complete. */
function firstValues(at: Placement): Record<string, OutputValue[]> {
  const out: Record<string, OutputValue[]> = {};
  const { names, values } = at.what;
  for (let i = 0; i < names.length; i++) if (values[i] !== null) out[names[i]!] = [values[i]!];
  return out;
}

export { parseIsoNs } from './intake.js';
