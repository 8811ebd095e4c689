/**
 * The alert inputs: `POST /` and `POST /falco` take Falco's JSON alerts (one object or an array),
 * as falcosidekick's `POST /` does, so a Falco's http_output — or another minewatch agent — can
 * feed this store and dashboard. Every alert of a request is checked before any is stored: a bad
 * request stores nothing and says which alert and which key is wrong.
 */
import type { FalcoJsonAlert, OutputValue } from '../engine/output.js';
import { parsePriority } from '../engine/types.js';
import type { AlertService, IncomingAlert } from '../alerts/types.js';
import { senderOf } from './auth.js';
import type { RoutePlugin } from './types.js';

export class AlertShapeError extends Error {
  override name = 'AlertShapeError';
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Falco's list fields are JSON arrays (of scalars); other shapes are kept as their JSON text. */
function outputValue(v: unknown): OutputValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (Array.isArray(v)) {
    return v.length ? v.map((x) => (typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x)) ? x : JSON.stringify(x))) : null;
  }
  return JSON.stringify(v);
}

function str(o: Obj, key: string, at: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string') throw new AlertShapeError(`${at}.${key}: ${v === undefined ? 'missing' : `expected a string, got ${typeName(v)}`}`);
  return v;
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

function isoTime(o: Obj, key: string, at: string, required: boolean): string | undefined {
  const t = str(o, key, at, required);
  if (t !== undefined && Number.isNaN(Date.parse(t))) throw new AlertShapeError(`${at}.${key}: '${t.slice(0, 40)}' is not an ISO 8601 time (e.g. 2026-11-25T20:16:35.123456789Z)`);
  return t;
}

/** One Falco JSON alert, checked; `at` names it in errors (e.g. `body[3]`). */
export function parseFalcoAlert(v: unknown, at = 'body'): IncomingAlert {
  if (typeof v === 'string') throw new AlertShapeError(`${at}: a text alert; minewatch takes Falco's JSON alerts: set json_output: true in falco.yaml`);
  if (!isObj(v)) throw new AlertShapeError(`${at}: expected a Falco JSON alert (an object with rule, priority, output, time, output_fields), got ${typeName(v)}`);
  const rule = str(v, 'rule', at, true)!;
  if (!rule.trim()) throw new AlertShapeError(`${at}.rule: empty`);
  const prio = str(v, 'priority', at, true)!;
  if (!parsePriority(prio)) throw new AlertShapeError(`${at}.priority: '${prio.slice(0, 40)}' is not a priority (Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug)`);
  const time = isoTime(v, 'time', at, true)!;
  // Falco's json_include_*_property settings may leave these out.
  const output = str(v, 'output', at, false) ?? '';
  const hostname = str(v, 'hostname', at, false) ?? '';
  const source = str(v, 'source', at, false) ?? 'syscall';
  let tags: string[] = [];
  if (v.tags !== undefined && v.tags !== null) {
    if (!Array.isArray(v.tags) || v.tags.some((t) => typeof t !== 'string')) throw new AlertShapeError(`${at}.tags: expected an array of strings`);
    tags = v.tags as string[];
  }
  const output_fields: Record<string, OutputValue> = {};
  if (v.output_fields !== undefined && v.output_fields !== null) {
    if (!isObj(v.output_fields)) throw new AlertShapeError(`${at}.output_fields: expected an object of field → value, got ${typeName(v.output_fields)}`);
    for (const [k, x] of Object.entries(v.output_fields)) output_fields[k] = outputValue(x);
  }
  const alert: FalcoJsonAlert = { hostname, output, output_fields, priority: prio, rule, source, tags, time };
  if (v.minewatch === undefined) return alert;
  return { ...alert, minewatch: parseGroupData(v.minewatch, `${at}.minewatch`) };
}

/** The group data another minewatch agent adds beside Falco's keys. */
function parseGroupData(v: unknown, at: string): NonNullable<IncomingAlert['minewatch']> {
  if (typeof v === 'string') throw new AlertShapeError(`${at}: a text alert; minewatch takes Falco's JSON alerts: set json_output: true in falco.yaml`);
  if (!isObj(v)) throw new AlertShapeError(`${at}: expected an object, got ${typeName(v)}`);
  const out: NonNullable<IncomingAlert['minewatch']> = {};
  const uuid = str(v, 'uuid', at, false);
  if (uuid !== undefined) {
    if (!/^[0-9A-Za-z._:-]{1,128}$/.test(uuid)) throw new AlertShapeError(`${at}.uuid: expected up to 128 letters, digits or ._:-`);
    out.uuid = uuid;
  }
  const kind = str(v, 'kind', at, false);
  if (kind !== undefined) {
    if (kind !== 'first' && kind !== 'summary') throw new AlertShapeError(`${at}.kind: expected 'first' or 'summary'`);
    out.kind = kind;
  }
  if (v.count !== undefined) {
    if (typeof v.count !== 'number' || !Number.isSafeInteger(v.count) || v.count < 1) throw new AlertShapeError(`${at}.count: expected a whole number ≥ 1`);
    out.count = v.count;
  }
  const first = isoTime(v, 'first_seen', at, false);
  if (first !== undefined) out.first_seen = first;
  const last = isoTime(v, 'last_seen', at, false);
  if (last !== undefined) out.last_seen = last;
  if (v.changed !== undefined) {
    if (!isObj(v.changed)) throw new AlertShapeError(`${at}.changed: expected an object of field → values`);
    const changed: Record<string, OutputValue[]> = {};
    for (const [k, xs] of Object.entries(v.changed)) {
      if (!Array.isArray(xs)) throw new AlertShapeError(`${at}.changed.${k}: expected an array of values`);
      changed[k] = xs.map(outputValue);
    }
    out.changed = changed;
  }
  return out;
}

/** A request body: one alert or a non-empty array of them. */
export function parseFalcoAlerts(body: unknown): IncomingAlert[] {
  if (Array.isArray(body)) {
    if (body.length === 0) throw new AlertShapeError('body: an empty array; send one Falco JSON alert or an array of them');
    return body.map((a, i) => parseFalcoAlert(a, `body[${i}]`));
  }
  return [parseFalcoAlert(body)];
}

/**
 * POST / and POST /falco → AlertService.ingest. Auth `input`: the sender's identity decides the
 * hostname its alerts are stored under (an agent cannot post under another host's name); the
 * operator's alerts keep their own.
 */
export function inputRoutes(alerts: AlertService): RoutePlugin {
  return async (app) => {
    const handler = async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
      let batch: IncomingAlert[];
      try {
        batch = parseFalcoAlerts(req.body);
      } catch (e) {
        if (e instanceof AlertShapeError) return reply.code(400).send({ error: e.message });
        throw e;
      }
      const host = senderOf(req)?.hostname;
      if (host !== undefined) {
        const claimed = batch.filter((a) => a.hostname !== '' && a.hostname !== host).length;
        if (claimed) req.log.warn({ sender: host, alerts: claimed }, 'alerts claimed another hostname; stored under the sender\'s own');
        batch = batch.map((a) => ({ ...a, hostname: host }));
      }
      // null: counted into a group whose window is open (a repeat), so no new row.
      const stored = batch.map((a) => alerts.ingest(a));
      // Acknowledged means stored: the sender may forget these alerts once it has our 200.
      try {
        await alerts.commit();
      } catch (e) {
        req.log.error({ err: String(e) }, 'cannot store received alerts; the sender is told to retry');
        return reply.code(503).header('retry-after', '5').send({ error: 'the alert store is unavailable; nothing was stored, retry later' });
      }
      const ids = stored.map((r) => r?.id ?? null);
      return reply.code(200).send({ accepted: ids.length, ids });
    };
    app.post('/', { config: { auth: 'input' } }, handler);
    app.post('/falco', { config: { auth: 'input' } }, handler);
  };
}
