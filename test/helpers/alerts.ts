/**
 * Alert messages as the delivery queue hands them to outputs, a loopback HTTP server that records
 * what it is sent and answers with a status the test chooses, and a retry loop standing in for the
 * queue's retries.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertMessage } from '../../src/alerts/types.js';

let seq = 0;

/** A first-occurrence alert; `over` replaces any key, `mw` any key of the minewatch part. */
export function alertMessage(over: Partial<AlertMessage> = {}, mw: Partial<AlertMessage['minewatch']> = {}): AlertMessage {
  seq++;
  return {
    hostname: 'node-1',
    output: `20:16:35.123456789: Critical Miner started (proc.name=xmrig${seq} user=root)`,
    output_fields: { 'proc.name': `xmrig${seq}`, 'user.name': 'root', 'container.id': 'host' },
    priority: 'Critical',
    rule: 'Detect crypto miners using the Stratum protocol',
    source: 'syscall',
    tags: ['mitre_impact', 'cryptomining'],
    time: '2026-11-25T20:16:35.123456789Z',
    ...over,
    minewatch: {
      uuid: randomUUID(),
      kind: 'first',
      count: 1,
      first_seen: '2026-11-25T20:16:35.123456789Z',
      last_seen: '2026-11-25T20:16:35.123456789Z',
      ...mw,
    },
  };
}

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A loopback HTTP server: records each request and answers `status` (or never, with 'hang'). */
export class Receiver {
  readonly requests: Received[] = [];
  status: number | 'hang' = 200;
  answer = 'ok';
  private server: http.Server | undefined;
  private port = 0;
  private waiters: (() => void)[] = [];

  async listen(): Promise<this> {
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        for (const w of this.waiters.splice(0)) w();
        if (this.status === 'hang') return;
        res.writeHead(this.status, { 'content-type': 'text/plain' }).end(this.answer);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Stop listening and drop every open connection (the port stays ours for listen()). */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  /** The n-th request (1-based), waiting for it to arrive. */
  async nth(n: number): Promise<Received> {
    while (this.requests.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.requests[n - 1]!;
  }
}
