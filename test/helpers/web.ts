/** Helpers for the web server's tests: Falco alerts to post, a server on loopback, requests. */
import type { AlertService, Output } from '../../src/alerts/types.js';
import type { FalcoJsonAlert, OutputValue } from '../../src/engine/output.js';
import { createWebServer, type WebServer, type WebServerOptions } from '../../src/web/server.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alertsSection } from '../../src/alerts/config.js';
import { AlertPipeline } from '../../src/alerts/pipeline.js';
import { createLogger } from '../../src/platform/logger.js';

export interface AlertSpec {
  rule?: string;
  priority?: string;
  /** ms since the epoch (default now). */
  at?: number;
  host?: string;
  namespace?: string | null;
  pod?: string | null;
  container?: string;
  output?: string;
  fields?: Record<string, OutputValue>;
}

let seq = 0;

/** A Falco JSON alert as Falco's http_output sends it. */
export function falcoAlert(s: AlertSpec = {}): FalcoJsonAlert {
  const n = ++seq;
  const at = s.at ?? Date.now();
  const container = s.container ?? `c${n.toString(16).padStart(11, '0')}`;
  const fields: Record<string, OutputValue> = {
    'container.id': container,
    'container.name': `box-${n}`,
    'k8s.ns.name': s.namespace === undefined ? 'default' : s.namespace,
    'k8s.pod.name': s.pod === undefined ? `pod-${n}` : s.pod,
    'proc.cmdline': `xmrig --donate-level 1 -o pool.example:3333 #${n}`,
    'proc.name': 'xmrig',
    ...s.fields,
  };
  const time = new Date(at).toISOString().replace('Z', '123456Z');
  return {
    hostname: s.host ?? 'node-a',
    output: s.output ?? `Miner started (proc.cmdline=${fields['proc.cmdline']} container=${container})`,
    output_fields: fields,
    priority: s.priority ?? 'Critical',
    rule: s.rule ?? 'Launch Cryptominer',
    source: 'syscall',
    tags: ['mitre_impact', 'cryptomining'],
    time,
  };
}

/**
 * A fresh alert pipeline for one test: the real store (SQLite, WAL) in its own temp folder, the
 * default throttle, no outputs. `close` stops it and removes the folder.
 */
export function newAlertService(outputs: Output[] = [], alertsConfig: Record<string, unknown> = {}, more: { maxLabelValues?: number } = {}): AlertPipeline & { close(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), 'mw-web-store-'));
  const config = alertsSection.parse({ ...alertsConfig, store: { path: join(dir, 'alerts.db') } });
  const pipeline = new AlertPipeline({ config, outputs, log: createLogger('silent'), ...more }).start();
  return Object.assign(pipeline, {
    async close() {
      await pipeline.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

export interface Running {
  url: string;
  server: WebServer;
  alerts: AlertService;
  close(): Promise<void>;
}

/** A web server on 127.0.0.1, an ephemeral port, over a fresh alert service unless one is given. */
export async function startWeb(opts: WebServerOptions = {}): Promise<Running> {
  const owned = opts.alerts ? undefined : newAlertService();
  const alerts = opts.alerts ?? owned!;
  const server = createWebServer({ listen: '127.0.0.1:0', ...opts, alerts });
  const url = await server.start();
  return {
    url, server, alerts,
    async close() {
      await server.close();
      await owned?.close();
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** One request; `body` objects are sent as JSON, strings as they are. */
export async function call(url: string, path: string, o: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url + path, { method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export interface StreamEvent {
  event: string;
  id?: string;
  data: any;
}

/** A reader of /api/stream: `next(pred)` resolves with the first event that satisfies it. */
export async function openStream(url: string, token?: string): Promise<{ next(pred?: (e: StreamEvent) => boolean, waitMs?: number): Promise<StreamEvent>; close(): void }> {
  const ctrl = new AbortController();
  const res = await fetch(`${url}/api/stream`, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: ctrl.signal });
  if (res.status !== 200 || !res.body) throw new Error(`stream: HTTP ${res.status}`);
  if (!/text\/event-stream/.test(res.headers.get('content-type') ?? '')) throw new Error(`stream: content-type ${res.headers.get('content-type')}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const events: StreamEvent[] = [];
  let buf = '';
  let ended = false;
  let wake: (() => void) | undefined;
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const ev: StreamEvent = { event: 'message', data: undefined };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const k = line.slice(0, i);
            const v = line.slice(i + 1).replace(/^ /, '');
            if (k === 'event') ev.event = v;
            else if (k === 'id') ev.id = v;
            else if (k === 'data') data.push(v);
          }
          if (data.length) {
            ev.data = JSON.parse(data.join('\n'));
            events.push(ev);
            wake?.();
          }
        }
      }
    } catch {
      // aborted
    }
    ended = true;
    wake?.();
  })();
  return {
    async next(pred = () => true, waitMs = 10_000) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const i = events.findIndex(pred);
        if (i >= 0) return events.splice(i, 1)[0]!;
        if (ended) throw new Error('stream ended before the event arrived');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no such stream event within ${waitMs} ms; got ${JSON.stringify(events).slice(0, 500)}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, left).unref();
        });
      }
    },
    close() {
      ctrl.abort();
    },
  };
}
