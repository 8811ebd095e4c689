/**
 * The alert store's contract, in front of both stores: SQLite (src/alerts/store.ts, the default,
 * one host, synchronous) and PostgreSQL (src/alerts/pg/store.ts, shared by server replicas,
 * asynchronous). A caller awaits every result; SQLite's come back at once.
 */
import type { OutputValue } from '../engine/output.js';
import type { AlertMessage, AlertQuery, AlertRecord, AlertStats, DeliveryKind } from './types.js';

/** A group as the pipeline creates it: an AlertRecord before it has a row id. */
export type NewGroup = Omit<AlertRecord, 'id' | 'event'> & { event: string | null };

/** What a group's repeats change. */
export interface GroupUpdate {
  id: number;
  count: number;
  lastSeen: bigint;
  changed: Record<string, OutputValue[]>;
  windowEnd: bigint | null;
}

/** One message waiting for one output. */
export interface PendingDelivery {
  id: number;
  messageId: number;
  alertId: number;
  kind: DeliveryKind;
  payload: string;
  attempts: number;
  /**
   * The message itself, when the writer handed it to the output as it committed (SQLite): sent
   * as it is, not parsed back from `payload`.
   */
  message?: AlertMessage;
}

export interface OutputCounters {
  pending: number;
  dead: number;
  delivered: number;
  failures: number;
  lastError: string | null;
}


export type Awaitable<T> = T | Promise<T>;

export interface RetentionLimits {
  nowNs: bigint;
  maxAgeDays: number;
  maxAlerts: number;
  maxSizeMb: number;
}

export interface AlertBackend {
  readonly kind: 'sqlite' | 'postgres';
  /** Where it is, for logs: a file, or the URL without its password. */
  readonly location: string;

  // ---- groups (each call is atomic: the group and its queued messages together) ----
  /** Store a new group and queue its first message for the outputs. */
  insertGroup(g: NewGroup, outputs: readonly string[], payload: string | null): Awaitable<AlertRecord>;
  /** Queue one more message (a summary, a forwarded update) of a stored group. */
  enqueue(alertId: number, kind: DeliveryKind, payload: string, outputs: readonly string[]): Awaitable<void>;
  updateGroups(updates: readonly GroupUpdate[]): Awaitable<void>;
  /** Close a group's window: final counts, and its summary queued (when given). */
  closeGroup(u: GroupUpdate, summary: string | null, outputs: readonly string[]): Awaitable<void>;
  /** Groups whose throttle window was open at the last write. */
  openGroups(): Awaitable<AlertRecord[]>;

  // ---- reads (the API and dashboard) ----
  get(id: number): Awaitable<AlertRecord | undefined>;
  getByUuid(uuid: string): Awaitable<AlertRecord | undefined>;
  query(q: AlertQuery): Awaitable<AlertRecord[]>;
  /** The dashboard's counts (whole hours from the hourly rollups, src/alerts/rollup.ts). */
  stats(q: AlertQuery, bucketMs: number): Awaitable<AlertStats>;

  // ---- output queues ----
  /**
   * Take up to `limit` pending messages of an output, oldest first. PostgreSQL leases them to this
   * replica (no other replica sends them until the lease ends); SQLite has one sender.
   */
  claim(output: string, limit: number): Awaitable<PendingDelivery[]>;
  /** The output accepted it: dequeued, counted. */
  delivered(output: string, d: PendingDelivery): Awaitable<void>;
  /** Many accepted at once, in one write (SQLite: one transaction for a batch, not one each). */
  deliveredAll?(output: string, ds: readonly PendingDelivery[]): Awaitable<void>;
  /** A failed attempt: pending again (or, `permanent`, set aside as dead). */
  failed(output: string, d: PendingDelivery, error: string, permanent: boolean): Awaitable<void>;
  counters(output: string): Awaitable<OutputCounters>;
  pendingByOutput(): Awaitable<Map<string, number>>;
  /** A write is open whose messages outputs must not see yet (SQLite's group commit). */
  writing(): boolean;

  // ---- retention ----
  /** Delete groups past the limits (never one with an undelivered message or an open window). */
  applyRetention(opts: RetentionLimits): Awaitable<number>;

  close(): Awaitable<void>;
}
