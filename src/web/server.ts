/**
 * The one HTTP server (ARCHITECTURE.md, "Processes and ports"): /healthz, /metrics, the JSON API,
 * the live stream, the alert inputs, the dashboard, and whatever routes other modules register.
 * Each route says how it authenticates (src/web/types.ts); one onRequest hook enforces it.
 * Bad requests are answered with a JSON `{ error }` naming what is wrong; nothing a client sends
 * takes the server down.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from '../platform/logger.js';
import type { AlertService } from '../alerts/types.js';
import { apiRoutes } from './api.js';
import { BearerToken } from '../platform/bearer-token.js';
import { authHook } from './auth.js';
import { DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, isLoopback, parseListen, readSecretFile, type WebConfig } from '../config/web.js';
import { dashboardRoutes } from './dashboard.js';
import { inputRoutes } from './input.js';
import type { InputIdentities } from './input-auth.js';
import { matchCountsOf, type MetricsSources, metricsRegistry, metricsRoutes, type PipelineMatchCounts } from './metrics.js';
import { streamRoutes } from './stream.js';
import type { RoutePlugin } from './types.js';

export interface WebServerOptions {
  /** HOST:PORT; port 0 picks a free one (tests). Default 127.0.0.1:8788. */
  listen?: string;
  /** Bearer token for `token` routes; required when listening beyond loopback. */
  token?: string | null;
  /** Bearer token for `metrics` routes; open when absent. */
  metricsToken?: string | null;
  /** Distinct values per /metrics label before the rest is counted under `other`. */
  metricsMaxLabelValues?: number;
  /** PEM certificate and key: serve HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Larger request bodies are answered 413. Default 1 MiB. */
  maxBodyBytes?: number;
  logger?: Logger;
  /** The alert pipeline: with it come the API, the stream, the inputs and the dashboard. */
  alerts?: AlertService;
  /** What /metrics reports besides the pipeline's delivery state. */
  metrics?: MetricsSources;
  /** The dashboard's folder (default: the package's ui/); false: no dashboard. */
  dashboard?: string | false;
  /**
   * Who may post alerts (POST /, /falco). Absent: the operator's token alone, alerts' hostnames
   * kept. false: no inputs are mounted (`minewatch run` without web.inputs.enabled).
   */
  inputs?: InputIdentities | false;
}

export interface WebServer {
  readonly app: FastifyInstance;
  /** Add another module's routes; before start(). */
  register(plugin: RoutePlugin): void;
  /** Listen; resolves with the base URL (e.g. http://127.0.0.1:8788). */
  start(): Promise<string>;
  close(): Promise<void>;
}

/** A problem with the server's settings, naming the `web.` key at fault. */
export class WebConfigError extends Error {
  override name = 'WebConfigError';
}

/**
 * Options from the `web` config section: token and TLS files are read here, errors name them.
 * `token`: the operator's token when the caller has it already (operatorToken: read once).
 */
export function webServerOptions(cfg: WebConfig, token?: string): WebServerOptions {
  const opts: WebServerOptions = { listen: cfg.listen, maxBodyBytes: cfg.max_body_bytes, metricsMaxLabelValues: cfg.metrics_max_label_values };
  opts.token = token ?? cfg.token ?? (cfg.token_file ? readSecretFile(cfg.token_file, 'token_file') : null);
  opts.metricsToken = cfg.metrics_token ?? (cfg.metrics_token_file ? readSecretFile(cfg.metrics_token_file, 'metrics_token_file') : null);
  if (cfg.tls) {
    const read = (path: string, key: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (e) {
        throw new WebConfigError(`web.tls.${key}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path and its permissions`);
      }
    };
    opts.tls = { cert: read(cfg.tls.cert_file, 'cert_file'), key: read(cfg.tls.key_file, 'key_file') };
  }
  return opts;
}

function clientError(err: FastifyError, maxBody: number): { code: number; error: string } | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 413, error: `request body larger than ${maxBody} bytes (web.max_body_bytes); send fewer alerts per request` };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 400, error: `body is not valid JSON: ${err.message}` };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 415, error: `${err.message}; send Content-Type: application/json` };
  }
  const status = err.statusCode ?? 500;
  return status >= 400 && status < 500 ? { code: status, error: err.message } : undefined;
}

export function createWebServer(opts: WebServerOptions = {}): WebServer {
  const listenText = opts.listen ?? DEFAULT_LISTEN;
  const addr = parseListen(listenText);
  if (typeof addr === 'string') throw new WebConfigError(`web.listen: ${addr}`);
  const token = opts.token ? new BearerToken(opts.token) : null;
  if (!token && !isLoopback(addr.host)) {
    throw new WebConfigError(`web.listen: listening on ${listenText} (beyond loopback) needs a token: set web.token or web.token_file, or listen on 127.0.0.1`);
  }
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    bodyLimit: maxBody,
    // One line per request would drown the agent's log; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // A client trickling its request (or never finishing it) does not hold a socket for ever.
    requestTimeout: 30_000,
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  app.addHook('onRequest', authHook({ token, metrics: opts.metricsToken ? new BearerToken(opts.metricsToken) : null, ...(opts.inputs ? { inputs: opts.inputs } : {}) }));
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const known = clientError(err, maxBody);
    if (known) {
      req.log.debug({ url: req.url, err: err.message }, 'bad request');
      return reply.code(known.code).send({ error: known.error });
    }
    req.log.error({ url: req.url, err }, 'request failed');
    return reply.code(500).send({ error: 'internal error; the server log has the details' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}` }));

  // Falco's webserver answers its health endpoint with exactly this body.
  app.get('/healthz', { config: { auth: 'open' } }, async (_req, reply) => reply.type('application/json').send('{"status": "ok"}'));

  const alerts = opts.alerts;
  const sources: MetricsSources = { ...opts.metrics };
  if (alerts) {
    sources.outputs ??= () => alerts.outputStats();
    // The pipeline counts every match, repeats included (AlertPipeline.matchCountsByRule).
    const own = (alerts as Partial<PipelineMatchCounts>).matchCountsByRule;
    if (!sources.alerts && typeof own === 'function') sources.alerts = matchCountsOf(alerts as unknown as PipelineMatchCounts);
  }
  void app.register(metricsRoutes(metricsRegistry(sources, { maxLabelValues: opts.metricsMaxLabelValues })));
  if (alerts) {
    void app.register(apiRoutes(alerts));
    void app.register(streamRoutes(alerts));
    if (opts.inputs !== false) void app.register(inputRoutes(alerts));
    if (opts.dashboard !== false) void app.register(dashboardRoutes(opts.dashboard));
  }

  let started = false;
  return {
    app,
    register(plugin) {
      if (started) throw new Error('web server: register() after start(); register every module\'s routes first');
      void app.register(plugin);
    },
    async start() {
      started = true;
      await app.listen({ host: addr.host, port: addr.port });
      const a = app.server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      const url = `${opts.tls ? 'https' : 'http'}://${host}:${a.port}`;
      app.log.info({ url, auth: token ? 'token' : 'none (loopback only)' }, 'web server listening');
      return url;
    },
    async close() {
      await app.close();
    },
  };
}
