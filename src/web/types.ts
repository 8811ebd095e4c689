/**
 * How modules put routes on the one HTTP server (src/web/server.ts) without knowing about each
 * other: each exports a fastify plugin and declares, per route, how it authenticates.
 */
import type { FastifyInstance } from 'fastify';
import type { Event } from '../events.js';

/**
 * Per-route authentication, set as the route's `config.auth`:
 * - `token`: the server's bearer token when one is configured (API, dashboard, alert inputs);
 * - `metrics`: the metrics token when one is configured, else open (Prometheus scrapes);
 * - `open`: never (/healthz, for probes);
 * - `input`: a sender identity (src/web/input-auth.ts): the operator's token, an agent's own
 *   token or a ServiceAccount token; `senderOf(req)` (src/web/auth.ts) says who;
 * - `own`: the route checks its own credentials (GitHub HMAC, the k8s audit webhook's token).
 * A route that says nothing is treated as `token`.
 */
export type RouteAuth = 'token' | 'metrics' | 'open' | 'own' | 'input';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

/** A module's routes: registered on the server with `app.register(plugin)`. */
export type RoutePlugin = (app: FastifyInstance) => Promise<void>;

/**
 * Where a webhook source hands its events: the agent's queue. Returns false when the event was
 * dropped (queue full), so the route can answer 503 and the sender retry.
 */
export type EventSink = (ev: Event) => boolean;
