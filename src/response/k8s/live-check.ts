/**
 * Before a cluster action: does the object as it is now still match what the rule matched? An audit
 * event is a claim about an object (anyone holding the webhook's token could post one, and an old
 * event may be replayed from a log), so a Deployment it says runs xmrig is scaled to 0 only if the
 * live Deployment does. The check rebuilds the event with the live object in place of the one the
 * event carried and runs the rule's condition on it again (images, command lines, the mw.k8s.*
 * checks: whatever the rule looks at). Without the rule at hand (an action built with no engine), it
 * compares what the rules look at most: the images and the command lines.
 *
 * For a create, the live object must also have been created when the request was served (not an
 * older or newer object of the same name). For a match on a process (a syscall event), the pod
 * the agent found for it must still run the container the process ran in.
 */
import type { Event, PluginEvent } from '../../events.js';
import { parseTimestamp } from '../../k8s-api/audit-event.js';
import { allContainers, commandOf, isObj, podSpecOf } from '../../k8s-api/workload.js';
import type { ActionRequest } from '../types.js';

/** Runs the named rule's condition on an event: true or false, undefined when no such rule is loaded. */
export type Recheck = (rule: string, ev: Event) => boolean | undefined;

type Json = Record<string, unknown>;

/** The API client's objects (classes, Date timestamps) as the JSON the API server sent. */
const plain = (o: unknown): Json => JSON.parse(JSON.stringify(o ?? {})) as Json;

/**
 * The audit event as it would read if the request had made the object as it is now: same user,
 * verb and target, with the live object as both request and response object.
 */
function liveAuditEvent(ev: PluginEvent, live: unknown): PluginEvent {
  const object = plain(live);
  const payload = { ...(isObj(ev.payload) ? ev.payload : {}), requestObject: object, responseObject: object };
  return { ...ev, payload };
}

interface Shape {
  images: string[];
  commands: string[];
}

function shapeOf(o: unknown, kind: string): Shape {
  const cs = allContainers(podSpecOf(o, kind));
  return {
    images: cs.map((c) => (typeof c.image === 'string' ? c.image : '')).filter(Boolean),
    commands: cs.map((c) => commandOf(c).join(' ')).filter(Boolean),
  };
}

const describe = (s: Shape): string => `images ${s.images.join(', ') || 'none'}${s.commands.length ? `; commands ${s.commands.map((c) => c.slice(0, 120)).join(' | ')}` : ''}`;

/** The object an audit event carried: the response object when whole (patches), else the request's. */
function claimedObject(p: Json): unknown {
  const resp = p.responseObject;
  if (isObj(resp) && typeof resp.kind === 'string' && resp.kind !== 'Status') return resp;
  return p.requestObject;
}

function sameList(a: string[], b: string[]): boolean {
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

/** Why the live pod is not the one the process ran in, if it is not. */
function containerGone(req: ActionRequest, live: unknown, what: string): string | undefined {
  const c = req.target.container;
  const id = c?.full_id ?? c?.id;
  if (!id || id === 'host') return undefined;
  const status = isObj(live) && isObj(live.status) ? live.status : {};
  const ids = ['containerStatuses', 'initContainerStatuses', 'ephemeralContainerStatuses']
    .flatMap((k) => (Array.isArray(status[k]) ? (status[k] as unknown[]) : []))
    .map((s) => (isObj(s) && typeof s.containerID === 'string' ? s.containerID.replace(/^[a-z0-9-]+:\/\//, '') : ''))
    .filter(Boolean);
  // A pod whose statuses are not reported yet cannot be told apart: the uid check already held.
  if (ids.length === 0) return undefined;
  if (ids.some((x) => x.startsWith(id) || id.startsWith(x))) return undefined;
  return `live object no longer matches: ${what} no longer runs container ${id.slice(0, 12)} (the process's); it runs ${ids.map((x) => x.slice(0, 12)).join(', ')}`;
}

/** How far apart the API server's clocks may put a create request and the object it made (HA control planes). */
const CREATE_SLACK_NS = 120n * 1_000_000_000n;

/**
 * For a create: the live object must be the one that request made, created while the request was
 * being served. A rule that looks only at who sent a request (a DaemonSet by an unexpected user)
 * would match any object an event claims was created; the creation time is not in the claim's power.
 */
function notCreatedByRequest(p: Json, live: unknown, what: string): string | undefined {
  if (p.verb !== 'create') return undefined;
  const received = parseTimestamp(p.requestReceivedTimestamp);
  const meta = isObj(live) && isObj(live.metadata) ? live.metadata : {};
  const createdText = meta.creationTimestamp instanceof Date ? meta.creationTimestamp.toISOString() : meta.creationTimestamp;
  const created = parseTimestamp(createdText);
  if (received === undefined || created === undefined) return undefined;
  const stage = parseTimestamp(p.stageTimestamp) ?? received;
  const latest = stage > received ? stage : received;
  if (created >= received - CREATE_SLACK_NS && created <= latest + CREATE_SLACK_NS) return undefined;
  return `live object no longer matches: ${what} was created at ${String(createdText)}, not by the create request of ${String(p.requestReceivedTimestamp)} the audit event records, so nothing is done`;
}

/**
 * Why the action must not go ahead on `live` (the object just read from the API), or undefined
 * when the live object still matches. `kind` is the live object's kind (Pod, Deployment, …).
 */
export function liveMismatch(req: ActionRequest, live: unknown, kind: string, recheck: Recheck | undefined): string | undefined {
  const ev = req.event as Event | undefined;
  const meta = isObj(live) && isObj(live.metadata) ? live.metadata : {};
  const what = `${kind} ${String(meta.namespace ?? req.target.object?.namespace ?? '')}/${String(meta.name ?? req.target.object?.name ?? '')}`;
  if (ev?.source !== 'k8s_audit') return containerGone(req, live, what);
  const rule = req.match?.rule ?? req.trigger;
  const payload = isObj((ev as PluginEvent).payload) ? ((ev as PluginEvent).payload as Json) : {};
  if (recheck) {
    const still = recheck(rule, liveAuditEvent(ev as PluginEvent, live));
    if (still === true) return notCreatedByRequest(payload, live, what);
    if (still === undefined) return `rule '${rule}' is no longer loaded: the live ${what} cannot be checked against it, so nothing is done`;
    return `live object no longer matches: rule '${rule}' does not match ${what} as it is now (${describe(shapeOf(live, kind))}); the audit event's copy is not what runs, so nothing is done`;
  }
  const now = shapeOf(live, kind);
  const claimed = shapeOf(claimedObject(payload), kind);
  if (claimed.images.length && !sameList(claimed.images, now.images)) {
    return `live object no longer matches: ${what} runs ${describe(now)}, not the ${claimed.images.join(', ')} of the audit event, so nothing is done`;
  }
  if (claimed.commands.length && !sameList(claimed.commands, now.commands)) {
    return `live object no longer matches: ${what} runs ${describe(now)}, not the commands of the audit event, so nothing is done`;
  }
  return notCreatedByRequest(payload, live, what);
}
