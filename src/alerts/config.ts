/** The `alerts` config section: throttling and grouping, the store, retention, delivery. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * Where minewatch keeps its state: $MINEWATCH_STATE_DIR, else /var/lib/minewatch as root (the
 * agent's normal case), else ~/.local/state/minewatch (a user trying it out).
 */
export function stateDir(): string {
  const env = process.env.MINEWATCH_STATE_DIR;
  if (env) return env;
  if (process.getuid?.() === 0) return '/var/lib/minewatch';
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'minewatch');
}

/** The store's file: the configured path, or alerts.db in the state folder. */
export function storePath(configured: string): string {
  return configured === '' ? join(stateDir(), 'alerts.db') : configured;
}

/** Keys a group can be made of: the rule always; then any of these, in the order given. */
export const GROUP_KEYS = ['hostname', 'container.id', 'k8s.ns.name', 'k8s.pod.name', 'source', 'proc.name', 'proc.exepath', 'user.name'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

const throttle = z.strictObject({
  /** Repeats inside this many seconds of a group's first alert are counted, not forwarded. 0 = off. */
  window_s: z.number().min(0).default(300),
  /** What makes two matches of one rule the same group (the rule itself always does). */
  keys: z.array(z.enum(GROUP_KEYS)).default(['hostname', 'container.id', 'k8s.ns.name']),
  /** How many distinct values per changed field a group keeps. */
  max_changed_values: z.number().int().min(0).default(20),
});

const store = z.strictObject({
  /**
   * SQLite database file (WAL). Empty: alerts.db in the state folder (see stateDir). ":memory:"
   * keeps nothing across restarts (replays, throwaway runs).
   */
  path: z.string().default(''),
});

const retention = z.strictObject({
  /** Groups last seen longer ago than this are deleted (0 = keep forever). */
  max_age_days: z.number().min(0).default(30),
  /** Above this many groups the oldest are deleted (0 = no limit). */
  max_alerts: z.number().int().min(0).default(1_000_000),
  /** Above this database size the oldest groups are deleted (0 = no limit). */
  max_size_mb: z.number().min(0).default(1024),
  /** How often retention runs. */
  interval_s: z.number().min(1).default(60),
});

const delivery = z.strictObject({
  /** Messages in flight per output at once. */
  concurrency: z.number().int().min(1).max(64).default(4),
  /** Retry backoff: first wait, doubling up to the max. */
  retry_initial_ms: z.number().int().min(1).default(1000),
  retry_max_ms: z.number().int().min(1).default(60_000),
  /** A send that takes longer than this counts as failed and is retried. */
  send_timeout_ms: z.number().int().min(1).default(30_000),
});

export const alertsSection = z.strictObject({
  throttle: throttle.default(throttle.parse({})),
  store: store.default(store.parse({})),
  retention: retention.default(retention.parse({})),
  delivery: delivery.default(delivery.parse({})),
});

export type AlertsConfig = z.infer<typeof alertsSection>;
export type ThrottleConfig = AlertsConfig['throttle'];
export type DeliveryConfig = AlertsConfig['delivery'];
export type RetentionConfig = AlertsConfig['retention'];
