/**
 * A loopback stand-in for the parts of the GitHub REST API the github source calls: contents of a
 * file at a commit, compare and commit diffs. Real HTTP on 127.0.0.1, port 0. Tests queue
 * rate-limit answers, slow answers, and see every request made.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandinRequest {
  path: string;
  auth?: string;
}

export interface ForcedAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long before answering (for timeouts). */
  delayMs?: number;
}

/** Git's blob id of a file's bytes, as the contents API reports it. */
export function blobSha(content: string): string {
  const buf = Buffer.from(content, 'utf8');
  return createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
}

export class GithubStandin {
  private server?: Server;
  /** `${repo}@${ref}:${path}` → file text */
  readonly files = new Map<string, string>();
  /** `${repo}:${from}...${to}` or `${repo}:${sha}` → files with patches */
  readonly diffs = new Map<string, Array<{ filename: string; patch?: string; status?: string }>>();
  readonly requests: StandinRequest[] = [];
  /** Answers given before any real one, in order. */
  readonly forced: ForcedAnswer[] = [];
  /** Headers added to every real answer (e.g. X-RateLimit-Remaining). */
  extraHeaders: Record<string, string> = {};
  /** Real answers to matching paths wait this long first. */
  readonly delays: Array<{ match: RegExp; ms: number }> = [];
  /** When set, requests without `Bearer <token>` get 401. */
  token?: string;
  private readonly sockets = new Set<import('node:net').Socket>();

  constructor(readonly prefix = '') {}

  addFile(repo: string, ref: string, path: string, text: string): void {
    this.files.set(`${repo}@${ref}:${path}`, text);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.prefix}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push({ path: url.pathname + url.search, auth: req.headers.authorization });
    const forced = this.forced.shift();
    if (forced) {
      if (forced.delayMs) await new Promise((r) => setTimeout(r, forced.delayMs));
      if (!res.destroyed) this.send(res, forced.status, forced.body ?? { message: 'forced' }, forced.headers);
      return;
    }
    const delay = this.delays.find((d) => d.match.test(url.pathname));
    if (delay) await new Promise((r) => setTimeout(r, delay.ms));
    if (res.destroyed) return;
    if (this.token && req.headers.authorization !== `Bearer ${this.token}`) return this.send(res, 401, { message: 'Bad credentials' });
    if (!url.pathname.startsWith(this.prefix + '/repos/')) return this.send(res, 404, { message: 'Not Found' });
    const rest = url.pathname.slice(this.prefix.length + '/repos/'.length);
    const [owner, name, kind, ...tail] = rest.split('/');
    const repo = `${owner}/${name}`;
    const h = this.extraHeaders;
    if (kind === 'contents') {
      const path = tail.map(decodeURIComponent).join('/');
      const ref = url.searchParams.get('ref') ?? 'HEAD';
      const text = this.files.get(`${repo}@${ref}:${path}`);
      if (text === undefined) return this.send(res, 404, { message: 'Not Found' }, h);
      // GitHub wraps base64 at 60 columns; decoders must cope.
      const b64 = Buffer.from(text, 'utf8').toString('base64').replace(/(.{60})/g, '$1\n');
      return this.send(res, 200, { type: 'file', encoding: 'base64', path, name: path.split('/').pop(), sha: blobSha(text), size: text.length, content: b64 }, h);
    }
    if (kind === 'compare' || kind === 'commits') {
      const key = `${repo}:${decodeURIComponent(tail.join('/'))}`;
      const files = this.diffs.get(key);
      if (!files) return this.send(res, 404, { message: 'Not Found' }, h);
      return this.send(res, 200, { files }, h);
    }
    return this.send(res, 404, { message: 'Not Found' }, h);
  }
}
