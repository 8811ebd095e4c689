/**
 * Who is posting alerts to the inputs. Every sender has an identity, and the identity says which
 * host its alerts are from — not the alerts themselves, which the sender writes:
 * - the operator's token (web.token, or the generated <state>/token): trusted as the operator,
 *   so the hostname an alert carries is kept (Falco's http_output, a replay, a test);
 * - an agent's own token (web.inputs.agents): its alerts are stored under its configured hostname;
 * - a Kubernetes ServiceAccount token (web.inputs.service_accounts, checked by TokenReview): its
 *   alerts are stored under the node its pod runs on.
 * Answers are cached per token (by digest) for a while, and concurrent requests with the same
 * unchecked token share one review, so a flood of posts is not a flood of TokenReviews.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../platform/logger.js';
import { LruMap } from '../platform/lru.js';
import { TokenReviewError, type TokenReviewer } from '../k8s-api/token-review.js';
import type { BearerToken } from '../platform/bearer-token.js';
import type { InputsConfig } from '../config/web.js';

export interface Sender {
  kind: 'operator' | 'agent' | 'service-account';
  /** Who, for the log: "operator", "agent node-a", "system:serviceaccount:minewatch:agent". */
  name: string;
  /** The hostname its alerts are stored under; undefined: as each alert says (the operator). */
  hostname?: string;
}

/** A sender, or why not: 401 (unknown credential) or 503 (it could not be checked now). */
export type Identified = Sender | { refused: 401 | 503; reason: string };

export interface InputIdentities {
  identify(credential: string | undefined): Promise<Identified>;
  /** Whether any sender besides the operator is configured. */
  readonly hasAgents: boolean;
}

const digest = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/** A JWT's shape: three base64url parts (ServiceAccount tokens are JWTs; agent tokens need not be). */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Failed reviews are remembered briefly too, so one bad token sent in a loop costs one review. */
const NEGATIVE_CACHE_MS = 10_000;
const MAX_CACHED = 10_000;

export interface InputIdentityOptions {
  /** The operator's token. */
  operator: BearerToken | null;
  /** Agent tokens (already read from their files) → hostname. */
  agents?: { hostname: string; token: string }[];
  serviceAccounts?: InputsConfig['service_accounts'];
  audience?: string;
  reviewCacheS?: number;
  reviewer?: TokenReviewer;
  log?: Logger;
  now?: () => number;
}

export function inputIdentities(o: InputIdentityOptions): InputIdentities {
  // Looked up by the candidate's digest: the lookup's timing depends on the digest, which says
  // nothing usable about any configured token.
  const agents = new Map<string, string>();
  for (const a of o.agents ?? []) agents.set(digest(a.token), a.hostname);
  const accounts = new Set((o.serviceAccounts ?? []).map((s) => `system:serviceaccount:${s.namespace}:${s.name}`));
  const audience = o.audience ?? 'minewatch';
  const ttlMs = (o.reviewCacheS ?? 60) * 1000;
  const now = o.now ?? Date.now;
  const cache = new LruMap<string, { until: number; answer: Identified }>(MAX_CACHED);
  const inFlight = new Map<string, Promise<Identified>>();
  if (accounts.size > 0 && !o.reviewer) throw new Error('web.inputs.service_accounts: no Kubernetes API to review tokens with; configure k8s.api (or run in a pod)');

  async function review(token: string): Promise<Identified> {
    try {
      const r = await o.reviewer!.review(token, audience);
      if (!accounts.has(r.username)) return { refused: 401, reason: `${r.username} is not in web.inputs.service_accounts` };
      let node = r.nodeName;
      if (!node && r.podName && r.serviceAccount) node = await o.reviewer!.podNode(r.serviceAccount.namespace, r.podName);
      if (!node) return { refused: 401, reason: `the token of ${r.username} names no pod or node (use a projected, pod-bound token)` };
      return { kind: 'service-account', name: r.username, hostname: node };
    } catch (e) {
      if (e instanceof TokenReviewError) {
        if (e.kind === 'unavailable') o.log?.warn({ err: e.message }, 'cannot check an input token with the Kubernetes API');
        return { refused: e.kind === 'unavailable' ? 503 : 401, reason: e.message };
      }
      throw e;
    }
  }

  return {
    hasAgents: agents.size > 0 || accounts.size > 0,
    async identify(credential) {
      if (credential === undefined) return { refused: 401, reason: 'no token' };
      if (o.operator?.matches(credential)) return { kind: 'operator', name: 'operator' };
      const d = digest(credential);
      const host = agents.get(d);
      if (host !== undefined) return { kind: 'agent', name: `agent ${host}`, hostname: host };
      if (accounts.size === 0 || !JWT.test(credential)) return { refused: 401, reason: 'unknown token' };
      const hit = cache.get(d);
      if (hit && hit.until > now()) return hit.answer;
      let p = inFlight.get(d);
      if (!p) {
        p = review(credential).then((answer) => {
          inFlight.delete(d);
          // An unavailable API server is not remembered: the next post asks again.
          if (!('refused' in answer) || answer.refused === 401) {
            cache.set(d, { until: now() + ('refused' in answer ? Math.min(ttlMs, NEGATIVE_CACHE_MS) : ttlMs), answer });
          }
          return answer;
        }, (e: unknown) => {
          inFlight.delete(d);
          throw e;
        });
        inFlight.set(d, p);
      }
      return p;
    },
  };
}
