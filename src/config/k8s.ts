/**
 * The `k8s` config section: the audit webhook and log file (`audit`) and the admission webhook
 * (`admission`). Each part is its own schema and the section is built from a shape, so the
 * Kubernetes API parts (`api`, `enrich`) join by adding keys to K8S_SECTION_SHAPE.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { K8S_API_SHAPE } from '../k8s-api/api-config.js';

/** Falco's k8saudit plugin takes batches up to 12 MiB (its webhookMaxBatchSize); so do we. */
export const DEFAULT_MAX_BODY_BYTES = 12 * 1024 * 1024;

/**
 * An AdmissionReview carries one object (and its old version on updates); the API server itself
 * refuses request bodies over 3 MiB, so no honest review is larger than about twice that.
 */
export const DEFAULT_ADMISSION_MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Reviews one client address may have in flight at once before it is answered 429. */
export const DEFAULT_ADMISSION_MAX_IN_FLIGHT = 16;

export const k8sAuditSchema = z.strictObject({
  /** Serve POST /k8s-audit on the web server. */
  enabled: z.boolean().default(false),
  /**
   * Bearer token the API server's webhook kubeconfig sends. None: web.token. The route never runs
   * without one: its events drive cluster actions.
   */
  token: z.string().min(1).optional(),
  /** A file holding the token (a mounted Secret); read at start. */
  token_file: z.string().min(1).optional(),
  max_body_bytes: z.number().int().min(1024).default(DEFAULT_MAX_BODY_BYTES),
  /** Follow a kube-apiserver --audit-log-path file (JSON lines) too. */
  log_path: z.string().min(1).optional(),
}).refine((a) => !(a.token && a.token_file), { message: 'set token or token_file, not both' });

export const k8sAdmissionSchema = z.strictObject({
  /** Serve POST /admission on the web server. */
  enabled: z.boolean().default(false),
  /** dryrun: allow with a warning and an alert; enforce: deny with the rule's output as the reason. */
  mode: z.enum(['dryrun', 'enforce']).default('dryrun'),
  /**
   * Bearer token the API server sends (a `token` user for the webhook's host in the kubeconfig of
   * its --admission-control-config-file). None: web.token.
   */
  token: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
  /**
   * For clusters whose API server cannot be given credentials for webhooks (most managed ones):
   * take reviews with no token. Anyone who reaches the port can then read verdicts and plant
   * admission alerts; keep it behind a NetworkPolicy admitting only the API server (the chart's).
   */
  allow_unauthenticated: z.boolean().default(false),
  /** Its own HOST:PORT (the chart's NetworkPolicy opens it to the API server only); none: on the web server. */
  listen: z.string().min(1).optional(),
  /**
   * mTLS: a PEM CA; a client certificate it signed is accepted instead of the token (the API
   * server sends one when its admission kubeconfig gives client-certificate/client-key for the
   * webhook). Needs `listen` and web.tls: the listener asks for client certificates.
   */
  client_ca_file: z.string().min(1).optional(),
  /** With client_ca_file: the certificate's CN or a DNS name must be one of these (empty: any the CA signed). */
  client_names: z.array(z.string().min(1)).default([]),
  max_body_bytes: z.number().int().min(1024).default(DEFAULT_ADMISSION_MAX_BODY_BYTES),
  /** Reviews in flight per client address; past it, 429 (one global cap would turn away the API server's own). */
  max_in_flight_per_client: z.number().int().min(1).default(DEFAULT_ADMISSION_MAX_IN_FLIGHT),
})
  .refine((a) => !(a.token && a.token_file), { message: 'set token or token_file, not both' })
  .refine((a) => !(a.allow_unauthenticated && (a.token || a.token_file || a.client_ca_file)), { message: 'allow_unauthenticated with a token or client_ca_file: choose one (remove allow_unauthenticated to require the credential)' })
  .refine((a) => !a.client_ca_file || a.listen, { message: 'client_ca_file needs listen: client certificates are asked for on the admission webhook\'s own TLS listener' });

/** The section's keys: other Kubernetes parts add theirs here. */
export const K8S_SECTION_SHAPE = {
  // Absent: the schemas' own defaults (not spelt out again here, where they could drift).
  audit: k8sAuditSchema.prefault({}),
  admission: k8sAdmissionSchema.prefault({}),
  ...K8S_API_SHAPE,
};

export const k8sSection = z.strictObject(K8S_SECTION_SHAPE);

export type K8sConfig = z.infer<typeof k8sSection>;
export type K8sAuditConfig = z.infer<typeof k8sAuditSchema>;
export type K8sAdmissionConfig = z.infer<typeof k8sAdmissionSchema>;

/** The token a part is configured with, reading token_file; throws naming the file when it cannot. */
export function resolveToken(part: { token?: string; token_file?: string }, where: string): string | undefined {
  if (part.token) return part.token;
  if (!part.token_file) return undefined;
  let text: string;
  try {
    text = readFileSync(part.token_file, 'utf8');
  } catch (e) {
    throw new Error(`${where}.token_file: cannot read ${part.token_file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the path and its permissions`);
  }
  const token = text.trim();
  if (!token) throw new Error(`${where}.token_file: ${part.token_file} is empty; put the bearer token in it`);
  return token;
}
