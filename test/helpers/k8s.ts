/** The k8s fixtures (test/fixtures/k8s, written by its generate.py) and small HTTP helpers for the webhook tests. */
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { type AdmissionOptions, admissionEngine, admissionRoutes } from '../../src/k8s/admission.js';
import type { RoutePlugin } from '../../src/web/types.js';
import { FIXTURES } from './paths.js';

export const K8S_FIXTURES = `${FIXTURES}k8s/`;

export interface K8sCase {
  name: string;
  kind: string;
  user: string;
  /** The rules the case must fire, every one (rule_matching all); none for ordinary workloads. */
  rules: string[];
  audit: string;
  admission?: string;
}

export const K8S_CASES: K8sCase[] = JSON.parse(readFileSync(`${K8S_FIXTURES}cases.json`, 'utf8'));

export const fixtureText = (rel: string): string => readFileSync(K8S_FIXTURES + rel, 'utf8');

/** The token the webhook tests give the routes (they never run open), and the header that sends it. */
export const HOOK_TOKEN = 'k8s-webhook-test-token';
export const HOOK_AUTH = { authorization: `Bearer ${HOOK_TOKEN}` };
export const OPEN_ADMISSION = { token: undefined, key: 'k8s.admission.allow_unauthenticated' } as const;

/** A fastify server on 127.0.0.1, an ephemeral port, with these routes. */
export async function serve(...plugins: RoutePlugin[]): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  for (const p of plugins) await app.register(p);
  const addr = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: addr };
}

/** POST /admission on `serve`: enforce mode, the default rules, HOOK_TOKEN required; `options` override. */
export function serveAdmission(options: Partial<AdmissionOptions> = {}): Promise<{ app: FastifyInstance; url: string }> {
  const engine = admissionEngine();
  return serve(admissionRoutes({ mode: 'enforce', evaluate: (ev) => engine.process(ev), credential: { token: HOOK_TOKEN, key: 'k8s.admission.token' }, ...options }));
}

export async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const r = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json };
}
