/**
 * Fleet mode's NATS settings (issue 18): `alerts.forward` on an agent (publish every group and
 * summary to a JetStream stream, each agent on a subject of its own) and `alerts.consume` on a
 * `minewatch server` (one durable pull consumer on that stream, shared by every replica).
 *
 * Both take a nats:// (or tls://) URL alone, or an object with the URL and the credentials as
 * NATS takes them: user/password, token, an nkey seed file, a .creds file, and TLS files.
 */
import { z } from 'zod';

const NATS_SCHEMES = ['nats', 'tls', 'ws', 'wss'];

const natsUrl = z.string().refine((s) => {
  try {
    return NATS_SCHEMES.includes(new URL(s).protocol.replace(/:$/, ''));
  } catch {
    return false;
  }
}, { message: 'not a NATS URL: write it as nats://host:4222 (tls://host:4222 for TLS); HTTP forwarding to a server is outputs.falcosidekick.url' });

/** A subject prefix: tokens of letters, digits, "_" and "-", separated by dots, no wildcards. */
const subjectPrefix = z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a subject prefix such as minewatch.alerts (tokens of letters, digits, "_", "-"; no wildcards)');

const connection = {
  url: natsUrl,
  user: z.string().min(1).optional(),
  password: z.string().optional(),
  /** A password kept in a file (a mounted Secret), read at start. */
  password_file: z.string().min(1).optional(),
  token: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
  /** A file holding an nkey seed (SU…): the user authenticates by signing the server's nonce. */
  nkey_seed_file: z.string().min(1).optional(),
  /** A .creds file (a user JWT and its nkey seed), as `nsc` writes it. */
  creds_file: z.string().min(1).optional(),
  tls: z.strictObject({
    ca_file: z.string().min(1).optional(),
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
  }).optional(),
  /** The JetStream stream holding every agent's alerts. */
  stream: z.string().regex(/^[^.*> \t]+$/, 'a stream name has no ".", "*", ">" or spaces').default('MINEWATCH_FLEET'),
  /** Each agent publishes on `<subject_prefix>.<its hostname>`; the stream stores `<subject_prefix>.>`. */
  subject_prefix: subjectPrefix.default('minewatch.alerts'),
  timeout_ms: z.number().int().min(100).max(600_000).default(5000),
};

function oneSecretEach(v: { password?: string; password_file?: string; token?: string; token_file?: string; nkey_seed_file?: string; creds_file?: string }, ctx: z.RefinementCtx): void {
  if (v.password !== undefined && v.password_file) ctx.addIssue({ code: 'custom', path: ['password_file'], message: 'set password or password_file, not both' });
  if (v.token && v.token_file) ctx.addIssue({ code: 'custom', path: ['token_file'], message: 'set token or token_file, not both' });
  const kinds = [v.password !== undefined || v.password_file ? 'user/password' : '', v.token || v.token_file ? 'token' : '', v.nkey_seed_file ? 'nkey_seed_file' : '', v.creds_file ? 'creds_file' : ''].filter(Boolean);
  if (kinds.length > 1) ctx.addIssue({ code: 'custom', path: [], message: `one way to authenticate at a time, got ${kinds.join(' and ')}` });
}

/** A URL alone is the object with only `url`. */
const urlOrObject = <T extends z.ZodTypeAny>(obj: T) => z.preprocess((v) => (typeof v === 'string' ? { url: v } : v), obj);

export const forwardSchema = urlOrObject(z.strictObject({ ...connection }).superRefine(oneSecretEach));

export const consumeSchema = urlOrObject(z.strictObject({
  ...connection,
  /** The durable consumer every replica shares: JetStream hands each message to one of them. */
  consumer: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-"').default('minewatch-server'),
  /** Create the stream when missing (the server's NATS user needs the JetStream API for that). */
  create_stream: z.boolean().default(true),
  /** JetStream drops a message whose id it saw within this window (a resend after a lost PubAck). */
  duplicate_window_s: z.number().int().min(1).max(86_400).default(600),
  /** Messages not consumed within this time are dropped by the stream (the agents keep theirs only until acked). */
  max_age_days: z.number().min(0).default(7),
  /** Messages one replica takes at once; acked together after one store commit. */
  batch: z.number().int().min(1).max(10_000).default(256),
  /** A message not acked within this time goes to another replica (a replica that died holding it). */
  ack_wait_s: z.number().int().min(1).max(3600).default(30),
}).superRefine(oneSecretEach));

export type ForwardConfig = z.infer<typeof forwardSchema>;
export type ConsumeConfig = z.infer<typeof consumeSchema>;
export type NatsConnectionConfig = Omit<ForwardConfig, never>;
