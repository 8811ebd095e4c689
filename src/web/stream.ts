/**
 * GET /api/stream: Server-Sent Events of stored changes (a new group, or a group whose count or
 * summary changed), for the dashboard's live view. Authenticated like the rest of the API (the
 * dashboard reads it with fetch(), which can send the bearer header; EventSource cannot).
 * A client that stops reading is dropped rather than buffered without end.
 */
import type { ServerResponse } from 'node:http';
import type { AlertService } from '../alerts/types.js';
import { alertView, jsonSafe } from './api.js';
import type { RoutePlugin } from './types.js';

/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** Unsent bytes past which a slow client is disconnected (it reconnects and reloads). */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export function streamRoutes(alerts: AlertService): RoutePlugin {
  return async (app) => {
    const open = new Set<ServerResponse>();
    // End the streams before the server waits for its connections to finish.
    app.addHook('preClose', async () => {
      for (const res of open) res.end();
    });

    app.get('/api/stream', { config: { auth: 'token' } }, (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      open.add(res);
      // Tell the client how long to wait before reconnecting, and that the stream is live.
      res.write('retry: 3000\n: connected\n\n');
      const unsubscribe = alerts.subscribe((rec, change) => {
        if (res.destroyed || res.writableEnded) return; // gone; 'close' unsubscribes next
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          req.log.warn({ buffered: res.writableLength }, 'SSE client not reading; disconnecting it');
          res.destroy();
          return;
        }
        res.write(`event: alert\nid: ${rec.id}\ndata: ${jsonSafe({ change, alert: alertView(rec, false) })}\n\n`);
      });
      const beat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
      beat.unref();
      res.on('close', () => {
        clearInterval(beat);
        unsubscribe();
        open.delete(res);
      });
    });
  };
}
