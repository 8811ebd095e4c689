/**
 * POST /k8s-audit: the kube-apiserver audit webhook backend, as Falco's k8saudit plugin serves it.
 * Takes an EventList (what the API server posts) or a single Event, audit.k8s.io v1 or v1beta1,
 * with or without apiVersion; hands each event to the agent's queue.
 *
 * The bearer token is checked before the body is read (onRequest), and there is always one.
 * Answers: 200 all taken; 400 not JSON or not audit events (nothing taken); 401 wrong token;
 * 413 body over the limit; 503 the queue refused (the API server retries the batch).
 */
import type { RoutePlugin, EventSink } from '../web/types.js';
import { AuditDecodeError, auditEvent, auditEventsOf } from '../k8s-api/audit-event.js';
import { DEFAULT_MAX_BODY_BYTES } from '../config/k8s.js';
import { parseJsonBody, rawBodies } from './http.js';
import { credentialHook } from './webhook-auth.js';

export interface AuditWebhookOptions {
  sink: EventSink;
  /** Bearer token, always required (webhook-auth.ts picks it: k8s.audit.token, else web.token). */
  token: string;
  /** The config key the token comes from, named in 401 answers. */
  tokenKey?: string;
  maxBodyBytes?: number;
  path?: string;
}

export interface AuditWebhookStats {
  requests: number;
  events: number;
  rejected: number;
  dropped: number;
}

export function auditWebhookRoutes(opts: AuditWebhookOptions, stats: AuditWebhookStats = { requests: 0, events: 0, rejected: 0, dropped: 0 }): RoutePlugin {
  const maxBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return async (app) => {
    rawBodies(app, maxBytes, 'audit event');
    // Before the body is read.
    app.addHook('onRequest', credentialHook({ token: opts.token, key: opts.tokenKey ?? 'k8s.audit.token' }));
    app.post(opts.path ?? '/k8s-audit', { config: { auth: 'own' }, bodyLimit: maxBytes }, async (req, reply) => {
      stats.requests++;
      const parsed = parseJsonBody(req.body, reply, 'an audit.k8s.io EventList or Event');
      if (!parsed) {
        stats.rejected++;
        return reply;
      }
      let items;
      try {
        items = auditEventsOf(parsed.value);
      } catch (e) {
        stats.rejected++;
        if (e instanceof AuditDecodeError) return reply.code(400).send({ error: e.message });
        throw e;
      }
      let taken = 0;
      for (const item of items) {
        if (!opts.sink(auditEvent(item))) {
          stats.dropped += items.length - taken;
          return reply.code(503).send({ error: `event queue full: took ${taken} of ${items.length} events; retry later`, accepted: taken });
        }
        taken++;
        stats.events++;
      }
      return reply.code(200).send({ accepted: taken });
    });
  };
}
