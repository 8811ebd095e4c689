/**
 * The webhook sources' routes for the web server, from the config: the k8s audit webhook and the
 * admission webhook (k8s section), the GitHub webhook (github section). Their events go to the
 * agent's queue; admission decisions are recorded as alerts. The admission webhook may have a
 * listener of its own (k8s.admission.listen): then it is in `listeners`, not in `routes`.
 */
import type { Logger } from '../platform/logger.js';
import type { Config } from '../config/sections.js';
import { resolveRulesPaths } from '../engine/index.js';
import type { Match } from '../engine/types.js';
import { githubRoutesFor } from '../github/config.js';
import { type AdmissionListener, admissionListener } from '../k8s/admission-server.js';
import { type K8sRouteDeps, k8sAdmissionRoutes, k8sRoutes } from '../k8s/routes.js';
import { admissionAuthStatus, configuredWebToken } from '../k8s/webhook-auth.js';
import type { RoutePlugin } from '../web/types.js';
import type { Event } from '../events.js';

/** Where the webhook sources' events go (the event pipeline's sink): false when it is full. */
export type EventSink = (ev: Event) => boolean;

export interface Webhooks {
  routes: RoutePlugin[];
  listeners: AdmissionListener[];
}

/**
 * The webhook inputs the config turns on, each named by its key and route (for the log, where they
 * are not mounted): the list to extend beside webhooks() when a webhook is added.
 */
export function enabledWebhooks(config: Config): string[] {
  const on: string[] = [];
  if (config.k8s.audit.enabled) on.push('k8s.audit (POST /k8s-audit)');
  if (config.k8s.admission.enabled) on.push('k8s.admission (POST /admission)');
  if (config.github.enabled) on.push('github (POST /github)');
  return on;
}

/** Throws naming the config key at fault (a webhook without a token, an unreadable token file, …). */
export function webhooks(config: Config, sink: EventSink, onMatch: (m: Match) => void, log: Logger): Webhooks {
  const { k8s, github } = config;
  const deps: K8sRouteDeps = {
    sink,
    rules: resolveRulesPaths(config.rules_files),
    webToken: k8s.audit.enabled || k8s.admission.enabled ? configuredWebToken(config.web) : undefined,
    onAdmission: (matches, decision) => {
      log.info({ uid: decision.uid, allowed: decision.allowed, mode: decision.mode, rules: matches.map((m) => m.rule) }, 'admission review matched');
      for (const m of matches) onMatch(m);
    },
  };
  const status = admissionAuthStatus({ k8s, web: config.web });
  if (status.unauthenticated) log.warn({ key: 'k8s.admission.allow_unauthenticated' }, status.message);
  const listeners: AdmissionListener[] = [];
  if (k8s.admission.enabled && k8s.admission.listen) {
    listeners.push(admissionListener({ listen: k8s.admission.listen, tls: config.web.tls, clientCaFile: k8s.admission.client_ca_file, routes: k8sAdmissionRoutes(k8s, deps), logger: log }));
  }
  return {
    routes: [...k8sRoutes(k8s, deps), ...(github.enabled ? [githubRoutesFor(github, sink, log)] : [])],
    listeners,
  };
}
