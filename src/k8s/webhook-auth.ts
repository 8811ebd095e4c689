/**
 * Who may post to POST /k8s-audit and POST /admission. Each route takes its own token
 * (k8s.audit.token, k8s.admission.token), else the server's (web.token). The audit route never runs
 * without one: its events drive cluster actions (quarantine_workload scales what they name to 0).
 * The admission route may, but only when `k8s.admission.allow_unauthenticated` says so, for the
 * clusters whose API server cannot be given webhook credentials; the startup log, the chart's NOTES
 * and `minewatch doctor` (through admissionAuthStatus) then say so.
 *
 * The token `minewatch` generates into its state folder when web.token is unset is not used here:
 * the API server must be given the token in its own webhook kubeconfig, so it is chosen and set on
 * both sides on purpose, and the dashboard's token is not handed to the API server by accident.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BearerToken } from '../platform/bearer-token.js';
import { credentialOf } from '../web/auth.js';
import { readSecretFile } from '../config/web.js';
import { type K8sAdmissionConfig, type K8sAuditConfig, resolveToken } from '../config/k8s.js';

/** Client certificates a route accepts: signed by the listener's client CA, with one of these names (empty: any). */
export interface ClientCertRule {
  names: string[];
}

/**
 * What a webhook route checks: a bearer token (and the config key it comes from), a client
 * certificate, either, or (explicitly) nothing.
 */
export type WebhookCredential =
  | { token: string; key: string; clientCerts?: ClientCertRule }
  | { token: undefined; key: string; clientCerts: ClientCertRule }
  | { token: undefined; key: 'k8s.admission.allow_unauthenticated'; clientCerts?: undefined };

/** A webhook route that would run open; the message names the keys to set. */
export class WebhookAuthError extends Error {
  override name = 'WebhookAuthError';
}

/** The part of the `web` section the webhooks fall back on. */
export interface WebTokenConfig {
  token?: string;
  token_file?: string;
}

/** web.token, or the content of web.token_file; undefined when neither is set. */
export function configuredWebToken(web: WebTokenConfig | undefined): string | undefined {
  if (web?.token) return web.token;
  return web?.token_file ? readSecretFile(web.token_file, 'token_file') : undefined;
}

/** The token /k8s-audit checks; throws WebhookAuthError when there is none. */
export function auditCredential(audit: Pick<K8sAuditConfig, 'token' | 'token_file'>, webToken: string | undefined): { token: string; key: string } {
  const own = resolveToken(audit, 'k8s.audit');
  if (own) return { token: own, key: 'k8s.audit.token' };
  if (webToken) return { token: webToken, key: 'web.token' };
  throw new WebhookAuthError(
    'k8s.audit.enabled: the audit webhook needs a token, since its events can drive cluster actions: set k8s.audit.token_file (or k8s.audit.token, or web.token) and give the same token to the API server in its --audit-webhook-config-file kubeconfig (deploy/k8s-audit-webhook.yaml)',
  );
}

type AdmissionKeys = Pick<K8sAdmissionConfig, 'token' | 'token_file' | 'allow_unauthenticated' | 'client_ca_file'>;

/**
 * What /admission takes, from which keys are set (no file is read): one table for the route
 * (admissionCredential) and for what doctor and the log say (admissionAuthStatus).
 * With client certificates and no token of its own, the certificate alone: web.token is the
 * dashboard's, and an API server that sends a certificate has no need of it.
 */
function admissionAuthBy(a: Partial<AdmissionKeys>, webTokenSet: boolean): 'nothing' | 'cert' | 'cert or own token' | 'own token' | 'web token' | 'refused' {
  if (a.allow_unauthenticated) return 'nothing';
  const own = Boolean(a.token || a.token_file);
  if (a.client_ca_file) return own ? 'cert or own token' : 'cert';
  if (own) return 'own token';
  return webTokenSet ? 'web token' : 'refused';
}

/** What /admission checks; throws WebhookAuthError when nothing is set and running open was not chosen. */
export function admissionCredential(admission: AdmissionKeys & Pick<K8sAdmissionConfig, 'client_names'>, webToken: string | undefined): WebhookCredential {
  const by = admissionAuthBy(admission, Boolean(webToken));
  const clientCerts = { names: admission.client_names ?? [] };
  // resolveToken returns the token whenever a token key is set (or throws naming the file).
  const own = (): string => resolveToken(admission, 'k8s.admission')!;
  if (by === 'nothing') return { token: undefined, key: 'k8s.admission.allow_unauthenticated' };
  if (by === 'cert') return { token: undefined, key: 'k8s.admission.client_ca_file', clientCerts };
  if (by === 'cert or own token') return { token: own(), key: 'k8s.admission.token', clientCerts };
  if (by === 'own token') return { token: own(), key: 'k8s.admission.token' };
  if (by === 'web token') return { token: webToken!, key: 'web.token' };
  throw new WebhookAuthError(
    'k8s.admission.enabled: the admission webhook needs a token: set k8s.admission.token_file (or web.token) and give it to the API server in the kubeconfig of its --admission-control-config-file; where the API server cannot send one, set k8s.admission.allow_unauthenticated: true and admit only the API server to the port (the chart\'s NetworkPolicy)',
  );
}

export interface AdmissionAuthStatus {
  /** false: no admission webhook configured. */
  enabled: boolean;
  /** Whether /admission takes reviews from anyone who reaches it. */
  unauthenticated: boolean;
  /** One line for a person: what authenticates the webhook, or the risk and what to do. */
  message: string;
  /** Set when the server refuses to start this way (no credential and no allow_unauthenticated). */
  refused?: true;
}

/**
 * For `minewatch doctor` and the startup log: whether the admission webhook runs unauthenticated.
 * Reads only the config's keys (no file is opened), so it never throws.
 */
export function admissionAuthStatus(config: { k8s?: { admission?: Partial<K8sAdmissionConfig> }; web?: WebTokenConfig }): AdmissionAuthStatus {
  const a = config.k8s?.admission;
  if (!a?.enabled) return { enabled: false, unauthenticated: false, message: 'admission webhook off (k8s.admission.enabled: false)' };
  const on = { enabled: true, unauthenticated: false };
  switch (admissionAuthBy(a, Boolean(config.web?.token || config.web?.token_file))) {
    case 'nothing':
      return {
        enabled: true,
        unauthenticated: true,
        message: 'the admission webhook takes reviews with no credential (k8s.admission.allow_unauthenticated): anyone who reaches its port can read verdicts and plant admission alerts; admit only the API server to it (a NetworkPolicy) or give the API server a token (k8s.admission.token_file and its --admission-control-config-file kubeconfig)',
      };
    case 'cert': return { ...on, message: `the admission webhook requires a client certificate signed by ${a.client_ca_file}` };
    case 'cert or own token': return { ...on, message: `the admission webhook requires a client certificate signed by ${a.client_ca_file} or its bearer token (k8s.admission.token)` };
    case 'own token': return { ...on, message: 'the admission webhook requires its own bearer token (k8s.admission.token)' };
    case 'web token': return { ...on, message: 'the admission webhook requires the server\'s bearer token (web.token): the API server must send it' };
    case 'refused': return { ...on, refused: true, message: 'the admission webhook has no token and will not start: set k8s.admission.token_file, or allow_unauthenticated behind a NetworkPolicy' };
  }
}

/**
 * The onRequest check of a webhook route: runs before the body is read, so a caller without the
 * token costs a header parse, never a 10 MB upload parsed. The connection is closed with the 401
 * so the rest of a large body is not read either.
 */
export function credentialHook(credential: WebhookCredential) {
  const want = credential.token === undefined ? undefined : new BearerToken(credential.token);
  const certs = credential.clientCerts;
  const open = !want && !certs;
  const message = want
    ? `missing or wrong bearer token: send the token configured in ${credential.key} as 'Authorization: Bearer <token>'${certs ? ', or a client certificate signed by k8s.admission.client_ca_file' : ''}`
    : `no accepted client certificate: present one signed by k8s.admission.client_ca_file${certs?.names.length ? ` naming one of ${certs.names.join(', ')}` : ''}`;
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (open || (certs && clientCertAccepted(req, certs)) || want?.matches(credentialOf(req))) return;
    await reply.code(401).header('www-authenticate', 'Bearer realm="minewatch"').header('connection', 'close').send({ error: message });
  };
}

/**
 * Whether the connection presented a client certificate the listener's client CA verified
 * (`requestCert`, checked by TLS itself), with an accepted CN or DNS name.
 */
function clientCertAccepted(req: FastifyRequest, rule: ClientCertRule): boolean {
  const sock = req.raw.socket as Partial<TLSSocket>;
  if (!sock.encrypted || sock.authorized !== true || typeof sock.getPeerCertificate !== 'function') return false;
  if (rule.names.length === 0) return true;
  const cert = sock.getPeerCertificate();
  const cn = cert.subject?.CN;
  const dns = (cert.subjectaltname ?? '').split(/,\s*/).filter((x) => x.startsWith('DNS:')).map((x) => x.slice(4));
  return [...(typeof cn === 'string' ? [cn] : []), ...dns].some((n) => rule.names.includes(n));
}
