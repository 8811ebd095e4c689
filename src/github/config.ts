/**
 * What the `github` config section (its schema: config/github.ts) builds: the settings with the
 * secrets read from their files, the enricher and the webhook's routes.
 */
import { readFileSync } from 'node:fs';
import type { GithubConfig } from '../config/github.js';
import { GithubApi } from './api.js';
import { GithubEnricher, type EnrichLogger } from './enrich.js';
import { githubWebhookRoutes } from './webhook.js';
import type { EventSink, RoutePlugin } from '../web/types.js';

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
