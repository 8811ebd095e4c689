/**
 * What the audit and admission routes share: a bearer-token check in constant time, and a body
 * read as raw bytes under a size limit, so that a body too large is a 413 and text that is not JSON
 * is a 400 saying so, both before any work is done.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Does the request carry `Authorization: Bearer <token>`? Both sides are hashed first, so the
 * comparison takes the same time whatever the length or content of the guess.
 */
export function bearerMatches(req: FastifyRequest, token: string): boolean {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
  const given = m ? m[1]! : '';
  return timingSafeEqual(digest(given), digest(token)) && given !== '';
}

/** 401 unless the token is unset or matches. Returns false when it answered. */
export function checkToken(req: FastifyRequest, reply: FastifyReply, token: string | undefined): boolean {
  if (token === undefined || bearerMatches(req, token)) return true;
  void reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong bearer token: set the token the agent is configured with (k8s.*.token)' });
  return false;
}

/**
 * In this plugin's scope only: every body arrives as a Buffer (any content type, as API servers
 * differ), at most maxBytes, and errors become JSON answers that say what to fix.
 */
export function rawBodies(app: FastifyInstance, maxBytes: number, what: string): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBytes }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: `request body larger than ${maxBytes} bytes: send smaller ${what} batches or raise max_body_bytes` });
    }
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(code).send({ error: code === 500 ? `internal error handling ${what}` : err.message });
  });
}

/** The body as JSON, or a 400 that says where the text stops being JSON. Undefined when it answered. */
export function parseJsonBody(body: unknown, reply: FastifyReply, what: string): { value: unknown } | undefined {
  if (!Buffer.isBuffer(body) || body.length === 0) {
    void reply.code(400).send({ error: `empty body: expected ${what} as JSON` });
    return undefined;
  }
  try {
    return { value: JSON.parse(body.toString('utf8')) };
  } catch (e) {
    void reply.code(400).send({ error: `body is not valid JSON (${(e as Error).message}): expected ${what}` });
    return undefined;
  }
}
