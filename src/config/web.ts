/**
 * The `web` config section: where the one HTTP server listens, its tokens, TLS, request limits.
 * Listening beyond loopback without a token is refused here (at load, with the key's place in the
 * file) and again when the server starts (for callers that build options by hand).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_MAX_LABEL_VALUES } from '../platform/label-cap.js';

export const DEFAULT_LISTEN = '127.0.0.1:8788';
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export interface ListenAddress {
  host: string;
  port: number;
}

/** "127.0.0.1:8788", "[::1]:8788", "0.0.0.0:8788", "localhost:8788"; a bare port means 127.0.0.1. */
export function parseListen(s: string): ListenAddress | string {
  const text = s.trim();
  if (/^\d+$/.test(text)) return checkPort('127.0.0.1', text);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) return `'${s}' is not HOST:PORT (e.g. 127.0.0.1:8788, [::1]:8788, 0.0.0.0:8788)`;
  const host = m[1]!;
  if (host !== 'localhost' && !isIP(host)) return `'${host}' is not an IP address (or localhost): listen on an address, e.g. 0.0.0.0:8788`;
  return checkPort(host, m[2]!);
}

function checkPort(host: string, p: string): ListenAddress | string {
  const port = Number(p);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return `port ${p} is out of range (0-65535)`;
  return { host, port };
}

/** Whether only this machine can reach the address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '::ffff:127.0.0.1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

const secret = z.string().min(16, { message: 'too short: use at least 16 characters (e.g. `openssl rand -hex 32`)' });

const hostname = z.string().min(1).max(253).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: 'not a hostname: letters, digits, dots, dashes and underscores' });
const k8sName = z.string().min(1).max(253).regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { message: 'not a Kubernetes name (lower-case letters, digits, dashes, dots)' });

/** One agent allowed to post alerts, with its own token; its alerts are stored under `hostname`. */
const inputAgent = z.strictObject({
  hostname,
  token: secret.optional(),
  token_file: z.string().min(1).optional(),
}).superRefine((a, ctx) => {
  if ((a.token === undefined) === (a.token_file === undefined)) ctx.addIssue({ code: 'custom', path: ['token'], message: 'give token or token_file (one of them)' });
});

/**
 * The alert inputs (POST / and /falco; on the agent also the webhooks it mounts). Each sender has
 * an identity, and the hostname of its alerts is the one its identity gives, never what it claims.
 */
export const inputsSection = z.strictObject({
  /**
   * `minewatch run` mounts no input unless true (any local user could otherwise post alerts, or
   * webhook events, to the agent). `minewatch server` always has them: they are its purpose.
   */
  enabled: z.boolean().optional(),
  /** Agents with their own tokens (web.token is the operator's: do not hand it to agents). */
  agents: z.array(inputAgent).default([]),
  /**
   * Kubernetes ServiceAccounts whose tokens are accepted, checked with a TokenReview; the hostname
   * is the node the token's pod runs on. The Helm chart's agents send their projected token.
   */
  service_accounts: z.array(z.strictObject({ namespace: k8sName, name: k8sName })).default([]),
  /** The audience the ServiceAccount tokens must be issued for (the chart projects this one). */
  audience: z.string().min(1).default('minewatch'),
  /** How long a reviewed token's answer is kept (a TokenReview per request would load the API server). */
  review_cache_s: z.number().int().min(0).max(3600).default(60),
}).superRefine((inp, ctx) => {
  const seen = new Map<string, number>();
  inp.agents.forEach((a, i) => {
    const t = a.token ?? `file:${a.token_file}`;
    const j = seen.get(t);
    if (j !== undefined) ctx.addIssue({ code: 'custom', path: ['agents', i, a.token ? 'token' : 'token_file'], message: `the same token as agents[${j}]: give each agent its own` });
    seen.set(t, i);
  });
});

export type InputsConfig = z.infer<typeof inputsSection>;

export const webSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** HOST:PORT. Beyond loopback the API, dashboard data and inputs need `token`. */
  listen: z.string().default(DEFAULT_LISTEN).superRefine((s, ctx) => {
    const r = parseListen(s);
    if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
  }),
  /** Bearer token for the API, the dashboard's data and the alert inputs. */
  token: secret.optional(),
  /** A file holding the token (a mounted Kubernetes secret); surrounding whitespace is ignored. */
  token_file: z.string().min(1).optional(),
  /** When set, /metrics needs this bearer token; otherwise it is open (Prometheus scrapes). */
  metrics_token: secret.optional(),
  metrics_token_file: z.string().min(1).optional(),
  /** Distinct values per /metrics label (rule names, sources…); later ones are counted under `other`. */
  metrics_max_label_values: z.number().int().min(1).max(100_000).default(DEFAULT_MAX_LABEL_VALUES),
  tls: z.strictObject({ cert_file: z.string().min(1), key_file: z.string().min(1) }).optional(),
  /** Larger request bodies are answered 413. */
  max_body_bytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(DEFAULT_MAX_BODY_BYTES),
  inputs: inputsSection.default(inputsSection.parse({})),
}).superRefine((w, ctx) => {
  if (w.token !== undefined && w.token_file !== undefined) ctx.addIssue({ code: 'custom', path: ['token_file'], message: 'give token or token_file, not both' });
  if (w.metrics_token !== undefined && w.metrics_token_file !== undefined) ctx.addIssue({ code: 'custom', path: ['metrics_token_file'], message: 'give metrics_token or metrics_token_file, not both' });
  w.inputs.agents.forEach((a, i) => {
    if (a.token !== undefined && a.token === w.token) ctx.addIssue({ code: 'custom', path: ['inputs', 'agents', i, 'token'], message: 'the same as web.token (the operator\'s, trusted with any hostname): give each agent a token of its own' });
  });
  const addr = parseListen(w.listen);
  if (typeof addr !== 'string' && !isLoopback(addr.host) && w.token === undefined && w.token_file === undefined) {
    ctx.addIssue({ code: 'custom', path: ['listen'], message: `listening on ${w.listen} (beyond loopback) needs a token: set web.token or web.token_file, or listen on 127.0.0.1` });
  }
});

export type WebConfig = z.infer<typeof webSection>;

/** A secret file's content, trimmed; an unreadable or empty file names itself and the key. */
export function readSecretFile(path: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new Error(`web.${key}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path and its permissions`);
  }
  if (text.length < 16) throw new Error(`web.${key}: ${path} holds ${text.length ? 'a token shorter than 16 characters' : 'nothing'}; put a token of at least 16 characters in it (e.g. \`openssl rand -hex 32 > ${path}\`)`);
  return text;
}
