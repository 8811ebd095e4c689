/**
 * What `minewatch run` and `minewatch server` share: the alert pipeline (store, throttle, outputs)
 * and the one web server in front of it, wired to the config. The agent adds its sources; the
 * server runs this alone.
 */
import type { Logger } from '../platform/logger.js';
import { createOutputs } from '../alerts/outputs/index.js';
import { forwardOutput } from '../alerts/forward.js';
import { AlertPipeline } from '../alerts/pipeline.js';
import { PgAlertService } from '../alerts/pg/service.js';
import type { AlertService } from '../alerts/types.js';
import type { Config } from '../config/sections.js';
import { priorityLabel, type Priority } from '../engine/types.js';
import { clientOptions } from '../k8s-api/api-config.js';
import { K8sClient } from '../k8s-api/client.js';
import { tokenReviewer } from '../k8s-api/token-review.js';
import { BearerToken } from '../platform/bearer-token.js';
import { operatorToken } from '../web/auth.js';
import { isLoopback, parseListen, readSecretFile } from '../config/web.js';
import { inputIdentities, type InputIdentities } from '../web/input-auth.js';
import type { MetricsSources } from '../web/metrics.js';
import { createWebServer, WebConfigError, webServerOptions, type WebServer } from '../web/server.js';
import type { RoutePlugin } from '../web/types.js';

/** The alert service either store gives: AlertPipeline (SQLite) or PgAlertService (PostgreSQL). */
export type AlertIntake = AlertService & Pick<AlertPipeline, 'accept' | 'matchCountsByRule' | 'groupingStats' | 'stop'>;

export interface Alerting {
  readonly pipeline: AlertIntake;
  /** The web server, when `web.enabled` and it could listen. */
  readonly web: WebServer | undefined;
  /** Its base URL, e.g. http://127.0.0.1:8788. */
  readonly url: string | undefined;
  stop(): Promise<void>;
}

export interface AlertingOptions {
  /** What /metrics reports besides the pipeline (the agent's events, drops, rules). */
  metrics?: MetricsSources;
  /** Other modules' routes (webhook sources, admission). */
  routes?: RoutePlugin[];
  /** Listeners of their own that come and go with the web server (the admission webhook's port). */
  listeners?: { start(): Promise<string>; close(): Promise<void> }[];
  /**
   * `server`: a web server that cannot listen is fatal (it is the whole point). The agent goes on
   * detecting and stopping miners without it, and says so.
   */
  webRequired: boolean;
  /** Mount the alert inputs (POST /, /falco): the server always, the agent when web.inputs.enabled. */
  inputs: boolean;
  /** The alert pipeline, opened beforehand (openAlertPipeline) so the event pipeline can end in it. */
  pipeline?: AlertIntake;
  /** alerts.store.url (PostgreSQL, shared by replicas) is allowed: the server only. */
  sharedStore?: boolean;
}

/**
 * The store (SQLite, or PostgreSQL for the server's replicas), throttle and outputs (the fleet
 * forwarder among them), started: where every match ends.
 */
export async function openAlertPipeline(config: Config, log: Logger, opts: { sharedStore?: boolean } = {}): Promise<AlertIntake> {
  const outputs = createOutputs(config.outputs, log);
  if (config.alerts.forward) outputs.push(forwardOutput(config.alerts.forward, log));
  let pipeline: AlertIntake;
  let store: string;
  if (config.alerts.store.url) {
    if (!opts.sharedStore) throw new Error('alerts.store.url (PostgreSQL) is for `minewatch server`: an agent keeps its alerts in SQLite (alerts.store.path) and forwards them; remove the key here');
    const svc = await PgAlertService.start({ config: config.alerts, outputs, log, maxLabelValues: config.web.metrics_max_label_values });
    pipeline = svc;
    store = svc.store.location;
  } else {
    const p = new AlertPipeline({ config: config.alerts, outputs, log, maxLabelValues: config.web.metrics_max_label_values }).start();
    pipeline = p;
    store = p.store.path;
  }
  log.info({ store, outputs: outputs.map((o) => o.name), throttleWindowS: config.alerts.throttle.window_s }, 'alert pipeline started');
  return pipeline;
}

/** Who may post alerts: the operator, and the agents the config names (their tokens read now). */
function senders(config: Config, operator: string, log: Logger): InputIdentities {
  const inp = config.web.inputs;
  const agents = inp.agents.map((a, i) => ({ hostname: a.hostname, token: a.token ?? readSecretFile(a.token_file!, `inputs.agents[${i}].token_file`) }));
  let reviewer;
  if (inp.service_accounts.length > 0) {
    try {
      reviewer = tokenReviewer(new K8sClient(clientOptions(config.k8s.api)));
    } catch (e) {
      throw new Error(`web.inputs.service_accounts: ${(e as Error).message}`);
    }
  }
  return inputIdentities({
    operator: new BearerToken(operator), agents, serviceAccounts: inp.service_accounts, audience: inp.audience, reviewCacheS: inp.review_cache_s, reviewer, log,
  });
}

/**
 * Where to find the dashboard, once: on a terminal the URL with the generated token (as Jupyter
 * prints its own), so it opens in one click; elsewhere (journal, container log) only the file
 * that holds the token, never the token.
 */
function announce(url: string, tok: ReturnType<typeof operatorToken>, log: Logger): void {
  if (!tok.stateFile) return;
  if (process.stdout.isTTY) {
    process.stdout.write(`\nThe dashboard, with its token (kept in ${tok.stateFile}):\n    ${url}/?token=${encodeURIComponent(tok.token)}\n\n`);
  } else {
    log.info({ token_file: tok.stateFile, created: tok.created }, 'the API, the dashboard and the inputs need the token in token_file (readable by this user only): `minewatch alerts` reads it; the dashboard takes it as ?token=');
  }
}

export async function startAlerting(config: Config, log: Logger, opts: AlertingOptions): Promise<Alerting> {
  const pipeline = opts.pipeline ?? await openAlertPipeline(config, log, opts);
  let web: WebServer | undefined;
  let url: string | undefined;
  if (config.web.enabled) {
    try {
      // Beyond loopback the token must be one the operator chose and handed out on purpose (the
      // config check says so for web.listen; this catches --listen too).
      const addr = parseListen(config.web.listen);
      if (typeof addr !== 'string' && !isLoopback(addr.host) && !config.web.token && !config.web.token_file) {
        throw new WebConfigError(`--listen/web.listen ${config.web.listen} is beyond loopback: set web.token or web.token_file, or listen on 127.0.0.1`);
      }
      const tok = operatorToken(config.web);
      const inputs = opts.inputs ? senders(config, tok.token, log) : false;
      if (inputs && opts.webRequired && !inputs.hasAgents) {
        log.warn('every sender posts with the operator\'s token and the hostname each alert claims is stored as it is: give each agent its own token (web.inputs.agents) or ServiceAccount (web.inputs.service_accounts)');
      }
      web = createWebServer({
        ...webServerOptions(config.web, tok.token),
        inputs,
        logger: log,
        alerts: pipeline,
        metrics: {
          alerts: () => pipeline.matchCountsByRule().map((c) => [c.rule, priorityLabel(c.priority as Priority), c.count] as [string, string, number]),
          grouping: () => pipeline.groupingStats(),
          ...opts.metrics,
        },
      });
      for (const r of opts.routes ?? []) web.register(r);
      url = await web.start();
      for (const l of opts.listeners ?? []) await l.start();
      announce(url, tok, log);
    } catch (err) {
      for (const l of opts.listeners ?? []) await l.close().catch(() => undefined);
      await web?.close().catch(() => undefined);
      web = undefined;
      if (opts.webRequired) {
        await pipeline.stop();
        throw err;
      }
      log.error({ err: (err as Error).message, listen: config.web.listen }, 'the web server could not start (no dashboard, API, metrics or webhooks); detection goes on without it');
    }
  }
  return {
    pipeline,
    web,
    url,
    async stop() {
      for (const l of web ? opts.listeners ?? [] : []) await l.close().catch((err) => log.warn({ err: String(err) }, 'admission listener did not close cleanly'));
      await web?.close().catch((err) => log.warn({ err: String(err) }, 'web server did not close cleanly'));
      await pipeline.stop();
    },
  };
}
