/**
 * The `github` config section: the webhook's secret, the GitHub API the source calls (github.com
 * or an Enterprise server), its token, and the limits. Secrets can live in files (secret_file,
 * token_file: a mounted Kubernetes secret) so the config itself can be shared.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_API_URL, GithubApi } from './api.js';
import { GithubEnricher, type EnrichLogger } from './enrich.js';
import { DEFAULT_MAX_BODY, githubWebhookRoutes } from './webhook.js';
import type { EventSink, RoutePlugin } from '../web/types.js';

export const githubSection = z.strictObject({
  /** Serve POST /github on the agent's web server. */
  enabled: z.boolean().default(false),
  /** The webhook secret, as typed into GitHub's webhook settings. */
  secret: z.string().min(1).optional(),
  /** A file holding the secret (trailing newline ignored). */
  secret_file: z.string().min(1).optional(),
  /** REST API base: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server. */
  api_url: z.string().regex(/^https?:\/\/[^\s/]+/, 'must be an http(s) URL, e.g. https://api.github.com').default(DEFAULT_API_URL),
  /** API token (contents: read); else token_file, else the GITHUB_TOKEN environment variable. */
  token: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
  /** Budget for one API call, retries included. */
  fetch_timeout_ms: z.number().int().min(100).max(60_000).default(5000),
  /** Budget for all the calls of one event (GitHub waits 10 s for the webhook's answer). */
  event_budget_ms: z.number().int().min(100).max(60_000).default(8000),
  /** Largest webhook body accepted (GitHub's own cap is 25 MB). */
  max_body_bytes: z.number().int().min(1024).max(25 * 1024 * 1024).default(DEFAULT_MAX_BODY),
  /** Fetch the workflow file of workflow_run events and check it for miners. */
  scan_workflows: z.boolean().default(true),
  /** Fetch the diff of push events and look for committed secrets. */
  scan_diffs: z.boolean().default(true),
  /** Deliveries (body digests, with their delivery ids) remembered to drop GitHub's redeliveries and replays. */
  dedup_size: z.number().int().min(16).max(1_000_000).default(10_000),
}).superRefine((c, ctx) => {
  if (c.secret && c.secret_file) ctx.addIssue({ code: 'custom', path: ['secret_file'], message: 'give secret or secret_file, not both' });
  if (c.token && c.token_file) ctx.addIssue({ code: 'custom', path: ['token_file'], message: 'give token or token_file, not both' });
  if (c.enabled && !c.secret && !c.secret_file) {
    ctx.addIssue({ code: 'custom', path: ['secret'], message: 'the webhook needs a secret (secret or secret_file): unsigned deliveries are never accepted' });
  }
});

export type GithubConfig = z.infer<typeof githubSection>;

export class GithubConfigError extends Error {}

function readSecretFile(file: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new GithubConfigError(`github.${key}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path and its permissions`);
  }
  const v = text.replace(/\r?\n$/, '');
  if (v === '') throw new GithubConfigError(`github.${key}: ${file} is empty`);
  return v;
}

export interface GithubSettings {
  secret?: string;
  token?: string;
}

/** The secret and token the config points at (files read now, GITHUB_TOKEN as the token's fallback). */
export function resolveGithubSettings(cfg: GithubConfig, env: NodeJS.ProcessEnv = process.env): GithubSettings {
  return {
    secret: cfg.secret ?? (cfg.secret_file ? readSecretFile(cfg.secret_file, 'secret_file') : undefined),
    token: cfg.token ?? (cfg.token_file ? readSecretFile(cfg.token_file, 'token_file') : undefined) ?? (env.GITHUB_TOKEN || undefined),
  };
}

/** The API client and enricher a config describes. */
export function githubEnricherFor(cfg: GithubConfig, settings: GithubSettings, log?: EnrichLogger): GithubEnricher {
  const api = new GithubApi({ baseUrl: cfg.api_url, token: settings.token, timeoutMs: cfg.fetch_timeout_ms });
  return new GithubEnricher(api, { workflows: cfg.scan_workflows, diffs: cfg.scan_diffs, budgetMs: cfg.event_budget_ms, log });
}

/** The POST /github route for the agent's web server, from the `github` section. */
export function githubRoutesFor(cfg: GithubConfig, sink: EventSink, log?: EnrichLogger, env: NodeJS.ProcessEnv = process.env): RoutePlugin {
  const settings = resolveGithubSettings(cfg, env);
  if (!settings.secret) throw new GithubConfigError('github: the webhook needs a secret (github.secret or github.secret_file)');
  return githubWebhookRoutes({
    secret: settings.secret,
    sink,
    enricher: githubEnricherFor(cfg, settings, log),
    maxBodyBytes: cfg.max_body_bytes,
    dedupSize: cfg.dedup_size,
    log,
  });
}
