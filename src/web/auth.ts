/**
 * Who may call what, in one place. Bearer tokens are compared in constant time: both sides are
 * hashed to 32 bytes first, so neither the content nor the length of the configured token leaks
 * through response timing. Every route says how it authenticates (src/web/types.ts): the API and
 * dashboard data need the operator's token (web.token, else the generated <state>/token, even on
 * loopback), the inputs need a sender identity (src/web/input-auth.ts), and a route that checks
 * its own credentials (`own`) compares with a BearerToken (platform/bearer-token.ts) and `credentialOf` below.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BearerToken } from '../platform/bearer-token.js';
import { ensureStateToken } from '../platform/state.js';
import { readSecretFile, type WebConfig } from '../config/web.js';
import type { InputIdentities, Sender } from './input-auth.js';
import type { RouteAuth } from './types.js';

/**
 * The operator's token: web.token, else the file web.token_file, else <state>/token (made, 0600,
 * when missing). `minewatch run` and `server` always have one, even on loopback; a route that
 * checks its own token (the k8s webhooks) falls back to this one, so no input ever runs open.
 * `stateFile` is set when the token is the generated one.
 */
export function operatorToken(web: Pick<WebConfig, 'token' | 'token_file'>): { token: string; stateFile?: string; created?: boolean } {
  if (web.token) return { token: web.token };
  if (web.token_file) return { token: readSecretFile(web.token_file, 'token_file') };
  const t = ensureStateToken();
  return { token: t.token, stateFile: t.path, created: t.created };
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
  /** Who may post to `input` routes; absent: the `token` rule. */
  inputs?: InputIdentities;
}

const senders = new WeakMap<FastifyRequest, Sender>();

/** The sender an `input` route's request was identified as (set by the auth hook). */
export function senderOf(req: FastifyRequest): Sender | undefined {
  return senders.get(req);
}

/**
 * The onRequest check for every route, by its `config.auth` (a route that says nothing, or a
 * request that matched no route, counts as `token`).
 */
export function authHook(tokens: AuthTokens) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const auth: RouteAuth = req.routeOptions.config?.auth ?? 'token';
    if (auth === 'input' && tokens.inputs) {
      const who = await tokens.inputs.identify(credentialOf(req));
      if (!('refused' in who)) {
        senders.set(req, who);
        return;
      }
      // debug: a flood of bad posts must not become a flood of log lines.
      req.log.debug({ url: req.url.split('?')[0], reason: who.reason }, 'input refused');
      reply.header('www-authenticate', 'Bearer realm="minewatch"');
      const msg = who.refused === 503
        ? `cannot check the token now (${who.reason}); retry`
        : "unauthorized: send the operator's token (web.token), this agent's own token (web.inputs.agents) or its ServiceAccount token (web.inputs.service_accounts) as 'Authorization: Bearer <token>'";
      await reply.code(who.refused).send({ error: msg });
      return;
    }
    const need = auth === 'token' || auth === 'input' ? tokens.token : auth === 'metrics' ? tokens.metrics : null;
    if (!need || need.matches(credentialOf(req))) return;
    const which = auth === 'metrics' ? 'the metrics token (web.metrics_token)' : 'the token (web.token, else the one the agent keeps in <state>/token: `minewatch dashboard` prints a link with it)';
    reply.header('www-authenticate', 'Bearer realm="minewatch"');
    await reply.code(401).send({ error: `unauthorized: send ${which} as 'Authorization: Bearer <token>'` });
  };
}
