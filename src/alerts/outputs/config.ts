/**
 * The `outputs` section: one key per kind of target, each `enabled` plus its own settings. Only
 * stdout is on by default. Every output may set `name` (how its deliveries are kept; the kind by
 * default) and `minimum_priority` (less severe alerts are skipped). A missing required setting of
 * an enabled output is reported at its path, e.g. `outputs.webhook.url`.
 */
import { z } from 'zod';
import { parsePriority } from '../../engine/types.js';

const priority = z.string().refine((s) => parsePriority(s) !== undefined, {
  message: 'not a priority: use emergency, alert, critical, error, warning, notice, informational or debug',
});

/** Settings every output has. */
const common = {
  enabled: z.boolean().default(false),
  /** Deliveries are kept per name; the kind ("webhook", "nats", …) when not set. */
  name: z.string().min(1).regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, "_", "." and "-"').optional(),
  /** Alerts less severe than this are not sent to this output (all are, when not set). */
  minimum_priority: priority.optional(),
};

/** A URL whose scheme is one of `schemes`; the message shows the expected shape. */
function url(schemes: string[], example: string) {
  return z.string().refine((s) => {
    try {
      return schemes.includes(new URL(s).protocol.replace(/:$/, ''));
    } catch {
      return false;
    }
  }, { message: `not a ${schemes.join('/')} URL: write it as ${example}` });
}

/** Fail fast: how long one delivery may take before it is failed and retried later. */
const timeoutMs = (ms: number) => z.number().int().min(100).max(600_000).default(ms);

/** A setting the output cannot work without, once enabled. */
function requireWhenEnabled<T extends { enabled: boolean }>(keys: (keyof T & string)[], what: Record<string, string>) {
  return (v: T, ctx: z.RefinementCtx): void => {
    if (!v.enabled) return;
    for (const k of keys) {
      if (v[k] === undefined || v[k] === '') ctx.addIssue({ code: 'custom', path: [k], message: `required when this output is enabled: ${what[k]}` });
    }
  };
}

const httpAuth = {
  /** Sent as `Authorization: Bearer <token>`. */
  token: z.string().min(1).optional(),
  /** A file holding the token (re-read when it changes, e.g. a projected service-account token). */
  token_file: z.string().min(1).optional(),
  /** Extra request headers. */
  headers: z.record(z.string(), z.string()).default({}),
  timeout_ms: timeoutMs(5000),
  /** TLS: a CA bundle to trust, a client certificate and key (mTLS), or no verification at all. */
  ca_file: z.string().min(1).optional(),
  cert_file: z.string().min(1).optional(),
  key_file: z.string().min(1).optional(),
  insecure: z.boolean().default(false),
};

function noTokenAndFile(v: { token?: string; token_file?: string }, ctx: z.RefinementCtx): void {
  if (v.token && v.token_file) ctx.addIssue({ code: 'custom', path: ['token_file'], message: 'set token or token_file, not both' });
}

const HTTP_URL = url(['http', 'https'], 'http://host:port/path');

export const stdoutOutputSchema = z.strictObject({
  ...common,
  enabled: z.boolean().default(true),
  /** text: Falco's text line; json: Falco's JSON alert, one a line. */
  format: z.enum(['text', 'json']).default('text'),
});

export const fileOutputSchema = z.strictObject({
  ...common,
  path: z.string().min(1).default('/var/log/minewatch/alerts.jsonl'),
  format: z.enum(['text', 'json']).default('json'),
});

export const programOutputSchema = z.strictObject({
  ...common,
  /** A shell command (run with `sh -c`) that reads alerts on its standard input, one a line. */
  program: z.string().min(1).optional(),
  /** One long-running process for all alerts (restarted when it dies), else one per alert. */
  keep_alive: z.boolean().default(false),
  format: z.enum(['text', 'json']).default('json'),
  timeout_ms: timeoutMs(10_000),
}).superRefine(requireWhenEnabled(['program'], { program: "a shell command, e.g. \"jq -c . >> /var/log/alerts.json\"" }));

export const webhookOutputSchema = z.strictObject({
  ...common,
  url: HTTP_URL.optional(),
  user_agent: z.string().min(1).optional(),
  ...httpAuth,
}).superRefine(requireWhenEnabled(['url'], { url: 'the URL alerts are POSTed to, e.g. https://hooks.example.com/falco' }))
  .superRefine(noTokenAndFile);

export const slackOutputSchema = z.strictObject({
  ...common,
  /** The incoming webhook, https://hooks.slack.com/services/… */
  webhook_url: HTTP_URL.optional(),
  channel: z.string().min(1).optional(),
  username: z.string().min(1).default('minewatch'),
  icon_url: HTTP_URL.optional(),
  timeout_ms: timeoutMs(5000),
}).superRefine(requireWhenEnabled(['webhook_url'], { webhook_url: "the Slack incoming webhook's URL, https://hooks.slack.com/services/…" }));

export const falcosidekickOutputSchema = z.strictObject({
  ...common,
  /** falcosidekick's address, or a central `minewatch server`'s: alerts are POSTed to `url` + "/". */
  url: HTTP_URL.optional(),
  ...httpAuth,
}).superRefine(requireWhenEnabled(['url'], { url: "falcosidekick's (or a minewatch server's) address, e.g. http://falcosidekick:2801" }))
  .superRefine(noTokenAndFile);

export const natsOutputSchema = z.strictObject({
  ...common,
  url: url(['nats', 'tls', 'ws', 'wss'], 'nats://host:4222').default('nats://127.0.0.1:4222'),
  /** Subject template: {priority} (lower case), {rule}, {source}, {hostname}, {kind}; each made a valid token. */
  subject: z.string().min(1).regex(/^[^\s*>]+$/, 'a subject to publish on has no spaces and no wildcards ("*", ">")').default('minewatch.alerts.{priority}.{rule}'),
  stream: z.string().regex(/^[^.*> \t]+$/, 'a stream name has no ".", "*", ">" or spaces').default('MINEWATCH_ALERTS'),
  /** Create the stream when it does not exist (listening on `stream_subjects`). */
  create_stream: z.boolean().default(true),
  /** The created stream's subjects; by default the subject template up to its first placeholder, then ">". */
  stream_subjects: z.array(z.string().min(1)).min(1).optional(),
  token: z.string().min(1).optional(),
  user: z.string().min(1).optional(),
  password: z.string().optional(),
  timeout_ms: timeoutMs(5000),
});

export const redisOutputSchema = z.strictObject({
  ...common,
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS). */
  url: url(['redis', 'rediss'], 'redis://host:6379').default('redis://127.0.0.1:6379'),
  key: z.string().min(1).default('minewatch:alerts'),
  /** The stream is trimmed to about this many entries (XADD MAXLEN ~). */
  maxlen: z.number().int().min(1).default(100_000),
  timeout_ms: timeoutMs(5000),
});

export const mqttOutputSchema = z.strictObject({
  ...common,
  url: url(['mqtt', 'mqtts', 'ws', 'wss'], 'mqtt://host:1883').default('mqtt://127.0.0.1:1883'),
  /** Topic template: {priority} (lower case), {rule}, {source}, {hostname}, {kind}; each made a valid level. */
  topic: z.string().min(1).regex(/^[^+#\0]+$/, 'a topic to publish on has no wildcards ("+", "#")').default('minewatch/alerts/{priority}/{rule}'),
  username: z.string().min(1).optional(),
  password: z.string().optional(),
  client_id: z.string().min(1).optional(),
  timeout_ms: timeoutMs(5000),
});

export const outputsSection = z.strictObject({
  stdout: stdoutOutputSchema.prefault({}),
  file: fileOutputSchema.prefault({}),
  program: programOutputSchema.prefault({}),
  webhook: webhookOutputSchema.prefault({}),
  slack: slackOutputSchema.prefault({}),
  falcosidekick: falcosidekickOutputSchema.prefault({}),
  nats: natsOutputSchema.prefault({}),
  redis: redisOutputSchema.prefault({}),
  mqtt: mqttOutputSchema.prefault({}),
});

export type OutputsConfig = z.infer<typeof outputsSection>;
export type OutputKind = keyof OutputsConfig;
export type StdoutOutputConfig = OutputsConfig['stdout'];
export type FileOutputConfig = OutputsConfig['file'];
export type ProgramOutputConfig = OutputsConfig['program'];
export type WebhookOutputConfig = OutputsConfig['webhook'];
export type SlackOutputConfig = OutputsConfig['slack'];
export type FalcosidekickOutputConfig = OutputsConfig['falcosidekick'];
export type NatsOutputConfig = OutputsConfig['nats'];
export type RedisOutputConfig = OutputsConfig['redis'];
export type MqttOutputConfig = OutputsConfig['mqtt'];
