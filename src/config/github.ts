/**
 * The `github` config section: the webhook's secret, the GitHub API the source calls (github.com
 * or an Enterprise server), its token, and the limits. Secrets can live in files (secret_file,
 * token_file: a mounted Kubernetes secret) so the config itself can be shared. What it builds:
 * github/config.ts.
 */
import { z } from 'zod';

/** The REST API of github.com. */
export const DEFAULT_API_URL = 'https://api.github.com';
/** Largest webhook body accepted by default. */
export const DEFAULT_MAX_BODY = 5 * 1024 * 1024;

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

