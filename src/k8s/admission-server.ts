/**
 * The admission webhook on a listener of its own (`k8s.admission.listen`), apart from the web
 * server's port: a NetworkPolicy works per port, so only this way can it admit the API server to
 * /admission and nobody else, while agents, Prometheus and people still reach the web server.
 * It serves POST /admission only, over the web server's TLS certificate (the API server calls
 * webhooks over HTTPS only).
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Logger } from '../platform/logger.js';
import { isLoopback, parseListen } from '../config/web.js';
import type { RoutePlugin } from '../web/types.js';

export interface AdmissionListenerOptions {
  /** HOST:PORT (k8s.admission.listen). */
  listen: string;
  /** PEM files (web.tls): without them it serves plain HTTP, which the API server will not call. */
  tls?: { cert_file: string; key_file: string };
  /** k8s.admission.client_ca_file: ask for client certificates and verify them against this CA. */
  clientCaFile?: string;
  routes: RoutePlugin;
  logger?: Logger;
}

export interface AdmissionListener {
  start(): Promise<string>;
  close(): Promise<void>;
}

/** Throws naming the key at fault: a listen address that does not parse, TLS files that cannot be read. */
export function admissionListener(opts: AdmissionListenerOptions): AdmissionListener {
  const addr = parseListen(opts.listen);
  if (typeof addr === 'string') throw new Error(`k8s.admission.listen: ${addr}`);
  /** A PEM file, or an error naming its config key. */
  const read = (path: string, key: string, why = ''): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`${key}: cannot read ${path}${why}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path and its permissions`);
    }
  };
  if (opts.clientCaFile && !opts.tls) throw new Error('k8s.admission.client_ca_file: client certificates need TLS: set web.tls (cert_file, key_file)');
  const ca = opts.clientCaFile ? read(opts.clientCaFile, 'k8s.admission.client_ca_file') : undefined;
  // With a client CA, the certificate is asked for but not required by TLS: the route decides
  // (a token may do instead), and says why in a 401 rather than a failed handshake.
  const https = opts.tls
    ? {
      cert: read(opts.tls.cert_file, 'web.tls.cert_file', ' for the admission listener'),
      key: read(opts.tls.key_file, 'web.tls.key_file', ' for the admission listener'),
      ...(ca ? { ca, requestCert: true, rejectUnauthorized: false } : {}),
    }
    : undefined;
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    ...(https ? { https } : {}),
    logController: new LogController({ disableRequestLogging: true }),
    // A client trickling a body does not hold its slot for ever; the API server's timeout is at most 30 s.
    requestTimeout: 30_000,
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}: this listener serves POST /admission only` }));
  void app.register(opts.routes);
  return {
    async start() {
      await app.listen({ host: addr.host, port: addr.port });
      const a = app.server.address() as AddressInfo;
      const url = `${https ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
      if (!https && !isLoopback(addr.host)) app.log.warn({ url }, 'admission listener without TLS (web.tls): the API server calls webhooks over HTTPS only');
      app.log.info({ url }, 'admission webhook listening');
      return url;
    },
    async close() {
      await app.close();
    },
  };
}
