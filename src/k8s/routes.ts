/**
 * The k8s config section turned into the routes the web server mounts: POST /k8s-audit when
 * `k8s.audit.enabled`, POST /admission when `k8s.admission.enabled`. Each is a fastify plugin to
 * register with `app.register` (encapsulated: each reads its bodies raw, under its own size limit).
 */
import type { Match } from '../engine/types.js';
import type { EventSink, RoutePlugin } from '../web/types.js';
import { type AdmissionMode, admissionEngine, admissionRoutes } from './admission.js';
import { auditWebhookRoutes } from './audit-webhook.js';
import { type K8sConfig, resolveToken } from './config.js';

export interface K8sRouteDeps {
  /** The agent's queue (Agent.sink). */
  sink: EventSink;
  /** Rules files for the admission engine (the agent's rules_files; default: minewatch's). */
  rules?: string[];
  /** Each admission match, with its decision: record it as an alert. */
  onAdmission?: (matches: Match[], decision: { allowed: boolean; mode: AdmissionMode; uid: string }) => void;
}

/** Throws with the config key at fault when a token file cannot be read, or the rules do not load. */
export function k8sRoutes(config: Pick<K8sConfig, 'audit' | 'admission'>, deps: K8sRouteDeps): RoutePlugin[] {
  const out: RoutePlugin[] = [];
  if (config.audit.enabled) {
    out.push(auditWebhookRoutes({ sink: deps.sink, token: resolveToken(config.audit, 'k8s.audit'), maxBodyBytes: config.audit.max_body_bytes }));
  }
  if (config.admission.enabled) {
    const engine = admissionEngine(deps.rules);
    out.push(admissionRoutes({
      mode: config.admission.mode,
      evaluate: (ev) => engine.process(ev),
      onMatch: deps.onAdmission,
      token: resolveToken(config.admission, 'k8s.admission'),
      maxBodyBytes: config.admission.max_body_bytes,
    }));
  }
  return out;
}
