/**
 * The k8s_audit source's field catalog: the fields of Falco's k8saudit plugin (ka.*), of its json
 * plugin (json.*, and the jevt.* names kept for older rules), the evt.* fields every plugin source
 * has, and our own mw.k8s.* fields for what mining rules need that the plugin lacks (resources in
 * millicores and bytes, miner images and command lines in every workload kind).
 *
 * Falco's semantics, kept here:
 * - Every ka.* field is text. A JSON value that is not a string is its compact JSON text
 *   (true → "true", 201 → "201", an object → {"…"}); a value that is absent is <NA>.
 * - List fields give one value per item. Per-container fields leave out containers where the value
 *   is absent (ka.req.pod.containers.privileged has no entry for a container that does not say).
 *   A list field whose list itself is absent is <NA>, so `exists` is false and `in` fails.
 * - An index argument (ka.req.pod.containers.image[0]) keeps that one item; past the end it is <NA>.
 */
import type { Event, PluginEvent } from '../events.js';
import { ADMISSION_TYPE } from '../k8s-api/audit-event.js';
import {
  type ContainerResources, type ImageRef, type Obj, allContainers, commandOf, dig, isObj, kindOfResource, mainContainers,
  parseImage, podSpecOf, resourcesOf,
} from '../k8s-api/workload.js';
import { type EventMemo, perEventOf } from './memo.js';
import { hasMinerFlags } from '../knowledge/miner-flags.js';
import { parseStratumUrl } from '../knowledge/stratum-url.js';
import { clock, dateOf, day, iso8601, localHostname, nsPart } from './syscall.js';
import type { Extracted, FieldDef, FieldType, FieldValue } from './types.js';
import { findWallets } from '../knowledge/wallets.js';

type Get = (p: Obj, ev: PluginEvent) => Extracted;

/** The audit Event of an event, or undefined when the payload is not an object. */
function payloadOf(ev: Event): Obj | undefined {
  const p = (ev as PluginEvent).payload;
  return isObj(p) ? p : undefined;
}

/** Wrap so that a malformed event is <NA>, never an exception in the engine. */
function safe(get: Get): (ev: Event) => Extracted {
  return (ev) => {
    const p = payloadOf(ev);
    if (!p) return undefined;
    try {
      return get(p, ev as PluginEvent);
    } catch {
      return undefined;
    }
  };
}

interface Opts {
  isList?: boolean;
  arg?: 'index' | 'key';
  argOptional?: boolean;
}

function field(name: string, type: FieldType, desc: string, make: (arg: string | undefined, memo?: EventMemo) => Get, opts: Opts = {}): FieldDef {
  return {
    name, type, desc, arg: opts.arg ?? 'none', argOptional: opts.argOptional, isList: opts.isList,
    bind: (arg, memo) => safe(make(arg, memo)),
  };
}

/** A field without an argument. */
const plain = (name: string, type: FieldType, desc: string, get: Get, isList = false): FieldDef =>
  field(name, type, desc, () => get, { isList });

/** A list field that takes an optional [N] to keep one item. */
const indexed = (name: string, desc: string, make: (index: number | undefined, memo?: EventMemo) => Get, type: FieldType = 'charbuf'): FieldDef =>
  field(name, type, desc, (arg, memo) => make(arg === undefined ? undefined : Number(arg), memo), { isList: true, arg: 'index', argOptional: true });

/** A JSON value as the plugins render it: strings as they are, anything else as compact JSON. */
export function jsonText(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A text field read at a path of the audit Event. */
const at = (...keys: string[]): Get => (p) => jsonText(dig(p, ...keys));

/** A list field read at a path: <NA> unless the value there is an array. */
const listAt = (...keys: string[]): Get => (p) => {
  const v = dig(p, ...keys);
  return Array.isArray(v) ? v.map((x) => jsonText(x) ?? 'null') : undefined;
};

/** Items of an array at a path, or only item [index]; undefined when absent or out of range. */
function itemsAt(p: Obj, index: number | undefined, ...keys: string[]): unknown[] | undefined {
  const arr = dig(p, ...keys);
  if (!Array.isArray(arr)) return undefined;
  const items: unknown[] = arr;
  if (index === undefined) return items;
  return index < items.length ? [items[index]] : undefined;
}

/** One value (or several) per item, items where `pick` finds nothing left out. */
function collect(items: unknown[], pick: (item: unknown) => unknown): string[] {
  const out: string[] = [];
  for (const it of items) {
    const v = pick(it);
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const x of v) out.push(jsonText(x) ?? 'null');
    else out.push(jsonText(v)!);
  }
  return out;
}

// ---- ka.req.pod.<group>.* ------------------------------------------------------------------------

const GROUPS = [
  ['containers', "the containers'"],
  ['initContainers', "the init containers'"],
  ['ephemeralContainers', "the ephemeral containers'"],
] as const;

/** Falco's repository of an image: everything before the first ':' and then before '@'. */
const falcoRepository = (image: string): string => image.split(':')[0]!.split('@')[0]!;

function effective(p: Obj, c: unknown, key: string): unknown {
  return dig(c, 'securityContext', key) ?? dig(p, 'requestObject', 'spec', 'securityContext', key) ?? 0;
}

function containerFields(group: string, whose: string): FieldDef[] {
  const per = (suffix: string, desc: string, pick: (c: unknown, p: Obj) => unknown): FieldDef =>
    indexed(`ka.req.pod.${group}.${suffix}`, `When the request object refers to a pod, ${whose} ${desc}.`, (i) => (p) => {
      const items = itemsAt(p, i, 'requestObject', 'spec', group);
      return items && collect(items, (c) => pick(c, p));
    });
  return [
    per('name', 'names', (c) => dig(c, 'name')),
    per('image', 'images', (c) => dig(c, 'image')),
    per('image.repository', 'image repositories (the image up to its tag or digest, e.g. falcosecurity/falco)', (c) => {
      const img = dig(c, 'image');
      return typeof img === 'string' ? falcoRepository(img) : undefined;
    }),
    per('command', 'commands, one JSON array per container', (c) => { const v = dig(c, 'command'); return v === undefined ? v : JSON.stringify(v); }),
    per('args', 'args, one JSON array per container', (c) => { const v = dig(c, 'args'); return v === undefined ? v : JSON.stringify(v); }),
    per('privileged', 'privileged flags (containers that do not set it are left out)', (c) => dig(c, 'securityContext', 'privileged')),
    per('allow_privilege_escalation', 'allowPrivilegeEscalation flags', (c) => dig(c, 'securityContext', 'allowPrivilegeEscalation')),
    per('read_only_fs', 'readOnlyRootFilesystem flags', (c) => dig(c, 'securityContext', 'readOnlyRootFilesystem')),
    per('run_as_user', 'runAsUser uids', (c) => dig(c, 'securityContext', 'runAsUser')),
    per('eff_run_as_user', 'initial uids: the container security context, else the pod one, else 0', (c, p) => effective(p, c, 'runAsUser')),
    per('run_as_group', 'runAsGroup gids', (c) => dig(c, 'securityContext', 'runAsGroup')),
    per('eff_run_as_group', 'initial gids: the container security context, else the pod one, else 0', (c, p) => effective(p, c, 'runAsGroup')),
    per('proc_mount', 'procMount types', (c) => dig(c, 'securityContext', 'procMount')),
    per('add_capabilities', 'capabilities added', (c) => dig(c, 'securityContext', 'capabilities', 'add')),
    per('host_port', 'hostPort values (containerPort for a port without one: with hostNetwork it is the host port)', (c) => {
      const ports = dig(c, 'ports');
      if (!Array.isArray(ports)) return undefined;
      return ports.map((x) => dig(x, 'hostPort') ?? dig(x, 'containerPort')).filter((x) => x !== undefined);
    }),
  ];
}

function firstImage(p: Obj): string | undefined {
  const img = dig(itemsAt(p, 0, 'requestObject', 'spec', 'containers')?.[0], 'image');
  return typeof img === 'string' ? img : undefined;
}

function roleRules(key: string): FieldDef {
  return indexed(`ka.req.role.rules.${key}`, `When the request object refers to a role/cluster role, the ${key} of its rules.`, (i) => (p) => {
    const rules = itemsAt(p, i, 'requestObject', 'rules');
    return rules && collect(rules, (r) => {
      const v = dig(r, key);
      return Array.isArray(v) ? v.filter((x) => x !== null) : undefined;
    });
  });
}

function subjects(kind: string, render: (s: Obj) => string | undefined): Get {
  return (p) => {
    const subs = dig(p, 'requestObject', 'subjects');
    if (!Array.isArray(subs)) return undefined;
    const out: string[] = [];
    for (const s of subs) {
      if (isObj(s) && s.kind === kind) {
        const v = render(s);
        if (v !== undefined) out.push(v);
      }
    }
    return out;
  };
}
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const kaFields: FieldDef[] = [
  plain('ka.auditid', 'charbuf', 'The unique id of the audit event.', at('auditID')),
  plain('ka.stage', 'charbuf', 'Stage of the request (RequestReceived, ResponseStarted, ResponseComplete, Panic).', at('stage')),
  plain('ka.auth.decision', 'charbuf', 'The authorization decision (annotation authorization.k8s.io/decision).', at('annotations', 'authorization.k8s.io/decision')),
  plain('ka.auth.reason', 'charbuf', 'The authorization reason (annotation authorization.k8s.io/reason).', at('annotations', 'authorization.k8s.io/reason')),
  plain('ka.auth.openshift.decision', 'charbuf', 'The OpenShift API server authorization decision (OpenShift clusters only).', at('annotations', 'authorization.openshift.io/decision')),
  plain('ka.auth.openshift.username', 'charbuf', 'The user name of an OpenShift authentication (OpenShift clusters only).', at('annotations', 'authentication.openshift.io/username')),
  plain('ka.validations.admission.policy.failure', 'charbuf', 'The failure of a ValidatingAdmissionPolicy.', at('annotations', 'validation.policy.admission.k8s.io/validation_failure')),
  plain('ka.security.pod.violations', 'charbuf', 'The pod security violations found in audit mode.', at('annotations', 'pod-security.kubernetes.io/audit-violations')),
  plain('ka.user.name', 'charbuf', 'The user name performing the request.', at('user', 'username')),
  plain('ka.user.groups', 'charbuf', 'The groups to which the user belongs.', listAt('user', 'groups'), true),
  plain('ka.impuser.name', 'charbuf', 'The impersonated user name.', at('impersonatedUser', 'username')),
  plain('ka.verb', 'charbuf', 'The action being performed (create, patch, delete, get, …).', at('verb')),
  plain('ka.uri', 'charbuf', 'The request URI as sent from client to server.', at('requestURI')),
  field('ka.uri.param', 'charbuf', 'The first value of a query parameter of the URI (for uri=/foo?key=val, ka.uri.param[key] is val).', (arg) => (p) => {
    const uri = dig(p, 'requestURI');
    if (typeof uri !== 'string' || arg === undefined) return undefined;
    const q = uri.indexOf('?');
    if (q < 0) return undefined;
    return new URLSearchParams(uri.slice(q + 1)).get(arg) ?? undefined;
  }, { arg: 'key' }),
  plain('ka.target.name', 'charbuf', 'The target object name.', at('objectRef', 'name')),
  plain('ka.target.namespace', 'charbuf', 'The target object namespace.', at('objectRef', 'namespace')),
  plain('ka.target.resource', 'charbuf', 'The target object resource.', at('objectRef', 'resource')),
  plain('ka.target.subresource', 'charbuf', 'The target object subresource.', at('objectRef', 'subresource')),
  plain('ka.target.pod.name', 'charbuf', 'The target pod name, when the target is a pod.', (p) =>
    dig(p, 'objectRef', 'resource') === 'pods' ? str(dig(p, 'objectRef', 'name')) : undefined),
  plain('ka.req.binding.subjects', 'charbuf', 'When the request object is a (cluster) role binding, its subjects.', listAt('requestObject', 'subjects'), true),
  plain('ka.req.binding.subjects.user_names', 'charbuf', 'When the request object is a (cluster) role binding, the names of its User subjects.', subjects('User', (s) => str(s.name)), true),
  plain('ka.req.binding.subjects.serviceaccount_names', 'charbuf', 'When the request object is a (cluster) role binding, the names of its ServiceAccount subjects.', subjects('ServiceAccount', (s) => str(s.name)), true),
  plain('ka.req.binding.subjects.serviceaccount_ns_names', 'charbuf', 'When the request object is a (cluster) role binding, its ServiceAccount subjects as namespace:name.', subjects('ServiceAccount', (s) => `${str(s.namespace) ?? ''}:${str(s.name) ?? ''}`), true),
  plain('ka.req.binding.subjects.group_names', 'charbuf', 'When the request object is a (cluster) role binding, the names of its Group subjects.', subjects('Group', (s) => str(s.name)), true),
  plain('ka.req.binding.role', 'charbuf', 'When the request object is a (cluster) role binding, the role it binds.', at('requestObject', 'roleRef', 'name')),
  field('ka.req.binding.subject.has_name', 'charbuf', 'Deprecated; kept for old rules: always "true", as the plugin answers.', () => () => 'true', { arg: 'key' }),
  plain('ka.req.configmap.name', 'charbuf', 'If the request object is a configmap, its name.', at('objectRef', 'name')),
  plain('ka.req.configmap.obj', 'charbuf', 'If the request object is a configmap, its data as JSON.', at('requestObject', 'data')),
  ...GROUPS.flatMap(([g, whose]) => containerFields(g, whose)),
  plain('ka.req.container.image', 'charbuf', 'Deprecated by ka.req.pod.containers.image: the image of the first container.', firstImage),
  plain('ka.req.container.image.repository', 'charbuf', 'Deprecated by ka.req.pod.containers.image.repository: the repository of the first container.', (p) => {
    const img = firstImage(p);
    return img === undefined ? undefined : falcoRepository(img);
  }),
  plain('ka.req.pod.host_ipc', 'charbuf', 'When the request object refers to a pod, the hostIPC flag.', at('requestObject', 'spec', 'hostIPC')),
  plain('ka.req.pod.host_network', 'charbuf', 'When the request object refers to a pod, the hostNetwork flag.', at('requestObject', 'spec', 'hostNetwork')),
  plain('ka.req.container.host_network', 'charbuf', 'Deprecated alias for ka.req.pod.host_network.', at('requestObject', 'spec', 'hostNetwork')),
  plain('ka.req.pod.host_pid', 'charbuf', 'When the request object refers to a pod, the hostPID flag.', at('requestObject', 'spec', 'hostPID')),
  plain('ka.req.container.privileged', 'charbuf', 'Deprecated by ka.req.pod.containers.privileged: "true" when any container is privileged.', (p) => {
    const cs = dig(p, 'requestObject', 'spec', 'containers');
    if (!Array.isArray(cs)) return undefined;
    return cs.some((c) => dig(c, 'securityContext', 'privileged') === true) ? 'true' : 'false';
  }),
  plain('ka.req.pod.run_as_user', 'charbuf', "When the request object refers to a pod, the pod security context's runAsUser.", at('requestObject', 'spec', 'securityContext', 'runAsUser')),
  plain('ka.req.pod.run_as_group', 'charbuf', "When the request object refers to a pod, the pod security context's runAsGroup.", at('requestObject', 'spec', 'securityContext', 'runAsGroup')),
  plain('ka.req.pod.fs_group', 'charbuf', "When the request object refers to a pod, the pod security context's fsGroup.", at('requestObject', 'spec', 'securityContext', 'fsGroup')),
  plain('ka.req.pod.supplemental_groups', 'charbuf', "When the request object refers to a pod, the pod security context's supplementalGroups.", listAt('requestObject', 'spec', 'securityContext', 'supplementalGroups'), true),
  plain('ka.req.role.rules', 'charbuf', 'When the request object is a role/cluster role, its rules, one JSON object each.', listAt('requestObject', 'rules'), true),
  roleRules('apiGroups'),
  roleRules('nonResourceURLs'),
  roleRules('verbs'),
  roleRules('resources'),
  plain('ka.req.service.type', 'charbuf', 'When the request object is a service, its type.', at('requestObject', 'spec', 'type')),
  indexed('ka.req.service.ports', "When the request object is a service, its ports, one JSON object each.", (i) => (p) => {
    const ports = itemsAt(p, i, 'requestObject', 'spec', 'ports');
    return ports && collect(ports, (x) => x);
  }),
  indexed('ka.req.pod.volumes.hostpath', 'When the request object refers to a pod, the hostPath paths of its volumes.', (i) => (p) => {
    const vols = itemsAt(p, i, 'requestObject', 'spec', 'volumes');
    return vols && collect(vols, (v) => dig(v, 'hostPath', 'path'));
  }),
  field('ka.req.volume.hostpath', 'charbuf', 'Deprecated by ka.req.pod.volumes.hostpath: "true" when a hostPath volume has this path (a trailing * matches a prefix).', (arg) => (p) => {
    const vols = dig(p, 'requestObject', 'spec', 'volumes');
    if (!Array.isArray(vols) || arg === undefined) return undefined;
    const prefix = arg.endsWith('*') ? arg.slice(0, -1) : undefined;
    const hit = vols.some((v) => {
      const path = dig(v, 'hostPath', 'path');
      return typeof path === 'string' && (prefix !== undefined ? path.startsWith(prefix) : path === arg);
    });
    return hit ? 'true' : 'false';
  }, { arg: 'key' }),
  indexed('ka.req.pod.volumes.flexvolume_driver', 'When the request object refers to a pod, the flexVolume drivers of its volumes.', (i) => (p) => {
    const vols = itemsAt(p, i, 'requestObject', 'spec', 'volumes');
    return vols && collect(vols, (v) => dig(v, 'flexVolume', 'driver'));
  }),
  indexed('ka.req.pod.volumes.volume_type', 'When the request object refers to a pod, the type of each volume (hostPath, secret, configMap, …).', (i) => (p) => {
    const vols = itemsAt(p, i, 'requestObject', 'spec', 'volumes');
    return vols && collect(vols, (v) => (isObj(v) ? Object.keys(v).filter((k) => k !== 'name') : undefined));
  }),
  plain('ka.resp.name', 'charbuf', 'The response object name.', at('responseObject', 'metadata', 'name')),
  plain('ka.response.code', 'charbuf', 'The response code (text, as in Falco: compare with startswith or in).', at('responseStatus', 'code')),
  plain('ka.response.reason', 'charbuf', 'The response reason (usually present only for failures).', at('responseStatus', 'reason')),
  plain('ka.useragent', 'charbuf', 'The user agent of the client that made the request.', at('userAgent')),
  indexed('ka.sourceips', 'The IP addresses of the client that made the request.', (i) => (p) => {
    const ips = itemsAt(p, i, 'sourceIPs');
    return ips && collect(ips, (x) => x);
  }),
  plain('ka.cluster.name', 'charbuf', 'The name of the cluster, when the event carries one (annotation minewatch.io/cluster).', at('annotations', 'minewatch.io/cluster')),
];

// ---- json plugin ---------------------------------------------------------------------------------

/** RFC 6901: "/a/b~1c/0" → ["a", "b/c", "0"]. */
function pointerKeys(ptr: string): string[] {
  const body = ptr.startsWith('/') ? ptr.slice(1) : ptr;
  return body.split('/').map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function pointerValue(arg: string | undefined): Get {
  if (!arg) return () => undefined;
  const keys = pointerKeys(arg);
  return (p) => {
    let v: unknown = p;
    for (const k of keys) {
      if (Array.isArray(v)) {
        if (!/^\d+$/.test(k) || Number(k) >= v.length) return undefined;
        v = v[Number(k)];
      } else if (isObj(v) && Object.hasOwn(v, k)) v = v[k];
      else return undefined;
    }
    return jsonText(v);
  };
}

const objectText = (p: Obj): string => JSON.stringify(p, null, 2);

function jsonFields(prefix: 'json' | 'jevt'): FieldDef[] {
  const alias = prefix === 'jevt' ? ' (the name older rules use for json.*)' : '';
  return [
    field(`${prefix}.value`, 'charbuf', `A value of the event's JSON by JSON pointer (RFC 6901), e.g. ${prefix}.value[/requestObject/kind]; non-string values as JSON text${alias}.`, pointerValue, { arg: 'key' }),
    plain(`${prefix}.obj`, 'charbuf', `The whole event JSON as indented text${alias}.`, objectText),
    plain(`${prefix}.rawtime`, 'abstime', `The event time in nanoseconds since the epoch, as evt.rawtime${alias}.`, (_p, ev) => ev.ts),
    // Falco's original k8s audit support had these two; its rules may still name them.
    ...(prefix === 'jevt' ? [
      plain('jevt.time', 'charbuf', 'The event time of day as text, as evt.time (from the k8s audit support that predates plugins).', (_p, ev) => `${clock(dateOf(ev.ts))}.${nsPart(ev.ts)}`),
      plain('jevt.time.iso8601', 'charbuf', 'The event time in ISO 8601, UTC, as evt.time.iso8601.', (_p, ev) => iso8601(ev.ts)),
    ] : []),
  ];
}

// ---- evt.* for plugin events ---------------------------------------------------------------------

const ts = (ev: PluginEvent): bigint => ev.ts;
const evtFields: FieldDef[] = [
  plain('evt.num', 'uint64', 'Sequence number the source gave the event.', (_p, ev) => ev.num),
  plain('evt.time', 'charbuf', 'Event time of day (local time) with nanoseconds.', (_p, ev) => `${clock(dateOf(ts(ev)))}.${nsPart(ts(ev))}`),
  plain('evt.time.s', 'charbuf', 'Event time of day (local time) without nanoseconds.', (_p, ev) => clock(dateOf(ts(ev)))),
  plain('evt.time.iso8601', 'charbuf', 'Event time in ISO 8601, UTC, with nanoseconds.', (_p, ev) => iso8601(ts(ev))),
  plain('evt.datetime', 'charbuf', 'Event date and time (local time) with nanoseconds.', (_p, ev) => `${day(dateOf(ts(ev)))} ${clock(dateOf(ts(ev)))}.${nsPart(ts(ev))}`),
  plain('evt.datetime.s', 'charbuf', 'Event date and time (local time) without nanoseconds.', (_p, ev) => `${day(dateOf(ts(ev)))} ${clock(dateOf(ts(ev)))}`),
  plain('evt.rawtime', 'abstime', 'Event time in nanoseconds since the epoch.', (_p, ev) => ts(ev)),
  plain('evt.rawtime.s', 'abstime', 'Whole seconds of the event time since the epoch.', (_p, ev) => ts(ev) / 1_000_000_000n),
  plain('evt.rawtime.ns', 'abstime', 'Nanosecond part of the event time.', (_p, ev) => ts(ev) % 1_000_000_000n),
  plain('evt.hostname', 'charbuf', 'Host that received the event.', (_p, ev) => ev.hostname ?? localHostname()),
  plain('evt.source', 'charbuf', 'Name of the event source (k8s_audit).', (_p, ev) => ev.source),
  plain('evt.type', 'charbuf', "Event type: 'Event' for audit events, 'admission' for admission requests presented as audit events.", (_p, ev) => ev.type),
  plain('evt.pluginname', 'charbuf', 'The plugin whose fields these are (k8saudit).', () => 'k8saudit'),
  plain('evt.plugininfo', 'charbuf', 'A one-line summary of the audit event.', (p) =>
    `${jsonText(dig(p, 'verb')) ?? ''} ${jsonText(dig(p, 'requestURI')) ?? ''} by ${jsonText(dig(p, 'user', 'username')) ?? '<NA>'}`.trim()),
  plain('evt.is_async', 'bool', 'False: audit events are never asynchronous.', () => false),
];

// ---- mw.k8s.* ------------------------------------------------------------------------------------

/**
 * What the mw.k8s fields read, worked out once per event and each part only when a rule asks:
 * most audit events (gets, lists, watches) never need the containers.
 */
class View {
  private containersCache?: Obj[];
  private imagesCache?: ImageRef[];
  private cmdlinesCache?: string[];
  private resourcesCache?: ContainerResources[];

  constructor(readonly obj: Obj | undefined, readonly kind: string | undefined, private readonly spec: Obj | undefined) {}

  get containers(): Obj[] {
    return (this.containersCache ??= allContainers(this.spec));
  }

  get images(): ImageRef[] {
    return (this.imagesCache ??= this.containers.flatMap((c) => (typeof c.image === 'string' ? [parseImage(c.image)] : [])));
  }

  get cmdlines(): string[] {
    return (this.cmdlinesCache ??= this.containers.map((c) => commandOf(c).join(' ')).filter((x) => x !== ''));
  }

  /** Requests and limits of the regular containers. */
  get resources(): ContainerResources[] {
    return (this.resourcesCache ??= mainContainers(this.spec).map(resourcesOf));
  }
}

/**
 * The object the request creates or changes: the response object for a patch (the object as
 * patched) when the audit level recorded it, else the request object (for a patch, the patch body,
 * which holds what it changes).
 */
function targetObject(p: Obj): Obj | undefined {
  const req = dig(p, 'requestObject');
  const resp = dig(p, 'responseObject');
  if (dig(p, 'verb') === 'patch' && isObj(resp) && typeof resp.kind === 'string') return resp;
  return isObj(req) ? req : undefined;
}

function kindOf(p: Obj, obj: Obj | undefined): string | undefined {
  if (obj && typeof obj.kind === 'string' && obj.kind !== 'Status') return obj.kind;
  return kindOfResource(dig(p, 'objectRef', 'resource'));
}

export function workloadView(p: Obj): View {
  const obj = targetObject(p);
  const kind = kindOf(p, obj);
  return new View(obj, kind, podSpecOf(obj, obj && typeof obj.kind === 'string' ? undefined : kind));
}

/** The workload an audit event is about, built once per event for all mw.k8s.* fields (through the engine's memo). */
const viewOf = (ev: Event): View | undefined => {
  const p = payloadOf(ev);
  return p ? workloadView(p) : undefined;
};

type ViewGet = (v: View, ev: PluginEvent) => Extracted;
const mw = (name: string, type: FieldType, desc: string, get: ViewGet, isList = false): FieldDef =>
  field(name, type, desc, (_arg, memo) => {
    const view = perEventOf(memo, viewOf);
    return (_p, ev) => {
      const v = view(ev);
      return v && get(v, ev);
    };
  }, { isList });

function mwIndexed(name: string, type: FieldType, desc: string, values: (v: View) => (FieldValue | undefined)[]): FieldDef {
  return indexed(name, desc, (i, memo) => {
    const view = perEventOf(memo, viewOf);
    return (_p, ev) => {
      const v = view(ev);
      if (!v || v.containers.length === 0) return undefined;
      let xs = values(v);
      if (i !== undefined) {
        if (i >= xs.length) return undefined;
        xs = [xs[i]];
      }
      return xs.filter((x): x is FieldValue => x !== undefined);
    };
  }, type);
}

const sum = (xs: (number | undefined)[]): number | undefined =>
  xs.some((x) => x !== undefined) ? xs.reduce<number>((a, x) => a + (x ?? 0), 0) : undefined;
const total = (xs: (number | undefined)[]): number | undefined =>
  xs.length > 0 && xs.every((x) => x !== undefined) ? sum(xs) : undefined;
const anyMissing = (v: View, pick: (r: ContainerResources) => number | undefined): boolean | undefined =>
  v.resources.length === 0 ? undefined : v.resources.some((r) => pick(r) === undefined);

/** Shell strings inside args ("sh -c 'wget … && ./miner -o pool:3333'") split into words. */
function words(cmdline: string): string[] {
  return cmdline.split(/[\s;&|()'"`]+/).filter((w) => w !== '');
}

const mwK8sFields: FieldDef[] = [
  mw('mw.k8s.kind', 'charbuf', 'Kind of the object the request creates or changes (Pod, Deployment, CronJob, …); from objectRef.resource when the body does not say.', (v) => v.kind),
  mw('mw.k8s.name', 'charbuf', 'Name of the object (metadata.name, else objectRef.name, else metadata.generateName).', (v, ev) =>
    str(dig(v.obj, 'metadata', 'name')) ?? str(dig(payloadOf(ev), 'objectRef', 'name')) ?? str(dig(v.obj, 'metadata', 'generateName'))),
  mw('mw.k8s.namespace', 'charbuf', 'Namespace of the object (objectRef.namespace, else metadata.namespace).', (v, ev) =>
    str(dig(payloadOf(ev), 'objectRef', 'namespace')) ?? str(dig(v.obj, 'metadata', 'namespace'))),
  plain('mw.k8s.admission', 'bool', 'True when the event is an admission request (POST /admission) presented as an audit event: nothing has happened yet.', (_p, ev) => ev.type === ADMISSION_TYPE),
  plain('mw.k8s.response.code', 'int64', 'The response code as a number (ka.response.code is text).', (p) => {
    const c = dig(p, 'responseStatus', 'code');
    return typeof c === 'number' ? c : typeof c === 'string' && /^\d+$/.test(c) ? Number(c) : undefined;
  }),
  mwIndexed('mw.k8s.containers.name', 'charbuf', 'Names of every container of the pod or pod template (init, regular, ephemeral), in any workload kind.', (v) => v.containers.map((c) => str(c.name))),
  mwIndexed('mw.k8s.containers.image', 'charbuf', 'Images of every container of the pod or pod template, in any workload kind.', (v) => v.containers.map((c) => str(c.image))),
  mwIndexed('mw.k8s.containers.image.repository', 'charbuf', 'Image repositories without registry, tag or digest, lowercased (ghcr.io/metal3d/xmrig:latest → metal3d/xmrig; docker.io/library/nginx → nginx).', (v) => v.images.map((i) => i.repository)),
  mwIndexed('mw.k8s.containers.image.name', 'charbuf', 'Last path component of each image repository, lowercased (metal3d/xmrig → xmrig).', (v) => v.images.map((i) => i.name)),
  // Any container's command line satisfying a test is enough, as proc.aname tests any ancestor:
  // so text operators (contains…) apply, which libs refuses on a list field.
  { ...mwIndexed('mw.k8s.containers.cmdline', 'charbuf', 'Command and args of each container joined by spaces (containers that set neither are left out); without an index, a test holds when it holds for any of them.', (v) => v.cmdlines), anyWhenNoArg: true },
  mw('mw.k8s.containers.stratum_url', 'charbuf', 'Mining-pool URLs (stratum family) in the command lines of the containers.', (v) => {
    if (v.containers.length === 0) return undefined;
    return v.cmdlines.map((c) => parseStratumUrl(c)?.url).filter((u): u is string => u !== undefined);
  }, true),
  mw('mw.k8s.containers.miner_flags', 'bool', "True when a container's command line (shell strings included) carries a miner's options (see mw.miner.flags).", (v) =>
    v.containers.length === 0 ? undefined : v.cmdlines.some((c) => hasMinerFlags(words(c)))),
  mw('mw.k8s.containers.wallet', 'charbuf', 'Valid wallet addresses (Monero, Bitcoin, Ethereum) in the command lines of the containers.', (v) => {
    if (v.containers.length === 0) return undefined;
    return v.cmdlines.flatMap((c) => findWallets(c).map((w) => w.address));
  }, true),
  mwIndexed('mw.k8s.containers.cpu.request', 'int64', 'CPU request of each regular container in millicores ("500m" → 500, "2" → 2000); a limit alone counts as the request.', (v) => v.resources.map((r) => r.cpuRequest)),
  mwIndexed('mw.k8s.containers.cpu.limit', 'int64', 'CPU limit of each regular container in millicores.', (v) => v.resources.map((r) => r.cpuLimit)),
  mwIndexed('mw.k8s.containers.memory.request', 'int64', 'Memory request of each regular container in bytes ("2Gi" → 2147483648, "1.5G" → 1500000000).', (v) => v.resources.map((r) => r.memoryRequest)),
  mwIndexed('mw.k8s.containers.memory.limit', 'int64', 'Memory limit of each regular container in bytes.', (v) => v.resources.map((r) => r.memoryLimit)),
  mw('mw.k8s.cpu.request', 'int64', 'CPU requested by the regular containers together, in millicores (<NA> when none requests any).', (v) => sum(v.resources.map((r) => r.cpuRequest))),
  mw('mw.k8s.cpu.limit', 'int64', 'CPU limit of the regular containers together, in millicores (<NA> unless every one has a limit).', (v) => total(v.resources.map((r) => r.cpuLimit))),
  mw('mw.k8s.memory.request', 'int64', 'Memory requested by the regular containers together, in bytes (<NA> when none requests any).', (v) => sum(v.resources.map((r) => r.memoryRequest))),
  mw('mw.k8s.memory.limit', 'int64', 'Memory limit of the regular containers together, in bytes (<NA> unless every one has a limit).', (v) => total(v.resources.map((r) => r.memoryLimit))),
  mw('mw.k8s.cpu.unlimited_request', 'int64', 'The largest CPU request, in millicores, of a regular container without a CPU limit (<NA> when every container has one).', (v) => {
    const xs = v.resources.filter((r) => r.cpuLimit === undefined).map((r) => r.cpuRequest ?? 0);
    return xs.length ? Math.max(...xs) : undefined;
  }),
  mw('mw.k8s.containers.cpu.unlimited', 'bool', 'True when a regular container has no CPU limit.', (v) => anyMissing(v, (r) => r.cpuLimit)),
  mw('mw.k8s.containers.memory.unlimited', 'bool', 'True when a regular container has no memory limit.', (v) => anyMissing(v, (r) => r.memoryLimit)),
  mw('mw.k8s.containers.unlimited', 'bool', 'True when a regular container lacks a CPU or a memory limit.', (v) =>
    v.resources.length === 0 ? undefined : v.resources.some((r) => r.cpuLimit === undefined || r.memoryLimit === undefined)),
];

export const k8sAuditFields: FieldDef[] = [...evtFields, ...kaFields, ...jsonFields('json'), ...jsonFields('jevt'), ...mwK8sFields];
