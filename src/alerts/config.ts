/** The `alerts` config section: throttling and grouping, the store, retention, delivery. */
import { join } from 'node:path';
import { z } from 'zod';
import { stateDir } from '../platform/state.js';
import { defaultRegistry } from '../fields/index.js';
import type { FieldRegistry } from '../fields/registry.js';
import { consumeSchema, forwardSchema } from './fleet-config.js';

/** The store's file: the configured path, or alerts.db in the state folder. */
export function storePath(configured: string): string {
  return configured === '' ? join(stateDir(), 'alerts.db') : configured;
}

/**
 * Keys that are columns of every alert (the rest are fields of the match's source). They say
 * *where* something happened; see isPlaceKey.
 */
export const COLUMN_KEYS = ['hostname', 'container.id', 'k8s.ns.name', 'k8s.pod.name', 'source'] as const;

/** A group key: a column key, or a field of the match's source, e.g. proc.exepath or proc.aname[2]. */
export type GroupKey = string;

/**
 * Whether a key says *where* a match happened (host, container, namespace, repository) rather
 * than *what* ran there (an executable, a user, an object): the groups of one rule in one place
 * are what `max_new_groups` bounds. Everything not listed here names what matched.
 */
export function isPlaceKey(k: GroupKey): boolean {
  return (COLUMN_KEYS as readonly string[]).includes(k) || k.startsWith('container.') || k.startsWith('k8s.')
    || k === 'ka.target.namespace' || k === 'github.org' || k === 'github.owner' || k === 'github.repo' || k.startsWith('github.repo.');
}

/**
 * The default group keys, by event source (`default` for every source not named):
 * - syscall and the rest: host, container and namespace, and the executable that ran, so a
 *   second, different program is a new alert at once while a respawning one stays one group;
 * - k8s_audit: the object the request names (resource, namespace, name; mw.k8s.name because a
 *   create request often names its object only in the body, not in objectRef);
 * - github: the repository and the workflow file.
 */
export const DEFAULT_GROUP_KEYS: Readonly<Record<string, readonly GroupKey[]>> = {
  default: ['hostname', 'container.id', 'k8s.ns.name', 'proc.exepath'],
  k8s_audit: ['hostname', 'ka.target.resource', 'ka.target.namespace', 'mw.k8s.name'],
  github: ['hostname', 'github.repo.name', 'github.workflow.filename'],
};

const FIELD_KEY = /^[A-Za-z_][\w.]*(?:\[[^\]]+\])?$/;
let knownFields: FieldRegistry | undefined;

/** A key must be a column or a field some source knows (checked once, at load). */
function groupKeyProblem(k: string): string | undefined {
  if ((COLUMN_KEYS as readonly string[]).includes(k)) return undefined;
  const m = FIELD_KEY.exec(k);
  if (!m) return `'${k}' is not a field name (write it as in a rule: proc.exepath, proc.aname[2])`;
  const bracket = k.indexOf('[');
  const name = bracket < 0 ? k : k.slice(0, bracket);
  const arg = bracket < 0 ? undefined : k.slice(bracket + 1, -1);
  // A group key is stored as it is (the group_key column, an overflow group's values): a process's
  // environment must never get there unredacted (see "What alerts keep of a process's environment").
  if (name === 'proc.env' || name.startsWith('proc.env.')) {
    return `'${k}' cannot be a group key: it would store a process's environment (its user's secrets) with every group; group by proc.exepath, proc.name or user.name instead`;
  }
  knownFields ??= defaultRegistry();
  const reg = knownFields;
  const errors: string[] = [];
  for (const source of reg.sources()) {
    try {
      reg.resolve(source, name, arg);
      return undefined;
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  return `${errors[0] ?? `unknown field '${k}'`}; a group key is one of ${COLUMN_KEYS.join(', ')} or a field of the rules' sources (\`minewatch fields\` lists them)`;
}

const groupKey = z.string().superRefine((k, ctx) => {
  const p = groupKeyProblem(k);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
const groupKeyList = z.array(groupKey);

/**
 * `keys`: one list for every source, or lists by source name (`default` for the sources not
 * named), merged over DEFAULT_GROUP_KEYS. Normalized to the by-source form.
 */
const groupKeys = z
  .union([groupKeyList, z.record(z.string(), groupKeyList)])
  .transform((v): Record<string, GroupKey[]> => (Array.isArray(v) ? { default: v } : { ...structuredClone(DEFAULT_GROUP_KEYS) as Record<string, GroupKey[]>, ...v }));

const throttle = z.strictObject({
  /** Repeats inside this many seconds of a group's first alert are counted, not forwarded. 0 = off. */
  window_s: z.number().min(0).default(300),
  /** What makes two matches of one rule the same group (the rule itself always does). */
  keys: groupKeys.default(() => structuredClone(DEFAULT_GROUP_KEYS) as Record<string, GroupKey[]>),
  /**
   * New groups one rule may open in one place (the keys that say where: host, container,
   * namespace) within a window. Past that, matches that would open another (a miner renaming
   * itself at every respawn) fold into one group of that place that counts them and lists their
   * distinct values. 0 = no limit.
   */
  max_new_groups: z.number().int().min(0).default(20),
  /**
   * Groups open at once (memory). Past this, the oldest group is closed early: its count is
   * written and its summary sent now, so nothing is lost; a later repeat starts a new group.
   */
  max_open_groups: z.number().int().min(1).default(10_000),
  /** How many distinct values per changed field a group keeps. */
  max_changed_values: z.number().int().min(0).default(20),
});

const store = z.strictObject({
  /**
   * SQLite database file (WAL). Empty: alerts.db in the state folder (see stateDir). ":memory:"
   * keeps nothing across restarts (replays, throwaway runs).
   */
  path: z.string().default(''),
  /**
   * `minewatch server` only: postgres://user@host:5432/database (libpq's URL, sslmode and
   * sslrootcert included) keeps groups, output queues and retention in PostgreSQL, shared by any
   * number of server replicas, instead of the SQLite file. Empty: SQLite.
   */
  url: z.string().default('').refine((u) => u === '' || /^postgres(ql)?:\/\//i.test(u), { message: "must be a postgres:// URL (postgres://user@host:5432/database) or ''" }),
  /** A file holding the PostgreSQL password (a mounted secret); else the URL's or PGPASSWORD. */
  password_file: z.string().optional(),
  /** Connections each replica opens to PostgreSQL at most. */
  pool_size: z.number().int().min(2).max(200).default(10),
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
  /** Fleet mode (src/alerts/fleet-config.ts): an agent's JetStream forwarder, a server's consumer. */
  forward: forwardSchema.optional(),
  consume: consumeSchema.optional(),
});

export type AlertsConfig = z.infer<typeof alertsSection>;
export type ThrottleConfig = AlertsConfig['throttle'];
export type DeliveryConfig = AlertsConfig['delivery'];
export type RetentionConfig = AlertsConfig['retention'];
