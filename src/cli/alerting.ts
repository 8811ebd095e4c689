/**
 * What `minewatch run` and `minewatch server` share: the alert pipeline (store, throttle, outputs)
 * and the one web server in front of it, wired to the config. The agent adds its sources; the
 * server runs this alone.
 */
import type { Logger } from '../agent/logger.js';
import { createOutputs } from '../alerts/outputs/index.js';
import { AlertPipeline } from '../alerts/pipeline.js';
import type { Config } from '../config/sections.js';
import { priorityLabel, type Priority } from '../engine/types.js';
import type { MetricsSources } from '../web/metrics.js';
import { createWebServer, webServerOptions, type WebServer } from '../web/server.js';
import type { RoutePlugin } from '../web/types.js';

export interface Alerting {
  readonly pipeline: AlertPipeline;
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
}

export async function startAlerting(config: Config, log: Logger, opts: AlertingOptions): Promise<Alerting> {
  const outputs = createOutputs(config.outputs, log);
  const pipeline = new AlertPipeline({ config: config.alerts, outputs, log }).start();
  log.info({ store: pipeline.store.path, outputs: outputs.map((o) => o.name), throttleWindowS: config.alerts.throttle.window_s }, 'alert pipeline started');
  let web: WebServer | undefined;
  let url: string | undefined;
  if (config.web.enabled) {
    try {
      web = createWebServer({
        ...webServerOptions(config.web),
        logger: log,
        alerts: pipeline,
        metrics: {
          alerts: () => pipeline.matchCountsByRule().map((c) => [c.rule, priorityLabel(c.priority as Priority), c.count] as [string, string, number]),
          ...opts.metrics,
        },
      });
      for (const r of opts.routes ?? []) web.register(r);
      url = await web.start();
      for (const l of opts.listeners ?? []) await l.start();
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
