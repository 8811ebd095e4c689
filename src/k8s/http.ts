/**
 * What the audit and admission routes share: a cap on requests in flight per client, and a body
 * read as raw bytes under a size limit, so that a body too large is a 413 and text that is not JSON
 * is a 400 saying so, both before any work is done. (Their tokens: webhook-auth.ts.)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * An onRequest hook capping the requests each client address has in flight (its body being read
 * or its answer being worked out): past `max`, 429 at once, before the body is read. Per address,
 * so a flood from a few hosts does not turn away the API server's own requests, as one global cap
 * would. The count drops when the answer is sent or the connection goes.
 */
export function perClientCap(max: number, what: string) {
  const inFlight = new Map<string, number>();
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    // The socket's peer, never X-Forwarded-For: a client must not choose whose quota it spends.
    const who = req.socket.remoteAddress ?? '?';
    const n = inFlight.get(who) ?? 0;
    if (n >= max) {
      await reply.code(429).header('retry-after', '1').header('connection', 'close')
        .send({ error: `too many ${what} in flight from ${who} (${max} at once): wait for the answers, or raise max_in_flight_per_client` });
      return;
    }
    inFlight.set(who, n + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const left = (inFlight.get(who) ?? 1) - 1;
      if (left > 0) inFlight.set(who, left);
      else inFlight.delete(who);
    };
    reply.raw.once('finish', release);
    reply.raw.once('close', release);
  };
}

/**
 * An onRequest hook refusing a body of unknown length (chunked) with 411: it could only be judged
 * against the size limit after reading it. For clients that always send Content-Length (the API
 * server posts AdmissionReviews from a byte buffer), so a body is accepted or refused by its header.
 */
export function requireContentLength(what: string) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (req.headers['content-length'] !== undefined) return;
    await reply.code(411).header('connection', 'close').send({ error: `${what} without Content-Length: send the body with its length (the API server does)` });
  };
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
      // Close: the rest of an oversized body is not read.
      return reply.code(413).header('connection', 'close').send({ error: `request body larger than ${maxBytes} bytes: send smaller ${what} batches or raise max_body_bytes` });
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
