/**
 * The alert pipeline's shapes (ARCHITECTURE.md, "Matches, alerts, actions"): a match becomes an
 * alert group (throttled repeats of one rule for one container/namespace/host), stored first, then
 * delivered to every output. Falco's JSON alert is only the wire format.
 */
import type { FalcoJsonAlert, OutputValue } from '../engine/output.js';
import type { Priority } from '../engine/types.js';

/** One stored alert group: the first event in full, and what its repeats changed. */
export interface AlertRecord {
  /** Row id in this store (stable for the life of the store; the API and dashboard use it). */
  id: number;
  /**
   * Stable identity across hops: an agent's group keeps its uuid when forwarded to a central
   * `minewatch server`, so the first message and the later summary land on the same row there.
   */
  uuid: string;
  /** The throttle key this group was counted under. */
  groupKey: string;
  rule: string;
  priority: Priority;
  source: string;
  tags: string[];
  hostname: string;
  /** The first event's rule output (no time or priority prefix). */
  output: string;
  /** The first event's output fields. */
  outputFields: Record<string, OutputValue>;
  /** First and last time seen, ns since the epoch (event time). */
  firstSeen: bigint;
  lastSeen: bigint;
  /** How many matches this group holds (1 for a lone alert). */
  count: number;
  /** Per output field whose value changed across the repeats: its distinct values (capped). */
  changed: Record<string, OutputValue[]>;
  /** Where it ran: taken from the event or, for Falco alerts received over HTTP, its output fields. */
  namespace: string | null;
  pod: string | null;
  containerId: string | null;
  containerName: string | null;
  /** The first event as the engine saw it (JSON of the event model), when the alert was local. */
  event: unknown;
  /** Where the alert came from: this process's engine, or an input (Falco, another agent). */
  origin: 'local' | 'input';
  /** When the throttle window for this group closes (ns); null once closed. */
  windowEnd: bigint | null;
}

/** What the API and dashboard may filter on. Every field is optional; all given must hold. */
export interface AlertQuery {
  /** Time range on lastSeen, ns since the epoch (inclusive from, exclusive to). */
  from?: bigint;
  to?: bigint;
  rule?: string[];
  priority?: Priority[];
  /** At least this severe (inclusive). */
  minPriority?: Priority;
  source?: string[];
  hostname?: string[];
  namespace?: string[];
  pod?: string[];
  container?: string[];
  /** Substring of the output text (case-insensitive). */
  text?: string;
  /** Newest first; page with `beforeId` (ids of the previous page's last row). */
  limit?: number;
  beforeId?: number;
}

/** What one delivery carries: the first occurrence at once, a summary when a window closes. */
export type DeliveryKind = 'first' | 'summary';

/**
 * The message every output is given: Falco's JSON alert (so falcosidekick-shaped consumers keep
 * working) and minewatch's group data beside it under one key consumers may ignore.
 */
export interface AlertMessage extends FalcoJsonAlert {
  minewatch: {
    uuid: string;
    kind: DeliveryKind;
    count: number;
    first_seen: string;
    last_seen: string;
    changed?: Record<string, OutputValue[]>;
  };
}

/** One output target. `send` resolves when the target accepted the message, rejects otherwise. */
export interface Output {
  /** Unique among the configured outputs: deliveries are kept per name. */
  readonly name: string;
  send(msg: AlertMessage): Promise<void>;
  /** Do what sending `msg` would do, short of sending it (the pipeline warms its alert path at start). */
  warm?(msg: AlertMessage): void;
  /** Release connections; pending deliveries stay in the store for the next start. */
  close(): Promise<void>;
}

/** An output whose target refuses the message for good (4xx, bad config): no retries. */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
}

/** Counts for the dashboard's summary: over the alerts a query selects (counts are match counts). */
export interface AlertStats {
  /** Groups and matches selected. */
  groups: number;
  matches: number;
  byPriority: Record<string, number>;
  /** [value, matches], most first, at most 50 each. */
  byRule: [string, number][];
  byNamespace: [string, number][];
  byHostname: [string, number][];
  /** Matches per time bucket (bucket start in ms since the epoch), oldest first. */
  timeline: { t: number; count: number }[];
}

/**
 * What the web API reads (implemented by both stores: SQLite answers at once, PostgreSQL with a
 * promise; callers await either).
 */
export interface AlertReader {
  query(q: AlertQuery): AlertRecord[] | Promise<AlertRecord[]>;
  get(id: number): AlertRecord | undefined | Promise<AlertRecord | undefined>;
  stats(q: AlertQuery, bucketMs: number): AlertStats | Promise<AlertStats>;
}

/**
 * A Falco JSON alert received over HTTP (`POST /`, `POST /falco`), validated. When it comes from
 * another minewatch agent it carries the `minewatch` group data, and is stored under its uuid.
 */
export type IncomingAlert = FalcoJsonAlert & { minewatch?: Partial<AlertMessage['minewatch']> };

/** Told of every stored change: a new group, or a group whose count or summary changed. */
export type AlertListener = (rec: AlertRecord, change: 'new' | 'update') => void;

/** Delivery state of one output, for /metrics and the API. */
export interface OutputStats {
  name: string;
  pending: number;
  delivered: number;
  failures: number;
  /** Last error text, when the last attempt failed. */
  lastError: string | null;
}

/** What the web server needs from the pipeline (implemented by AlertPipeline in src/alerts/). */
export interface AlertService extends AlertReader {
  /**
   * Store (and forward) an alert received from Falco or an agent. Undefined when it was a repeat
   * counted into an open group (no row of its own). Its `id` is final once commit() has resolved
   * (the PostgreSQL store writes at commit).
   */
  ingest(a: IncomingAlert): AlertRecord | undefined;
  /**
   * Make everything accepted so far durable (writes are committed in groups, once per event-loop
   * turn): an input awaits this before it acknowledges a request. Rejects when the store did not
   * take them (the sender keeps them and retries).
   */
  commit(): void | Promise<void>;
  subscribe(l: AlertListener): () => void;
  outputStats(): OutputStats[];
}
