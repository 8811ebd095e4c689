/**
 * One HTTP POST with a deadline, over a keep-alive connection pool, and what its answer means for
 * the delivery queue: 2xx accepted; 408, 425, 429 and 5xx (or no answer) retried later; any other
 * status refused for good (a wrong URL, token or payload does not heal by retrying).
 */
import { readFileSync } from 'node:fs';
import { stat, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { PermanentDeliveryError } from '../types.js';
import { RetryableDeliveryError, describeError } from './base.js';

/** How much of a refusing server's answer is quoted in the error. */
const BODY_EXCERPT = 300;
/** Statuses that say "later", not "never". */
const RETRYABLE_4XX = new Set([408, 425, 429]);

export interface HttpTargetOptions {
  url: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** "outputs.webhook": where errors point the user. */
  where: string;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  insecure?: boolean;
  /** The URL's path is a secret (Slack's webhook URLs): errors show only its origin. */
  secretPath?: boolean;
}

function readConfigFile(path: string, setting: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${setting}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A POST target: its URL, its connection pool, and its fixed headers. */
export class HttpTarget {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(private readonly opts: HttpTargetOptions) {
    this.url = new URL(opts.url);
    if (this.url.protocol === 'https:') {
      this.agent = new https.Agent({
        keepAlive: true,
        ca: opts.ca_file ? readConfigFile(opts.ca_file, `${opts.where}.ca_file`) : undefined,
        cert: opts.cert_file ? readConfigFile(opts.cert_file, `${opts.where}.cert_file`) : undefined,
        key: opts.key_file ? readConfigFile(opts.key_file, `${opts.where}.key_file`) : undefined,
        rejectUnauthorized: !opts.insecure,
      });
      this.request = https.request;
    } else {
      this.agent = new http.Agent({ keepAlive: true });
      this.request = http.request;
    }
  }

  /** POST `body`; resolves on 2xx, rejects with PermanentDeliveryError or a retryable error. */
  post(body: string, headers: Record<string, string> = {}): Promise<void> {
    return this.attempt(body, headers, true);
  }

  private attempt(body: string, headers: Record<string, string>, mayRetryStale: boolean): Promise<void> {
    const { where, timeoutMs } = this.opts;
    const target = this.opts.secretPath ? `${this.url.origin}/…` : `${this.url.origin}${this.url.pathname}`;
    return new Promise<void>((resolve, reject) => {
      const req = this.request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'application/json', ...this.opts.headers, ...headers, 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          res.resume();
          res.on('end', resolve);
          res.on('error', () => resolve()); // the status already said yes
          return;
        }
        let excerpt = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (excerpt.length < BODY_EXCERPT) excerpt += d;
        });
        const fail = (): void => {
          const said = excerpt.trim().slice(0, BODY_EXCERPT).replace(/\s+/g, ' ');
          const text = `${where}: ${target} answered ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}${said ? `: ${said}` : ''}`;
          const permanent = status < 500 && !RETRYABLE_4XX.has(status);
          reject(permanent ? new PermanentDeliveryError(`${text}${status === 401 || status === 403 ? ' (check the token)' : status === 404 ? ' (check the URL)' : ''}`) : new RetryableDeliveryError(text));
        };
        res.on('end', fail);
        res.on('error', fail);
      });
      const timer = setTimeout(() => req.destroy(new RetryableDeliveryError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => {
        // A kept-alive connection the server closed while idle: the request never reached it, so
        // sending it once more on a fresh connection cannot duplicate it (Node's documented pattern).
        const stale = req.reusedSocket && ((e as NodeJS.ErrnoException).code === 'ECONNRESET' || e.message === 'socket hang up');
        if (stale && mayRetryStale) this.attempt(body, headers, false).then(resolve, reject);
        else reject(new RetryableDeliveryError(`${where}: cannot POST to ${target}: ${describeError(e)}`));
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * `Authorization: Bearer …` from a fixed token or a file. The file is re-read when it changes (a
 * rotated, projected service-account token), checked at most once a second.
 */
export class BearerToken {
  private value: string | undefined;
  private mtimeMs = -1;
  private checkedAt = 0;

  constructor(private readonly token: string | undefined, private readonly file: string | undefined, private readonly where: string) {
    this.value = token;
  }

  async header(): Promise<Record<string, string>> {
    if (this.file) await this.refresh(this.file);
    return this.value ? { authorization: `Bearer ${this.value}` } : {};
  }

  private async refresh(file: string): Promise<void> {
    const now = Date.now();
    if (this.value !== undefined && now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    try {
      const st = await stat(file);
      if (st.mtimeMs === this.mtimeMs && this.value !== undefined) return;
      const text = (await readFile(file, 'utf8')).trim();
      if (!text) throw new Error('the file is empty');
      this.value = text;
      this.mtimeMs = st.mtimeMs;
    } catch (e) {
      // The file may appear later (a secret not yet mounted): retry rather than give up.
      if (this.value === undefined) throw new RetryableDeliveryError(`${this.where}.token_file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
}
