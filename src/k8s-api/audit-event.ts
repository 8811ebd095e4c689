/**
 * Kubernetes audit events (audit.k8s.io v1 and v1beta1) as minewatch events: a PluginEvent of
 * source `k8s_audit` whose payload is the audit Event JSON, exactly as the API server sent it, so
 * the ka.* and jevt.* fields read it as Falco's k8saudit and json plugins do.
 */
import type { PluginEvent } from '../events.js';
import { isObj, type Obj } from './workload.js';

/** evt.type of audit events (the audit kind); admission requests presented as audit events use ADMISSION_TYPE. */
export const AUDIT_TYPE = 'Event';
export const ADMISSION_TYPE = 'admission';

export class AuditDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditDecodeError';
  }
}

/** RFC 3339 with up to nanoseconds ("2018-10-25T13:58:49.730588Z") → ns since the epoch. */
export function parseTimestamp(s: unknown): bigint | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s.trim());
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

/** Does this object look like one audit Event (with or without kind/apiVersion, as files have them)? */
function looksLikeAuditEvent(o: Obj): boolean {
  if (o.kind !== undefined && o.kind !== 'Event') return false;
  if (o.apiVersion !== undefined && !(typeof o.apiVersion === 'string' && o.apiVersion.startsWith('audit.k8s.io/'))) return false;
  return typeof o.verb === 'string' || typeof o.auditID === 'string' || typeof o.requestURI === 'string' || typeof o.stage === 'string';
}

/** One audit Event as a k8s_audit event. Its time is when the API server reached the event's stage. */
export function auditEvent(payload: Obj, type: string = AUDIT_TYPE, now: () => bigint = nowNs): PluginEvent {
  const ts = parseTimestamp(payload.stageTimestamp) ?? parseTimestamp(payload.requestReceivedTimestamp) ?? parseTimestamp(payload.timestamp) ?? now();
  return { source: 'k8s_audit', type, ts, payload };
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * The audit Events in a decoded JSON body: an EventList's items or a single Event. Throws
 * AuditDecodeError saying what was expected when the body is neither.
 */
export function auditEventsOf(body: unknown): Obj[] {
  if (!isObj(body)) throw new AuditDecodeError('expected a JSON object: an audit.k8s.io EventList or Event');
  if (body.kind === 'EventList' || (body.kind === undefined && Array.isArray(body.items))) {
    if (body.apiVersion !== undefined && !(typeof body.apiVersion === 'string' && body.apiVersion.startsWith('audit.k8s.io/'))) {
      throw new AuditDecodeError(`unsupported apiVersion '${String(body.apiVersion)}': expected audit.k8s.io/v1 or audit.k8s.io/v1beta1`);
    }
    if (!Array.isArray(body.items)) throw new AuditDecodeError('EventList without an "items" array');
    body.items.forEach((it, i) => {
      if (!isObj(it) || !looksLikeAuditEvent(it)) throw new AuditDecodeError(`items[${i}] is not an audit Event`);
    });
    return body.items as Obj[];
  }
  if (!looksLikeAuditEvent(body)) {
    throw new AuditDecodeError(`not an audit Event or EventList (kind '${String(body.kind ?? '')}', apiVersion '${String(body.apiVersion ?? '')}'): expected audit.k8s.io/v1 or v1beta1`);
  }
  return [body];
}
