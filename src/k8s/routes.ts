/**
 * The k8s config section turned into the routes the web server mounts: POST /k8s-audit when
 * `k8s.audit.enabled`, POST /admission when `k8s.admission.enabled` (and it has no listener of its
 * own, `k8s.admission.listen`: admission-server.ts). Each is a fastify plugin to register with
 * `app.register` (encapsulated: each reads its bodies raw, under its own size limit, and checks its
 * own token before reading them).
 */
import type { Match } from '../engine/types.js';
import type { EventSink, RoutePlugin } from '../web/types.js';
import { type AdmissionMode, admissionEngine, admissionRoutes } from './admission.js';
import { auditWebhookRoutes } from './audit-webhook.js';
import type { K8sConfig } from '../config/k8s.js';
import { admissionCredential, auditCredential } from './webhook-auth.js';

export interface K8sRouteDeps {
  /** The agent's queue (Agent.sink). */
  sink: EventSink;
  /** Rules files for the admission engine (the agent's rules_files; default: minewatch's). */
  rules?: string[];
  /** Each admission match, with its decision: record it as an alert. */
  onAdmission?: (matches: Match[], decision: { allowed: boolean; mode: AdmissionMode; uid: string }) => void;
  /** The server's token (web.token): what the webhooks check when they have none of their own. */
  webToken?: string;
}

type K8sRouteConfig = Pick<K8sConfig, 'audit' | 'admission'>;

/** The admission route, as configured. Throws naming the key at fault (no token, unreadable file, rules that do not load). */
export function k8sAdmissionRoutes(config: K8sRouteConfig, deps: K8sRouteDeps): RoutePlugin {
  const a = config.admission;
  const credential = admissionCredential(a, deps.webToken);
  const engine = admissionEngine(deps.rules);
  return admissionRoutes({
    mode: a.mode,
    evaluate: (ev) => engine.process(ev),
    onMatch: deps.onAdmission,
    credential,
    maxBodyBytes: a.max_body_bytes,
    maxInFlightPerClient: a.max_in_flight_per_client,
  });
}

/** The routes for the web server. Throws with the config key at fault when a token is missing or unreadable, or the rules do not load. */
export function k8sRoutes(config: K8sRouteConfig, deps: K8sRouteDeps): RoutePlugin[] {
  const out: RoutePlugin[] = [];
  if (config.audit.enabled) {
    const c = auditCredential(config.audit, deps.webToken);
    out.push(auditWebhookRoutes({ sink: deps.sink, token: c.token, tokenKey: c.key, maxBodyBytes: config.audit.max_body_bytes }));
  }
  if (config.admission.enabled && !config.admission.listen) out.push(k8sAdmissionRoutes(config, deps));
  return out;
}
