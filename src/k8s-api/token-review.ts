/**
 * Who a Kubernetes ServiceAccount token belongs to, asked of the API server (TokenReview): the
 * central server learns an agent's identity, and the node its pod runs on, from the agent's
 * projected token. The audience is checked both ways: the review asks for it, and the answer must
 * name it (an API server that ignores audiences would otherwise accept any token of the account,
 * e.g. one meant for the API server itself).
 */
import type { V1TokenReview } from '@kubernetes/client-node';
import { apiFailure, K8sClient, k8sLib } from './client.js';

export interface ReviewedToken {
  /** "system:serviceaccount:NAMESPACE:NAME" */
  username: string;
  /** The ServiceAccount, when the user is one. */
  serviceAccount?: { namespace: string; name: string };
  /** authentication.kubernetes.io/node-name (bound tokens, Kubernetes 1.30+). */
  nodeName?: string;
  /** authentication.kubernetes.io/pod-name, for asking the pod's node on older clusters. */
  podName?: string;
}

/** Why a token was refused: `unauthenticated` (401) or `unavailable` (the API server did not answer: 503). */
export class TokenReviewError extends Error {
  override name = 'TokenReviewError';
  constructor(message: string, readonly kind: 'unauthenticated' | 'unavailable') {
    super(message);
  }
}

export interface TokenReviewer {
  review(token: string, audience: string): Promise<ReviewedToken>;
  /** The node a pod runs on (spec.nodeName), for tokens that do not carry it. */
  podNode(namespace: string, pod: string): Promise<string | undefined>;
}

const first = (v: string[] | undefined): string | undefined => (v && v.length > 0 && v[0] ? v[0] : undefined);

/** A TokenReviewer over the API server the client points at. */
export function tokenReviewer(client: K8sClient): TokenReviewer {
  const auth = client.kc.makeApiClient(k8sLib().AuthenticationV1Api);
  return {
    async review(token, audience) {
      let answer: V1TokenReview;
      try {
        answer = await auth.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } } });
      } catch (e) {
        const f = apiFailure(e);
        const hint = f.status === 403 ? ': grant the server create on tokenreviews.authentication.k8s.io (the ClusterRole system:auth-delegator has it)' : '';
        throw new TokenReviewError(`TokenReview failed (${f.status || f.reason}): ${f.message}${hint}`, 'unavailable');
      }
      const st = answer.status;
      if (!st?.authenticated || !st.user?.username) throw new TokenReviewError(`the API server did not accept the token${st?.error ? `: ${st.error}` : ''}`, 'unauthenticated');
      if (!(st.audiences ?? []).includes(audience)) throw new TokenReviewError(`the token is not issued for the audience '${audience}' (web.inputs.audience); project the agent's token with that audience`, 'unauthenticated');
      const username = st.user.username;
      const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
      const extra = st.user.extra ?? {};
      return {
        username,
        ...(sa ? { serviceAccount: { namespace: sa[1]!, name: sa[2]! } } : {}),
        nodeName: first(extra['authentication.kubernetes.io/node-name']),
        podName: first(extra['authentication.kubernetes.io/pod-name']),
      };
    },
    async podNode(namespace, pod) {
      try {
        const p = await client.core.readNamespacedPod({ namespace, name: pod });
        return p.spec?.nodeName || undefined;
      } catch (e) {
        const f = apiFailure(e);
        throw new TokenReviewError(`cannot read pod ${namespace}/${pod} for its node (${f.status || f.reason}): ${f.message}`, 'unavailable');
      }
    },
  };
}
