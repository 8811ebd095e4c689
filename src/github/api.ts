/**
 * The few GitHub REST calls the github source makes: a workflow file's contents at a commit, and
 * the diff of a push. Works against github.com or GitHub Enterprise (`api_url`), with a token
 * from the config or GITHUB_TOKEN. Rate limits are honoured: after a 403/429 with Retry-After or
 * an exhausted X-RateLimit-Remaining, no call is made until the time GitHub gave; a short wait
 * inside the timeout is waited out once. Every failure is a GithubApiError saying what happened;
 * callers turn it into <NA> fields and a log line, never a crash.
 */
import { DEFAULT_API_URL } from '../config/github.js';

export interface GithubApiOptions {
  /** https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server. */
  baseUrl?: string;
  token?: string;
  /** Whole-call budget, retries included. */
  timeoutMs?: number;
  /** Largest response body read, in bytes. */
  maxResponseBytes?: number;
  /** For tests: the clock. */
  now?: () => number;
}

export class GithubApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'GithubApiError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class GithubApi {
  readonly baseUrl: string;
  private readonly token?: string;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  /** No call before this time (ms since the epoch): GitHub said we are rate limited. */
  private blockedUntil = 0;
  /** Calls made, for tests and metrics. */
  calls = 0;

  constructor(opts: GithubApiOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? DEFAULT_API_URL).replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxBytes = opts.maxResponseBytes ?? 16 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
  }

  /** GET a JSON document at `path` (starting with /), within the timeout or `budgetMs` if shorter. */
  async getJson(path: string, budgetMs = Infinity): Promise<unknown> {
    const limit = Math.min(this.timeoutMs, budgetMs);
    const deadline = this.now() + limit;
    for (let attempt = 0; ; attempt++) {
      const wait = this.blockedUntil - this.now();
      if (wait > 0) {
        // Wait out a limit that ends inside the budget; otherwise say when to come back.
        if (this.now() + wait >= deadline) {
          throw new GithubApiError(`rate limited by ${this.baseUrl} until ${new Date(this.blockedUntil).toISOString()}; not calling before then`);
        }
        await sleep(wait);
      }
      const res = await this.fetchOnce(path, deadline, limit);
      if (res.retryAt !== undefined) {
        this.blockedUntil = Math.max(this.blockedUntil, res.retryAt);
        if (attempt === 0 && res.retryAt < deadline) continue;
        throw new GithubApiError(`${res.status} rate limited by ${this.baseUrl}${path} until ${new Date(res.retryAt).toISOString()}`, res.status);
      }
      return res.body;
    }
  }

  private async fetchOnce(path: string, deadline: number, limit: number): Promise<{ status: number; body?: unknown; retryAt?: number }> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = {
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': 'minewatch',
    };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const budget = deadline - this.now();
    if (budget <= 0) throw new GithubApiError(`GET ${url}: timed out after ${limit} ms`);
    this.calls++;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(budget), redirect: 'follow' });
      const len = Number(res.headers.get('content-length') ?? 0);
      if (len > this.maxBytes) {
        await res.body?.cancel();
        throw new GithubApiError(`GET ${url}: response of ${len} bytes is over the ${this.maxBytes}-byte limit`);
      }
      text = await res.text();
    } catch (e) {
      if (e instanceof GithubApiError) throw e;
      const err = e as Error;
      if (err.name === 'TimeoutError' || err.name === 'AbortError') throw new GithubApiError(`GET ${url}: timed out after ${limit} ms`);
      throw new GithubApiError(`GET ${url}: ${err.message}${(err.cause as Error | undefined)?.message ? ` (${(err.cause as Error).message})` : ''}`);
    }
    if (text.length > this.maxBytes) throw new GithubApiError(`GET ${url}: response is over the ${this.maxBytes}-byte limit`);
    this.noteRateLimit(res);
    if (res.status === 429 || (res.status === 403 && (res.headers.has('retry-after') || res.headers.get('x-ratelimit-remaining') === '0'))) {
      return { status: res.status, retryAt: this.retryAt(res) };
    }
    if (res.status !== 200) {
      let message = text.slice(0, 200);
      try {
        message = String((JSON.parse(text) as { message?: unknown }).message ?? message);
      } catch {
        /* not JSON: keep the text */
      }
      throw new GithubApiError(`GET ${url}: HTTP ${res.status}${message ? `: ${message}` : ''}`, res.status);
    }
    try {
      return { status: 200, body: JSON.parse(text) };
    } catch {
      throw new GithubApiError(`GET ${url}: the answer is not JSON`);
    }
  }

  /** When a limited call may be tried again: Retry-After (seconds), else X-RateLimit-Reset, else a minute. */
  private retryAt(res: Response): number {
    const after = res.headers.get('retry-after');
    if (after !== null && /^\d+$/.test(after.trim())) return this.now() + Number(after) * 1000;
    const reset = res.headers.get('x-ratelimit-reset');
    if (reset !== null && /^\d+$/.test(reset.trim())) return Number(reset) * 1000;
    return this.now() + 60_000;
  }

  /** A success that used the last call of the window blocks the next ones until the reset. */
  private noteRateLimit(res: Response): void {
    if (res.status === 200 && res.headers.get('x-ratelimit-remaining') === '0') {
      const reset = res.headers.get('x-ratelimit-reset');
      if (reset !== null && /^\d+$/.test(reset)) this.blockedUntil = Math.max(this.blockedUntil, Number(reset) * 1000);
    }
  }
}

/**
 * `owner/repo` → "/repos/owner/repo"; undefined for anything that is not one. A name of dots alone
 * (`.`, `..`) is refused: `/repos/../x` would be resolved by the URL to another API call.
 */
export function repoPath(fullName: string): string | undefined {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(fullName);
  if (!m || /^\.+$/.test(m[1]!) || /^\.+$/.test(m[2]!)) return undefined;
  return `/repos/${m[1]}/${m[2]}`;
}

/** One path segment from a payload value (a commit sha, a ref): encoded; empty, `.` and `..` refused. */
export function pathSegment(value: string, what: string): string {
  if (value === '' || value === '.' || value === '..') throw new GithubApiError(`'${value}' is not a ${what}`);
  return encodeURIComponent(value);
}

/**
 * A file path in a repository, each segment URL-encoded. `.` and `..` segments are refused: a
 * payload's path must not walk the request out of the repository's contents to another API call.
 */
export function encodePath(p: string): string {
  const segs = p.split('/').filter(Boolean);
  if (segs.length === 0 || segs.some((x) => x === '.' || x === '..')) throw new GithubApiError(`'${p}' is not a file path inside a repository`);
  return segs.map(encodeURIComponent).join('/');
}
