/**
 * Bearer tokens, compared in constant time: both sides are hashed to 32 bytes first, so neither
 * the content nor the length of the configured token leaks through response timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RouteAuth } from './types.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A token held as its digest; `matches` is constant-time in the candidate's content and length. */
export class BearerToken {
  private readonly want: Buffer;

  constructor(token: string) {
    this.want = digest(token);
  }

  matches(candidate: string | undefined): boolean {
    if (candidate === undefined) return false;
    return timingSafeEqual(digest(candidate), this.want);
  }
}

/**
 * The token a request carries: `Authorization: Bearer <token>`, or Basic credentials whose
 * password is the token. Basic is for Falco's http_output, which cannot add headers but sends
 * the user and password of its URL (`url: http://falco:<token>@host:8788/`).
 */
export function credentialOf(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const bearer = /^\s*bearer\s+(\S+)\s*$/i.exec(h);
  if (bearer) return bearer[1];
  const basic = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h);
  if (!basic) return undefined;
  const pair = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  return colon < 0 ? undefined : pair.slice(colon + 1);
}

export interface AuthTokens {
  /** Required by `token` routes when set. */
  token: BearerToken | null;
  /** Required by `metrics` routes when set. */
  metrics: BearerToken | null;
}

/**
 * The onRequest check for every route, by its `config.auth` (a route that says nothing, or a
 * request that matched no route, counts as `token`).
 */
export function authHook(tokens: AuthTokens) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const auth: RouteAuth = req.routeOptions.config?.auth ?? 'token';
    const need = auth === 'token' ? tokens.token : auth === 'metrics' ? tokens.metrics : null;
    if (!need || need.matches(credentialOf(req))) return;
    const which = auth === 'metrics' ? 'the metrics token (web.metrics_token)' : 'the token (web.token)';
    reply.header('www-authenticate', 'Bearer realm="minewatch"');
    await reply.code(401).send({ error: `unauthorized: send ${which} as 'Authorization: Bearer <token>'` });
  };
}
