/**
 * The alert service of a `minewatch server` replica on the PostgreSQL store (alerts.store.url):
 * what the inputs, API, stream and /metrics need, as AlertPipeline gives them on SQLite.
 *
 * Agents group their matches themselves; here each received group is one idempotent upsert, and
 * the alerts accepted in one event-loop turn are written in one transaction at commit(), which the
 * input awaits before it acknowledges. Alerts without a group uuid (Falco's own, the server's
 * webhook matches) are stored one group each: replicas share no throttle. Changes reach the
 * dashboard streams of every replica through LISTEN/NOTIFY. Output deliveries are leased to one
 * replica at a time.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../platform/logger.js';
import { toJsonText } from '../../engine/json.js';
import type { Match } from '../../engine/types.js';
import type { AlertsConfig } from '../config.js';
import { DeliveryWorker } from '../delivery.js';
import { alertMessage, candidateFromMatch, forwardedGroup, readIncoming } from '../intake.js';
import { MatchCounts, type MatchCount } from '../match-counts.js';
import type { Candidate, ThrottleStats } from '../throttle.js';
import type { AlertListener, AlertQuery, AlertRecord, AlertService, AlertStats, IncomingAlert, Output, OutputStats } from '../types.js';
import { PgAlertStore, type GroupWrite, type WriteResult } from './store.js';

/** How often the rollup deltas are folded, and the output counters re-read for /metrics. */
const COMPACT_MS = 5_000;
const COUNTERS_MS = 5_000;
/** How often idle delivery workers look for deliveries whose lease ended (a dead replica's). */
const LEASE_POLL_MS = 5_000;
/** How many times (a second apart) a change is read again for the streams while PostgreSQL is away. */
const STREAM_READ_TRIES = 60;

export interface PgServiceOptions {
  config: AlertsConfig;
  outputs: Output[];
  log: Logger;
  maxLabelValues?: number;
  now?: () => bigint;
}

interface Pending {
  write: GroupWrite;
  rec: AlertRecord;
  /** Counted for /metrics once stored (a redelivery counts nothing). */
  matches: { rule: string; priority: string; source: string; n: number };
}

export class PgAlertService implements AlertService {
  private readonly workers: DeliveryWorker[];
  private readonly outputNames: string[];
  private readonly listeners = new Set<AlertListener>();
  private readonly matchCounts: MatchCounts;
  private readonly now: () => bigint;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private timers: NodeJS.Timeout[] = [];
  private stopListening: (() => Promise<void>) | undefined;
  private outputCounters: OutputStats[];
  private stopped = false;
  readonly counters = { matches: 0, groups: 0, repeats: 0, summaries: 0, ingested: 0, storeErrors: 0 };

  private constructor(readonly store: PgAlertStore, private readonly opts: PgServiceOptions) {
    this.now = opts.now ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.matchCounts = new MatchCounts(opts.maxLabelValues);
    const names = new Set<string>();
    for (const o of opts.outputs) {
      if (names.has(o.name)) throw new Error(`outputs: two outputs are named '${o.name}'; give each a unique name`);
      names.add(o.name);
    }
    this.outputNames = [...names];
    this.outputCounters = this.outputNames.map((name) => ({ name, pending: 0, delivered: 0, failures: 0, lastError: null }));
    // Leased for longer than a send may take, so a slow send is never taken over while it runs.
    this.workers = opts.outputs.map((o) => new DeliveryWorker(o, store, opts.config.delivery, opts.log));
  }

  /** Connect, migrate, listen for every replica's changes, start the outputs and timers. */
  static async start(opts: PgServiceOptions): Promise<PgAlertService> {
    const s = opts.config.store;
    const store = await PgAlertStore.open({ url: s.url, password_file: s.password_file, pool_size: s.pool_size, leaseMs: opts.config.delivery.send_timeout_ms + 30_000 });
    const svc = new PgAlertService(store, opts);
    try {
      svc.stopListening = await store.listen((changes) => svc.announce(changes), (e) => opts.log.warn({ err: e.message }, 'alert change notifications lost; reconnecting'));
      for (const [output, n] of await store.pendingByOutput()) {
        if (!svc.outputNames.includes(output)) opts.log.warn({ output, pending: n }, 'alerts are pending for an output that is no longer configured; they stay stored until it is configured again');
      }
    } catch (e) {
      await store.close();
      throw e;
    }
    svc.startTimers();
    for (const w of svc.workers) w.start();
    return svc;
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => Promise<unknown>, what: string) => {
      const t = setInterval(() => void fn().catch((err) => this.opts.log.warn({ err: String(err) }, what)), ms);
      t.unref();
      this.timers.push(t);
    };
    every(COMPACT_MS, () => this.store.compactRollups(), 'cannot fold the rollup deltas; retrying');
    every(COUNTERS_MS, () => this.refreshCounters(), 'cannot read the output counters');
    // A replica that died holding deliveries leaves them leased: look again after a while, and
    // after a NOTIFY lost while PostgreSQL was away.
    every(LEASE_POLL_MS, async () => {
      for (const w of this.workers) w.wake();
    }, 'cannot wake the delivery workers');
    const r = this.opts.config.retention;
    const retention = async () => {
      const n = await this.store.applyRetention({ nowNs: this.now(), maxAgeDays: r.max_age_days, maxAlerts: r.max_alerts, maxSizeMb: r.max_size_mb });
      if (n > 0) this.opts.log.info({ deleted: n }, 'alert retention deleted old groups');
    };
    every(r.interval_s * 1000, retention, 'alert retention failed');
    void retention().catch((err) => this.opts.log.warn({ err: String(err) }, 'alert retention failed'));
  }

  private async refreshCounters(): Promise<void> {
    this.outputCounters = await Promise.all(this.outputNames.map(async (name) => {
      const c = await this.store.counters(name);
      return { name, pending: c.pending, delivered: c.delivered, failures: c.failures, lastError: c.lastError };
    }));
  }

  /** Changes any replica committed: read the groups and tell this replica's listeners. */
  private announce(changes: { id: number; change: 'new' | 'update' }[]): void {
    // Another replica's (or the fleet consumer's) writes queued messages: this replica's workers
    // may take them (found in the fleet drill: workers woken only by their own commits left the
    // consumer's deliveries unsent).
    for (const w of this.workers) w.wake();
    if (this.listeners.size === 0) return;
    this.readChanged(changes.map((c) => c.id), 0).then((recs) => {
      const byId = new Map(recs.map((r) => [r.id, r]));
      for (const c of changes) {
        const rec = byId.get(c.id);
        if (!rec) continue;
        for (const l of this.listeners) {
          try {
            l(rec, c.change);
          } catch (err) {
            this.opts.log.warn({ err: String(err) }, 'alert listener failed');
          }
        }
      }
    }, (err) => this.opts.log.warn({ err: String(err) }, 'cannot read changed alerts for the stream'));
  }

  /**
   * The changed groups, read again while PostgreSQL is away (found in the fleet drill: a change
   * announced just before an outage was lost to the streams when its read failed).
   */
  private async readChanged(ids: number[], attempt: number): Promise<AlertRecord[]> {
    try {
      return await this.store.getMany(ids);
    } catch (err) {
      if (this.stopped || attempt >= STREAM_READ_TRIES) throw err;
      await new Promise((r) => setTimeout(r, 1000).unref());
      return this.readChanged(ids, attempt + 1);
    }
  }

  // ---- intake ----

  private enqueue(write: GroupWrite, matches: Pending['matches']): AlertRecord {
    const g = write.group;
    const rec: AlertRecord = { ...g, id: 0, event: null };
    this.queue.push({ write, rec, matches });
    // Written at the end of this turn, with everything else accepted in it (one transaction).
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.commit().catch(() => undefined); // logged in flush; inputs await their own commit
      });
    }
    return rec;
  }

  private lone(c: Candidate): AlertRecord {
    const uuid = randomUUID();
    const rec = { ...c, uuid, groupKey: `${c.rule}\u0000${c.hostname}`, firstSeen: c.time, lastSeen: c.time, count: 1, changed: {}, windowEnd: null, id: 0, event: null };
    const group = { ...rec, event: c.event() };
    return this.enqueue({ group, kind: 'first', payload: toJsonText(alertMessage(rec, 'first')) }, { rule: c.rule, priority: c.priority, source: c.source, n: 1 });
  }

  /** A match of the server's own engine (webhooks, audit logs): a group of its own. */
  accept(m: Match): AlertRecord | undefined {
    return this.lone(candidateFromMatch(m));
  }

  ingest(received: IncomingAlert): AlertRecord | undefined {
    this.counters.ingested++;
    const x = readIncoming(received, this.now);
    if (!x.group) return this.lone(x.candidate);
    const f = forwardedGroup(x, x.group);
    return this.enqueue(f, { rule: f.group.rule, priority: f.group.priority, source: f.group.source, n: f.group.count });
  }

  /**
   * Write everything accepted so far, in one transaction (again after a deadlock). Resolves when
   * it is committed; rejects when the store did not take it (the input then answers 503 and the
   * agent keeps its alerts). Local matches that could not be stored are logged, as on SQLite.
   */
  commit(): Promise<void> {
    const run = async (): Promise<void> => {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.write(batch);
        } catch (err) {
          if (!isDataError(err)) {
            this.counters.storeErrors++;
            this.opts.log.error({ err: String(err), alerts: batch.length }, 'cannot write alerts to the PostgreSQL store');
            for (const p of batch) if (p.write.group.origin === 'local') this.unstored(p);
            throw err;
          }
          // One alert the database refuses for what it holds (a value too large to index, a bad
          // byte): the others are written one by one; it is logged in full, never retried forever.
          for (const p of batch) {
            try {
              await this.write([p]);
            } catch (e) {
              if (!isDataError(e)) throw e;
              this.counters.storeErrors++;
              this.opts.log.error({ err: String(e) }, 'the PostgreSQL store refused an alert for what it holds; it is written to the log instead');
              this.unstored(p);
            }
          }
        }
        for (const w of this.workers) w.wake();
      }
    };
    // One flush at a time, in order: a commit waits for the one before it, then writes the rest.
    const next = (this.flushing ?? Promise.resolve()).catch(() => undefined).then(run);
    this.flushing = next;
    return next;
  }

  private async write(batch: Pending[]): Promise<void> {
    const results = await this.store.writeGroups(batch.map((p) => p.write), this.outputNames);
    results.forEach((r, i) => {
      const p = batch[i]!;
      if (!r) return; // a redelivery: nothing changed
      p.rec.id = r.id;
      this.counters.matches += p.matches.n;
      this.matchCounts.add(p.matches.rule, p.matches.priority, p.matches.source, p.matches.n);
      if (r.change === 'new') this.counters.groups++;
      else if (p.write.kind === 'summary') this.counters.summaries++;
    });
  }

  /**
   * Groups written by another path of this replica (the fleet consumer's batches), counted for
   * /metrics as this service's own writes are: only what a write changed, by the matches it added
   * to what was stored, so a JetStream redelivery (which changes nothing) counts nothing, and a
   * group's first message and its summary add up to its count.
   */
  countWritten(writes: readonly GroupWrite[], results: readonly (WriteResult | undefined)[]): void {
    const fresh = new Set<number>();
    results.forEach((r, i) => {
      if (!r) return;
      const g = writes[i]!.group;
      const n = r.added ?? g.count;
      this.counters.matches += n;
      if (n > 0) this.matchCounts.add(g.rule, g.priority, g.source, n);
      // A batch may hold a group's first and its summary: one new group.
      if (r.change === 'new' && !fresh.has(r.id)) {
        fresh.add(r.id);
        this.counters.groups++;
      }
      if (writes[i]!.kind === 'summary') this.counters.summaries++;
    });
  }

  private unstored(p: Pending): void {
    const r = p.rec;
    this.opts.log.error({ alert: { uuid: r.uuid, rule: r.rule, priority: r.priority, output: r.output, hostname: r.hostname, count: r.count } }, 'unstored alert');
  }

  // ---- reads ----

  query(q: AlertQuery): Promise<AlertRecord[]> {
    return this.store.query(q);
  }

  get(id: number): Promise<AlertRecord | undefined> {
    return this.store.get(id);
  }

  stats(q: AlertQuery, bucketMs: number): Promise<AlertStats> {
    return this.store.stats(q, bucketMs);
  }

  subscribe(l: AlertListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Per output, as last read (every few seconds): /metrics is answered without a query. */
  outputStats(): OutputStats[] {
    return this.outputCounters;
  }

  matchCountsByRule(): MatchCount[] {
    return this.matchCounts.list();
  }

  /** No throttle here: agents group their own matches. */
  groupingStats(): ThrottleStats {
    return { open: 0, closedEarly: 0, folded: 0, overflowGroups: 0 };
  }

  get openGroups(): number {
    return 0;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.commit().catch(() => undefined);
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.workers.map((w) => w.stop()));
    await this.stopListening?.();
    await this.store.close();
  }
}

/** The database refused the data itself (SQLSTATE class 22 data exception, 54 limit exceeded). */
function isDataError(e: unknown): boolean {
  return /^(22|54)/.test((e as { code?: string }).code ?? '');
}
