/**
 * POST /admission: a ValidatingAdmissionWebhook (admission.k8s.io/v1). Each AdmissionReview's
 * object is presented to the k8s_audit rules tagged `admission` as the audit event its request
 * would make; in dryrun a match allows the request with a warning (and an alert), in enforce it
 * denies it with the rule's output as the reason. Falco sees a miner only after it was admitted;
 * this refuses it.
 *
 * What a flood of large reviews must not do is push the API server's own reviews past their
 * timeout (failurePolicy Ignore then admits unseen): the token, a Content-Length (411 without)
 * and a per-client cap are checked before any body is read, and bodies are limited to what an
 * AdmissionReview can be (413 from the Content-Length alone).
 */
import { Engine, resolveRulesPaths } from '../engine/index.js';
import type { Match } from '../engine/types.js';
import type { PluginEvent } from '../events.js';
import type { RoutePlugin } from '../web/types.js';
import { ADMISSION_TYPE, auditEvent } from '../k8s-api/audit-event.js';
import { DEFAULT_ADMISSION_MAX_BODY_BYTES, DEFAULT_ADMISSION_MAX_IN_FLIGHT } from '../config/k8s.js';
import { parseJsonBody, perClientCap, rawBodies, requireContentLength } from './http.js';
import { type WebhookCredential, credentialHook } from './webhook-auth.js';
import { type Obj, dig, isObj } from '../k8s-api/workload.js';

export type AdmissionMode = 'dryrun' | 'enforce';

export interface AdmissionOptions {
  /** Runs the admission-tagged rules (admissionEngine().process) on one event. */
  evaluate: (ev: PluginEvent) => Match[];
  mode: AdmissionMode;
  /** Every match, in both modes, with the decision taken: the alert. */
  onMatch?: (matches: Match[], decision: { allowed: boolean; mode: AdmissionMode; uid: string }) => void;
  /** What callers must show (webhook-auth.ts admissionCredential): a bearer token, or explicitly nothing. */
  credential: WebhookCredential;
  /** Default 3 MiB: the API server's own request limit, with room for an update's old object. */
  maxBodyBytes?: number;
  /** Reviews in flight per client address before 429 (default 16). */
  maxInFlightPerClient?: number;
  path?: string;
}

/** The webhook's engine: the rules tagged `admission` of these rules files (default: minewatch's). */
export function admissionEngine(rules?: string[]): Engine {
  return Engine.fromFiles(resolveRulesPaths(rules), { enabledTags: ['admission'], sources: ['k8s_audit'], ruleMatching: 'all' });
}

const VERB_OF_OPERATION: Readonly<Record<string, string>> = { CREATE: 'create', UPDATE: 'update', DELETE: 'delete', CONNECT: 'connect' };

export class AdmissionDecodeError extends Error {}

/** The request of an admission.k8s.io/v1 AdmissionReview; throws AdmissionDecodeError saying what is wrong. */
export function admissionRequestOf(body: unknown): Obj {
  if (!isObj(body)) throw new AdmissionDecodeError('expected a JSON object: an admission.k8s.io/v1 AdmissionReview');
  if (body.kind !== 'AdmissionReview') throw new AdmissionDecodeError(`expected kind AdmissionReview, got '${String(body.kind ?? '')}'`);
  if (body.apiVersion !== 'admission.k8s.io/v1') {
    throw new AdmissionDecodeError(`unsupported apiVersion '${String(body.apiVersion ?? '')}': configure the webhook with admissionReviewVersions: ["v1"]`);
  }
  const req = body.request;
  if (!isObj(req) || typeof req.uid !== 'string' || req.uid === '') throw new AdmissionDecodeError('AdmissionReview without request.uid');
  return req;
}

/**
 * The audit event an admission request would make: same user, verb, target and request object.
 * A patch arrives as UPDATE with PatchOptions and is a patch here, as in the audit log.
 */
export function admissionAuditEvent(req: Obj, now?: () => bigint): PluginEvent {
  const op = typeof req.operation === 'string' ? req.operation : '';
  const verb = op === 'UPDATE' && dig(req, 'options', 'kind') === 'PatchOptions' ? 'patch' : VERB_OF_OPERATION[op] ?? op.toLowerCase();
  const res = isObj(req.resource) ? req.resource : {};
  const group = typeof res.group === 'string' ? res.group : '';
  const version = typeof res.version === 'string' ? res.version : '';
  const resource = typeof res.resource === 'string' ? res.resource : undefined;
  const ns = typeof req.namespace === 'string' && req.namespace !== '' ? req.namespace : undefined;
  const name = typeof req.name === 'string' && req.name !== '' ? req.name : undefined;
  const sub = typeof req.subResource === 'string' && req.subResource !== '' ? req.subResource : undefined;
  const uri = [group ? `/apis/${group}/${version}` : `/api/${version}`, ns && `namespaces/${ns}`, resource, name, sub].filter(Boolean).join('/');
  const user = isObj(req.userInfo) ? req.userInfo : {};
  const payload: Obj = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Request',
    auditID: req.uid,
    stage: 'RequestReceived',
    requestURI: uri,
    verb,
    user,
    objectRef: { resource, namespace: ns, name, apiGroup: group || undefined, apiVersion: version, subresource: sub },
    requestObject: verb === 'delete' ? req.oldObject : req.object,
    annotations: { 'minewatch.io/admission': 'true', ...(req.dryRun === true ? { 'minewatch.io/dry-run-request': 'true' } : {}) },
  };
  // Drop the keys that are undefined, so `exists` sees what an audit event would have.
  const ref = payload.objectRef as Obj;
  for (const k of Object.keys(ref)) if (ref[k] === undefined) delete ref[k];
  return auditEvent(payload, ADMISSION_TYPE, now);
}

/** Kubernetes shows warnings as single lines and truncates long ones; keep them short and plain. */
const warningText = (m: Match): string => `minewatch: ${m.rule}: ${m.output}`.replace(/\s+/g, ' ').slice(0, 256);

export function admissionRoutes(opts: AdmissionOptions): RoutePlugin {
  const maxBytes = opts.maxBodyBytes ?? DEFAULT_ADMISSION_MAX_BODY_BYTES;
  return async (app) => {
    rawBodies(app, maxBytes, 'AdmissionReview');
    // Both before the body is read: a caller without the token, or with too many reviews in
    // flight, costs a header parse. The token first, so strangers get 401 whatever their count.
    app.addHook('onRequest', credentialHook(opts.credential));
    // A chunked body could only be measured by reading it: refused, as the API server never sends one.
    app.addHook('onRequest', requireContentLength('an AdmissionReview'));
    app.addHook('onRequest', perClientCap(opts.maxInFlightPerClient ?? DEFAULT_ADMISSION_MAX_IN_FLIGHT, 'admission reviews'));
    app.post(opts.path ?? '/admission', { config: { auth: 'own' }, bodyLimit: maxBytes }, async (req, reply) => {
      const parsed = parseJsonBody(req.body, reply, 'an admission.k8s.io/v1 AdmissionReview');
      if (!parsed) return reply;
      let request: Obj;
      try {
        request = admissionRequestOf(parsed.value);
      } catch (e) {
        if (e instanceof AdmissionDecodeError) return reply.code(400).send({ error: e.message });
        throw e;
      }
      const uid = request.uid as string;
      let matches: Match[] = [];
      try {
        matches = opts.evaluate(admissionAuditEvent(request));
      } catch {
        // A rule that throws on a strange object must not block the cluster: allow, as
        // failurePolicy Ignore would.
        matches = [];
      }
      const response: Obj = { uid, allowed: true };
      if (matches.length > 0) {
        if (opts.mode === 'enforce') {
          response.allowed = false;
          response.status = {
            code: 403,
            reason: 'Forbidden',
            message: `denied by minewatch: ${matches.map((m) => `${m.rule}: ${m.output}`).join('; ')}`,
          };
        } else {
          response.warnings = matches.map(warningText);
        }
        opts.onMatch?.(matches, { allowed: response.allowed as boolean, mode: opts.mode, uid });
      }
      return reply.code(200).send({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
    });
  };
}
