/** Webhook payloads shaped like GitHub's (the keys the fields and the enricher read, and some around them). */
import { createHmac } from 'node:crypto';

export const REPO = 'acme/widgets';
export const HEAD_SHA = '8d1e3c7b5a4f2e1d0c9b8a7f6e5d4c3b2a1f0e9d';
export const BEFORE_SHA = '1f2e3d4c5b6a79880716253443526170f8e9dacb';

function repository(isPrivate: boolean) {
  return {
    id: 700123, name: 'widgets', full_name: REPO, private: isPrivate, html_url: `https://github.com/${REPO}`,
    description: 'Widgets for everyone', default_branch: 'main', owner: { login: 'acme', type: 'Organization' },
  };
}

const sender = { login: 'mallory', id: 9001, type: 'User' };
const organization = { login: 'acme', id: 42 };

export function workflowRunPayload(opts: { path?: string; sha?: string; action?: string; private?: boolean } = {}) {
  const path = opts.path ?? '.github/workflows/ci.yml';
  const sha = opts.sha ?? HEAD_SHA;
  return {
    action: opts.action ?? 'requested',
    workflow_run: {
      id: 6512345678, name: 'CI', head_branch: 'patch-1', head_sha: sha, path, run_attempt: 1, event: 'pull_request',
      status: 'queued', conclusion: null, head_repository: { full_name: REPO }, repository: { full_name: REPO },
    },
    workflow: { id: 77001, name: 'CI', path, state: 'active' },
    repository: repository(opts.private ?? false),
    organization,
    sender,
  };
}

export function pushPayload(opts: { private?: boolean; before?: string; after?: string; added?: string[] } = {}) {
  const after = opts.after ?? HEAD_SHA;
  return {
    ref: 'refs/heads/main', before: opts.before ?? BEFORE_SHA, after,
    compare: `https://github.com/${REPO}/compare/${(opts.before ?? BEFORE_SHA).slice(0, 12)}...${after.slice(0, 12)}`,
    commits: [{ id: after, message: 'add deploy config', added: opts.added ?? ['deploy/config.env'], modified: ['README.md'], removed: [] }],
    head_commit: { id: after, message: 'add deploy config' },
    repository: repository(opts.private ?? true),
    organization,
    sender,
    pusher: { name: 'mallory' },
  };
}

export function sign(secret: string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}
