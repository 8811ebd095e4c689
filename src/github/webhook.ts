/**
 * POST /github: the github source's webhook for repository and organization hooks.
 *
 * Order matters: the raw body is read (up to the size limit: 413 past it), its HMAC-SHA256 under
 * the shared secret is compared in constant time with X-Hub-Signature-256, and only a body that
 * passes is parsed. Unsigned, mis-signed and truncated signatures get 401 and are never parsed;
 * garbage that is correctly signed gets 400. GitHub redelivers with the same X-GitHub-Delivery:
 * a delivery already taken is answered 200 and not handed on again. The same goes for a body
 * already taken under another delivery id: the id (and X-GitHub-Event) are not signed, so anyone
 * who saw one signed delivery could otherwise replay it as many "new" events as they like. So a
 * delivery is known by its body's digest (GitHub redelivers the same body under the same id),
 * remembered with the id it came under in a bounded LRU (no expiry: forgetting by age would only
 * reopen the replay). Accepted events are enriched (workflow file, push diff) and handed to the sink; a full
 * queue answers 503 so GitHub's redelivery can bring the event back.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PluginEvent } from '../events.js';
import type { EventSink, RoutePlugin } from '../web/types.js';
import type { GithubEnricher } from './enrich.js';
import { LruMap } from '../platform/lru.js';
import { DEFAULT_MAX_BODY } from '../config/github.js';

export interface GithubWebhookLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

export interface GithubWebhookOptions {
  /** The webhook's shared secret; several while rotating (any one verifies). */
  secret: string | string[];
  sink: EventSink;
  enricher?: GithubEnricher;
  /** Largest body accepted, in bytes (GitHub caps payloads at 25 MB). */
  maxBodyBytes?: number;
  /** Deliveries (body digests) remembered for de-duplication. */
  dedupSize?: number;
  log?: GithubWebhookLogger;
  /** Route path (default /github). */
  path?: string;
}

const SIG_PREFIX = 'sha256=';
const EVENT_NAME = /^[a-z_]{1,64}$/;
const DELIVERY_ID = /^[A-Za-z0-9-]{1,80}$/;

/** True when `header` is "sha256=" + the hex HMAC-SHA256 of `body` under one of `secrets`. */
export function verifySignature(secrets: readonly string[], body: Buffer, header: unknown): boolean {
  if (typeof header !== 'string' || !header.startsWith(SIG_PREFIX)) return false;
  const hex = header.slice(SIG_PREFIX.length);
  // Length and alphabet are not secret; checking them first keeps Buffer.from from silently
  // dropping a bad or odd trailing digit (which would let a truncated signature compare shorter).
  if (hex.length !== 64 || !/^[0-9a-fA-F]{64}$/.test(hex)) return false;
  const given = Buffer.from(hex, 'hex');
  let ok = false;
  for (const secret of secrets) {
    const want = createHmac('sha256', secret).update(body).digest();
    // No early exit: every secret is compared, so timing says nothing about which one matched.
    ok = timingSafeEqual(want, given) || ok;
  }
  return ok;
}

/** The JSON a delivery carries: application/json, or GitHub's form encoding (payload=…). */
function parsePayload(body: Buffer, contentType: string | undefined): Record<string, unknown> {
  let text = body.toString('utf8');
  if (contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    const p = new URLSearchParams(text).get('payload');
    if (p === null) throw new Error('form-encoded delivery without a payload field');
    text = p;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`body is not JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('body must be a JSON object');
  return v as Record<string, unknown>;
}

export function githubWebhookRoutes(opts: GithubWebhookOptions): RoutePlugin {
  const secrets = (Array.isArray(opts.secret) ? opts.secret : [opts.secret]).filter((s) => s.length > 0);
  if (secrets.length === 0) throw new Error('github webhook: no secret configured (github.secret or github.secret_file); unsigned deliveries are never accepted');
  const bodyLimit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  /**
   * SHA-256 of a signed body taken → the delivery id it came under ('' for none), from the moment
   * it is taken: a redelivery arriving while the first is still being enriched is a duplicate too.
   * If the first then fails it is forgotten, so GitHub's next redelivery is taken.
   */
  const taken = new LruMap<string, string>(opts.dedupSize ?? 10_000);
  const log = opts.log;

  return async (app) => {
    // This plugin's own parsers (fastify scopes them to it): the body stays raw bytes until verified.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

    app.post(opts.path ?? '/github', { config: { auth: 'own' }, bodyLimit }, async (req: FastifyRequest, reply: FastifyReply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      if (!verifySignature(secrets, body, req.headers['x-hub-signature-256'])) {
        log?.warn({ remote: req.ip, delivery: String(req.headers['x-github-delivery'] ?? '') }, 'github webhook: missing or wrong X-Hub-Signature-256; delivery refused');
        return reply.code(401).send({ error: 'missing or invalid X-Hub-Signature-256: sign the body with HMAC-SHA256 under the webhook secret' });
      }
      const event = req.headers['x-github-event'];
      if (typeof event !== 'string' || !EVENT_NAME.test(event)) {
        return reply.code(400).send({ error: 'missing or malformed X-GitHub-Event header' });
      }
      const deliveryHeader = req.headers['x-github-delivery'];
      const delivery = typeof deliveryHeader === 'string' && DELIVERY_ID.test(deliveryHeader) ? deliveryHeader : undefined;
      let payload: Record<string, unknown>;
      try {
        payload = parsePayload(body, req.headers['content-type']);
      } catch (e) {
        return reply.code(400).send({ error: `${event} delivery ${delivery ?? '(no id)'}: ${(e as Error).message}` });
      }
      const digest = createHash('sha256').update(body).digest('hex');
      const takenUnder = taken.get(digest);
      if (takenUnder !== undefined) {
        if (delivery !== undefined && delivery !== takenUnder) log?.warn({ remote: req.ip, delivery, event }, 'github webhook: a body already taken came again under a new delivery id (a replay?); not handed on');
        return reply.code(200).send({ status: 'duplicate', delivery: delivery ?? null });
      }
      taken.set(digest, delivery ?? '');
      payload.webhook_type = event;
      const ev: PluginEvent = { source: 'github', type: event, ts: BigInt(Date.now()) * 1_000_000n, payload };
      let queued = false;
      try {
        if (opts.enricher) await opts.enricher.enrich(event, payload);
        queued = opts.sink(ev);
      } finally {
        if (!queued) taken.delete(digest);
      }
      if (!queued) {
        // Forgotten above: GitHub's redelivery of this event must be taken.
        return reply.code(503).send({ error: 'event queue full; redeliver later' });
      }
      return reply.code(202).send({ status: 'accepted', delivery: delivery ?? null });
    });
  };
}
