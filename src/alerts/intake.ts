/**
 * What an alert is made of on its way in, shared by both alert services (the SQLite pipeline,
 * src/alerts/pipeline.ts, and the PostgreSQL one, src/alerts/pg/service.ts): a local match or a
 * received Falco JSON alert turned into a redacted candidate, an agent's forwarded group into the
 * row it is stored as, and a group into the message the outputs are given.
 */
import type { SyscallEvent } from '../events.js';
import { toJsonText } from '../engine/json.js';
import { isoTime, toFalcoJson, type OutputValue } from '../engine/output.js';
import { parsePriority, type Match, type Priority } from '../engine/types.js';
import { encodeRedactedEvent, redactChanged, redactOutput } from './redact.js';
import type { NewGroup } from './store.js';
import type { Candidate } from './throttle.js';
import type { AlertMessage, AlertRecord, DeliveryKind, IncomingAlert } from './types.js';

export function str(v: OutputValue | undefined): string | null {
  return v === undefined || v === null || v === '' ? null : String(v);
}

const TEXT_PREFIX = /^\S+: (?:Emergency|Alert|Critical|Error|Warning|Notice|Informational|Debug) /;

/** A match from this process's engine, redacted: no environment beyond what the rule matched. */
export function candidateFromMatch(m: Match): Candidate {
  const ev = m.event as Partial<SyscallEvent>;
  const { output, fields: f } = redactOutput(m.output, m.outputFields);
  return {
    rule: m.rule,
    priority: m.priority,
    source: m.source,
    tags: m.tags,
    hostname: m.hostname,
    output,
    outputFields: f,
    time: m.time,
    namespace: ev.k8s?.ns_name ?? str(f['k8s.ns.name']),
    pod: ev.k8s?.pod_name ?? str(f['k8s.pod.name']),
    containerId: ev.container?.id ?? str(f['container.id']),
    containerName: ev.container?.name ?? str(f['container.name']),
    event: () => encodeRedactedEvent(m.event),
    origin: 'local',
    raw: m.event,
  };
}

/** A received alert, redacted and read: an agent's group (with `group`) or a plain candidate. */
export interface Incoming {
  a: IncomingAlert;
  priority: Priority;
  output: string;
  time: bigint;
  /** The sending agent's group data, when it names a uuid. */
  group?: AlertMessage['minewatch'];
  candidate: Candidate;
}

export function readIncoming(received: IncomingAlert, now: () => bigint): Incoming {
  // The sender's environment values are redacted as a local match's are (src/alerts/redact.ts).
  const redacted = redactOutput(received.output, received.output_fields ?? {});
  const changed = received.minewatch?.changed;
  const a: IncomingAlert = { ...received, output: redacted.output, output_fields: redacted.fields, ...(changed ? { minewatch: { ...received.minewatch, changed: redactChanged(changed) } } : {}) };
  const priority = parsePriority(a.priority) ?? 'WARNING';
  const f = a.output_fields ?? {};
  const time = parseIsoNs(a.time) ?? now();
  const output = a.output.replace(TEXT_PREFIX, '');
  const mw = a.minewatch;
  return {
    a, priority, output, time,
    ...(mw?.uuid ? { group: mw as AlertMessage['minewatch'] } : {}),
    candidate: {
      rule: a.rule, priority, source: a.source ?? 'syscall', tags: a.tags ?? [], hostname: a.hostname ?? '', output, outputFields: f, time,
      namespace: str(f['k8s.ns.name']), pod: str(f['k8s.pod.name']), containerId: str(f['container.id']), containerName: str(f['container.name']),
      event: () => null, origin: 'input',
    },
  };
}

/** An agent's forwarded group as it is stored (under `mw.uuid`), and the message queued for it. */
export function forwardedGroup(x: Incoming, mw: AlertMessage['minewatch']): { group: NewGroup; kind: DeliveryKind; payload: string } {
  const { a, priority, output, time } = x;
  const kind: DeliveryKind = mw.kind === 'summary' ? 'summary' : 'first';
  const f = a.output_fields ?? {};
  return {
    group: {
      uuid: mw.uuid, groupKey: `${a.rule}\u0000${a.hostname ?? ''}`, rule: a.rule, priority, source: a.source ?? 'syscall', tags: a.tags ?? [],
      hostname: a.hostname ?? '', output, outputFields: f, firstSeen: parseIsoNs(mw.first_seen) ?? time, lastSeen: parseIsoNs(mw.last_seen) ?? time,
      count: forwardedCount(mw), changed: mw.changed ?? {},
      namespace: str(f['k8s.ns.name']), pod: str(f['k8s.pod.name']), containerId: str(f['container.id']), containerName: str(f['container.name']),
      event: null, origin: 'input', windowEnd: null,
    },
    kind,
    payload: toJsonText({ ...a, minewatch: { ...mw, kind } }),
  };
}

/** The match count a forwarded group claims (at least 1). */
export function forwardedCount(mw: AlertMessage['minewatch']): number {
  return Math.max(1, Math.floor(Number(mw.count) || 1));
}

/** A lone group of one candidate (count 1), window closed. */
export function loneGroup(c: Candidate, uuid: string): NewGroup {
  return {
    uuid, groupKey: `${c.rule}\u0000${c.hostname}`, rule: c.rule, priority: c.priority, source: c.source, tags: c.tags, hostname: c.hostname,
    output: c.output, outputFields: c.outputFields, firstSeen: c.time, lastSeen: c.time, count: 1, changed: {}, namespace: c.namespace, pod: c.pod,
    containerId: c.containerId, containerName: c.containerName, origin: c.origin, windowEnd: null, event: c.event(),
  };
}

/** Falco's JSON alert for a group, with the group data beside it. */
export function alertMessage(rec: AlertRecord, kind: DeliveryKind): AlertMessage {
  const time = kind === 'first' ? rec.firstSeen : rec.lastSeen;
  const repeated = kind === 'summary' ? ` (${rec.count} times from ${isoTime(rec.firstSeen)} to ${isoTime(rec.lastSeen)})` : '';
  return {
    ...toFalcoJson({ ...rec, output: `${rec.output}${repeated}`, time }),
    minewatch: {
      uuid: rec.uuid,
      kind,
      count: rec.count,
      first_seen: isoTime(rec.firstSeen),
      last_seen: isoTime(rec.lastSeen),
      ...(Object.keys(rec.changed).length > 0 ? { changed: rec.changed } : {}),
    },
  };
}

/** "2026-11-25T20:16:35.123456789Z" (any fraction length, or an offset) → ns. */
export function parseIsoNs(s: string | undefined): bigint | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/.exec(s.trim());
  if (!m) return undefined;
  const ms = Date.parse(m[1] + (m[3] ? (m[3].length === 5 ? m[3].slice(0, 3) + ':' + m[3].slice(3) : m[3]) : 'Z'));
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}
