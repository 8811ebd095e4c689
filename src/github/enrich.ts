/**
 * What the github source adds to a webhook payload before the rules see it (the plugin's keys,
 * see src/fields/github.ts): for workflow_run, the workflow file fetched at the run's head commit
 * and the miner check's findings (local composite actions it uses are fetched and checked too);
 * for push, the diff of the pushed commits and the secrets on its added lines.
 *
 * Caching: three events arrive per run (requested, in_progress, completed) and most runs use a
 * workflow file unchanged since the last run, so (repo, path, commit) → blob sha and blob sha →
 * findings are both remembered; a known commit costs no call and a known blob no scan.
 * A failure leaves the derived keys out (fields read <NA>), records why under
 * mw_github.fetch_error, and logs it.
 */
import { GithubApi, GithubApiError, encodePath, pathSegment, repoPath } from './api.js';
import { LruMap } from '../platform/lru.js';
import { type MinerFinding, scanCiText } from './miners.js';
import { type DiffFileSecrets, scanPatch } from '../knowledge/secrets.js';

export interface EnrichLogger {
  warn(obj: object, msg: string): void;
}

export interface EnrichOptions {
  /** Fetch and check workflow files of workflow_run events (default true). */
  workflows?: boolean;
  /** Fetch push diffs and look for secrets (default true). */
  diffs?: boolean;
  cacheSize?: number;
  /**
   * Time for all the calls of one event (the workflow, its local actions, a diff). GitHub waits
   * 10 s for the webhook's answer, and the route answers after enriching, so the default stays
   * under that; local actions not fetched in time are skipped (and logged).
   */
  budgetMs?: number;
  log?: EnrichLogger;
  now?: () => number;
}

const NULL_SHA = /^0{40}$/;
/** At most this many local actions are followed from one workflow. */
const MAX_LOCAL_ACTIONS = 8;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const s = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

interface BlobScan {
  findings: MinerFinding[];
  localActions: string[];
}

export class GithubEnricher {
  private readonly blobByRef: LruMap<string, string>;
  private readonly scanByBlob: LruMap<string, BlobScan>;
  private readonly log?: EnrichLogger;

  constructor(readonly api: GithubApi, private readonly opts: EnrichOptions = {}) {
    this.blobByRef = new LruMap(opts.cacheSize ?? 2048);
    this.scanByBlob = new LruMap(opts.cacheSize ?? 2048);
    this.log = opts.log;
  }

  /** Add the derived keys to `payload` (in place) for an event of type `type`. Never throws. */
  async enrich(type: string, payload: Json): Promise<void> {
    payload.webhook_type ??= type;
    const now = this.opts.now ?? Date.now;
    const deadline = now() + (this.opts.budgetMs ?? 8000);
    const left = () => {
      const ms = deadline - now();
      if (ms <= 0) throw new GithubApiError(`the ${this.opts.budgetMs ?? 8000} ms budget for one event's fetches is spent`);
      return ms;
    };
    try {
      if (type === 'workflow_run' && this.opts.workflows !== false) await this.workflowRun(payload, left);
      else if (type === 'push' && this.opts.diffs !== false) await this.push(payload, left);
    } catch (e) {
      const reason = e instanceof GithubApiError ? e.message : `unexpected: ${(e as Error).message}`;
      payload.mw_github = { ...obj(payload.mw_github), fetch_error: reason };
      this.log?.warn({ github_event: type, repo: obj(payload.repository)?.full_name, reason }, 'github: could not fetch what the rules need; its fields are <NA>');
    }
  }

  private async workflowRun(payload: Json, left: () => number): Promise<void> {
    if (obj(payload.workflow_miner_detections)) return; // already derived (a replayed, enriched event)
    const run = obj(payload.workflow_run);
    const path = s(obj(payload.workflow)?.path) ?? s(run?.path);
    const sha = s(run?.head_sha);
    // A fork's run: the file at the head commit lives in the head repository.
    const repo = s(obj(run?.head_repository)?.full_name) ?? s(obj(payload.repository)?.full_name);
    if (!path || !sha || !repo) throw new GithubApiError('workflow_run without workflow.path, workflow_run.head_sha or repository.full_name');
    const main = await this.scanFile(repo, path, sha, left);
    if (!main) throw new GithubApiError(`${repo}: ${path} not found at ${sha}`);
    const matches = [...main.findings];
    for (const local of main.localActions.slice(0, MAX_LOCAL_ACTIONS)) {
      const dir = local.replace(/^\.\//, '');
      try {
        const found = (await this.scanFile(repo, `${dir}/action.yml`, sha, left)) ?? (await this.scanFile(repo, `${dir}/action.yaml`, sha, left));
        if (found) matches.push(...found.findings);
      } catch (e) {
        // The workflow itself was checked: report what it has, and say which action was not.
        this.log?.warn({ repo, workflow: path, action: local, reason: (e as Error).message }, 'github: a local action of the workflow could not be checked');
      }
    }
    payload.workflow_miner_detections = { name: path, matches };
  }

  /** Fetch `path` at `ref` and check it, through both caches; undefined when the file does not exist. */
  private async scanFile(repo: string, path: string, ref: string, left: () => number): Promise<BlobScan | undefined> {
    const base = repoPath(repo);
    if (!base) throw new GithubApiError(`'${repo}' is not an owner/name repository`);
    const refKey = `${repo}\0${path}\0${ref}`;
    const knownBlob = this.blobByRef.get(refKey);
    if (knownBlob !== undefined) return knownBlob === '' ? undefined : this.scanByBlob.get(knownBlob) ?? this.fetchAndScan(base, repo, path, ref, refKey, left);
    return this.fetchAndScan(base, repo, path, ref, refKey, left);
  }

  private async fetchAndScan(base: string, repo: string, path: string, ref: string, refKey: string, left: () => number): Promise<BlobScan | undefined> {
    let doc: Json | undefined;
    try {
      doc = obj(await this.api.getJson(`${base}/contents/${encodePath(path)}?ref=${encodeURIComponent(ref)}`, left()));
    } catch (e) {
      if (e instanceof GithubApiError && e.status === 404) {
        this.blobByRef.set(refKey, '');
        return undefined;
      }
      throw e;
    }
    const blob = s(doc?.sha);
    const content = s(doc?.content);
    if (!blob || content === undefined || doc?.encoding !== 'base64') {
      throw new GithubApiError(`${repo}: ${path} at ${ref}: the contents answer has no base64 content (is it a directory, or over 1 MB?)`);
    }
    this.blobByRef.set(refKey, blob);
    const cached = this.scanByBlob.get(blob);
    if (cached) return cached;
    const text = Buffer.from(content, 'base64').toString('utf8');
    const scan = scanCiText(text, path);
    const result = { findings: scan.findings, localActions: scan.localActions };
    this.scanByBlob.set(blob, result);
    return result;
  }

  private async push(payload: Json, left: () => number): Promise<void> {
    if (Array.isArray(payload.files)) return;
    const before = s(payload.before);
    const after = s(payload.after);
    const repo = s(obj(payload.repository)?.full_name);
    if (!after || !repo) throw new GithubApiError('push without after or repository.full_name');
    if (NULL_SHA.test(after)) return; // a branch deleted: nothing was added
    const base = repoPath(repo);
    if (!base) throw new GithubApiError(`'${repo}' is not an owner/name repository`);
    // A new branch has no "before": compare with the default branch, as GitHub's own compare link does.
    const from = before && !NULL_SHA.test(before) ? before : s(obj(payload.repository)?.default_branch);
    const to = pathSegment(after, 'commit');
    const diff = obj(await this.api.getJson(from ? `${base}/compare/${pathSegment(from, 'commit or branch')}...${to}` : `${base}/commits/${to}`, left()));
    const files: DiffFileSecrets[] = [];
    for (const f of Array.isArray(diff?.files) ? diff.files : []) {
      const name = s(obj(f)?.filename);
      const patch = s(obj(f)?.patch);
      if (!name) continue;
      files.push({ name, matches: patch ? scanPatch(patch) : [] });
    }
    payload.files = files;
  }
}
