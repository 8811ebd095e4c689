/**
 * GET /readyz: 200 once the server can do its job (the store opened with its migrations applied,
 * the fleet consumer up), 503 with the reason before. A Kubernetes readiness probe points here, so
 * a replica takes no traffic before its store is migrated; /healthz stays "the process is alive".
 */
import type { RoutePlugin } from '../web/types.js';

export interface ReadinessCheck {
  name: string;
  check(): { ready: boolean; detail: string };
}

export function readinessRoute(checks: () => ReadinessCheck[]): RoutePlugin {
  return async (app) => {
    app.get('/readyz', { config: { auth: 'open' } }, async (_req, reply) => {
      const list = checks();
      const results = Object.fromEntries(list.map((c) => [c.name, c.check()]));
      const ready = list.length > 0 && Object.values(results).every((r) => r.ready);
      return reply.code(ready ? 200 : 503).type('application/json').send(JSON.stringify({ ready, checks: results }));
    });
  };
}
