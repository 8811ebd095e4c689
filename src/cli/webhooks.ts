/**
 * The webhook sources' routes for the web server, from the config: the k8s audit webhook and the
 * admission webhook (k8s section), the GitHub webhook (github section). Their events go to the
 * agent's queue; admission decisions are recorded as alerts.
 */
import type { Agent } from '../agent/agent.js';
import type { Logger } from '../agent/logger.js';
import type { Config } from '../config/sections.js';
import { resolveRulesPaths } from '../engine/index.js';
import type { Match } from '../engine/types.js';
import { type GithubConfig, githubRoutesFor } from '../github/config.js';
import type { K8sConfig } from '../k8s/config.js';
import { k8sRoutes } from '../k8s/routes.js';
import type { RoutePlugin } from '../web/types.js';

export function webhookRoutes(config: Config, agent: Agent, onMatch: (m: Match) => void, log: Logger): RoutePlugin[] {
  const k8s = config.k8s as K8sConfig;
  const github = config.github as GithubConfig;
  return [
    ...k8sRoutes(k8s, {
      sink: agent.sink,
      rules: resolveRulesPaths(config.rules_files),
      onAdmission: (matches, decision) => {
        log.info({ uid: decision.uid, allowed: decision.allowed, mode: decision.mode, rules: matches.map((m) => m.rule) }, 'admission review matched');
        for (const m of matches) onMatch(m);
      },
    }),
    ...(github.enabled ? [githubRoutesFor(github, agent.sink, log)] : []),
  ];
}
