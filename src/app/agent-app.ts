/**
 * `minewatch run` and `minewatch server` put together, in one order: the rules (a bad file stops
 * here, before anything opens), the alert pipeline, the event pipeline ending in it, the agent,
 * then the web server with the webhook inputs feeding the event pipeline, then the sources.
 */
import { Agent } from '../agent/agent.js';
import type { Logger } from '../platform/logger.js';
import type { RulesManager } from '../agent/rules-manager.js';
import { type AlertIntake, type Alerting, openAlertPipeline, startAlerting } from './alerting.js';
import type { RoutePlugin } from '../web/types.js';
import { enabledWebhooks, type Webhooks, webhooks } from './webhooks.js';
import type { Config } from '../config/sections.js';
import type { Event } from '../events.js';
import { composeHostCore, type Core } from './compose.js';

export interface AgentApp {
  readonly agent: Agent;
  readonly core: Core & { rules: RulesManager };
  readonly alerting: Alerting;
  /** Stop the agent first (the events it still holds become alerts, stored), then the alert side. */
  stop(): Promise<void>;
}

export interface AgentAppOptions {
  /** `server`: no host sources, the web server is required and the inputs always mounted. */
  server: boolean;
  /** Built already (the caller prints its load errors). */
  rules: RulesManager;
  /** `run --record`: every enriched event. */
  record?: (ev: Event) => void;
  /** More routes on the web server (the server's /readyz). */
  routes?: RoutePlugin[];
}

/**
 * The webhook inputs the config turns on, when web.inputs.enabled allows inputs at all; those it
 * does not allow are named in the log with the key that would.
 */
function agentInputs(config: Config, log: Logger, hooks: () => Webhooks): Webhooks {
  if (config.web.inputs.enabled === true) return hooks();
  const wanted = enabledWebhooks(config);
  if (wanted.length) log.warn({ inputs: wanted }, 'these inputs are enabled but web.inputs.enabled is false, so the agent does not mount them: set web.inputs.enabled: true (the agent then takes input from whoever holds a token)');
  return { routes: [], listeners: [] };
}

/** Which part could not start, and why. */
export class AppStartError extends Error {
  constructor(readonly stage: 'alerting' | 'agent', override readonly cause: Error) {
    super(cause.message);
    this.name = 'AppStartError';
  }
}

/** Throws AppStartError (the web server for `server`, the webhook config for `server`, the webhook config) with a message naming the key at fault. */
export async function startAgentApp(config: Config, log: Logger, o: AgentAppOptions): Promise<AgentApp> {
  let alerts: AlertIntake;
  try {
    alerts = await openAlertPipeline(config, log, { sharedStore: o.server });
  } catch (e) {
    throw new AppStartError('alerting', e as Error);
  }
  const core = composeHostCore(config, log, { sink: (m) => void alerts.accept(m), rules: o.rules, record: o.record });
  const agent = new Agent(config, log, core, { hostSources: !o.server });
  const toAlerts = (m: Parameters<AlertIntake['accept']>[0]): void => void alerts.accept(m);
  let alerting: Alerting;
  try {
    const hooks = (): Webhooks => webhooks(config, core.pipeline.sink, toAlerts, log);
    alerting = await startAlerting(config, log, {
      pipeline: alerts,
      webRequired: o.server,
      inputs: o.server || config.web.inputs.enabled === true,
      sharedStore: o.server,
      ...(() => {
        const h = o.server ? hooks() : agentInputs(config, log, hooks);
        return { ...h, routes: [...h.routes, ...(o.routes ?? [])] };
      })(),
      metrics: o.server
        ? { events: () => core.pipeline.eventCounts.entries(), rulesLoaded: () => core.rules.engine.active.length }
        : {
          events: () => core.pipeline.eventCounts.entries(),
          drops: () => {
            const s = agent.stats();
            return [['queue', s.queueDrops], ['source', s.sourceDrops], ['exec_image_unsettled', s.unsettledExecs]];
          },
          rulesLoaded: () => core.rules.engine.active.length,
        },
    });
  } catch (e) {
    await agent.stop();
    await alerts.stop();
    throw new AppStartError('alerting', e as Error);
  }
  try {
    await agent.start();
  } catch (e) {
    await agent.stop();
    await alerting.stop();
    throw new AppStartError('agent', e as Error);
  }
  return { agent, core, alerting, stop: () => agent.stop().then(() => alerting.stop()) };
}
