/**
 * Reading Kubernetes objects as the mining rules and the manifest scan see them: the pod spec
 * inside any workload kind, its containers, their images and their resources. Objects come from
 * audit events, AdmissionReviews and YAML manifests, so nothing here trusts their shape: a missing
 * or wrongly typed part reads as absent.
 */
import { cpuMillicores, memoryBytes } from './quantity.js';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** obj.a.b.c, or undefined as soon as a step is not an object. */
export function dig(v: unknown, ...keys: string[]): unknown {
  for (const k of keys) {
    if (!isObj(v) || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

/** The kinds whose objects carry a pod template, and where. */
const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  PodTemplate: ['template', 'spec'],
};

/** The kinds a workload scan looks at. */
export const WORKLOAD_KINDS: ReadonlySet<string> = new Set(Object.keys(TEMPLATE_PATHS));

/** Audit objectRef.resource → kind, for request objects (patches) that do not say their kind. */
const KIND_OF_RESOURCE: Readonly<Record<string, string>> = {
  pods: 'Pod', deployments: 'Deployment', daemonsets: 'DaemonSet', statefulsets: 'StatefulSet',
  replicasets: 'ReplicaSet', replicationcontrollers: 'ReplicationController', jobs: 'Job', cronjobs: 'CronJob',
  podtemplates: 'PodTemplate', namespaces: 'Namespace', resourcequotas: 'ResourceQuota', limitranges: 'LimitRange',
};

export function kindOfResource(resource: unknown): string | undefined {
  return typeof resource === 'string' ? KIND_OF_RESOURCE[resource] : undefined;
}

/**
 * The pod spec of a Pod or of a workload's template. Without a kind (a patch body), the shapes are
 * tried from the most specific: a CronJob's job template, a template, a pod spec.
 */
export function podSpecOf(obj: unknown, kind?: string): Obj | undefined {
  const k = kind ?? (typeof dig(obj, 'kind') === 'string' ? (dig(obj, 'kind') as string) : undefined);
  if (k !== undefined) {
    if (!Object.hasOwn(TEMPLATE_PATHS, k)) return undefined;
    const s = dig(obj, ...TEMPLATE_PATHS[k]!);
    return isObj(s) ? s : undefined;
  }
  for (const p of [TEMPLATE_PATHS.CronJob!, TEMPLATE_PATHS.Deployment!, TEMPLATE_PATHS.Pod!]) {
    const s = dig(obj, ...p);
    if (isObj(s) && (Array.isArray(s.containers) || Array.isArray(s.initContainers))) return s;
  }
  return undefined;
}

/** Every container of a pod spec: init containers, containers, ephemeral containers. */
export function allContainers(spec: Obj | undefined): Obj[] {
  if (!spec) return [];
  const out: Obj[] = [];
  for (const key of ['initContainers', 'containers', 'ephemeralContainers']) {
    const list = spec[key];
    if (Array.isArray(list)) for (const c of list) if (isObj(c)) out.push(c);
  }
  return out;
}

/** The regular containers only: the ones whose requests make up the pod's running request. */
export function mainContainers(spec: Obj | undefined): Obj[] {
  const list = spec?.containers;
  return Array.isArray(list) ? list.filter(isObj) : [];
}

export interface ImageRef {
  /** Registry host when the reference names one ("ghcr.io", "registry:5000"), else undefined. */
  registry?: string;
  /** Path without registry, tag or digest: "metal3d/xmrig", "nginx". */
  repository: string;
  /** Last path component: "xmrig". */
  name: string;
  tag?: string;
  digest?: string;
}

/** Split an image reference the way a container runtime reads it. */
export function parseImage(image: string): ImageRef {
  let rest = image.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  let registry: string | undefined;
  const first = rest.indexOf('/');
  if (first > 0) {
    const head = rest.slice(0, first);
    // A first component with a dot or a port, or "localhost", is a registry host (Docker's rule).
    if (head.includes('.') || head.includes(':') || head === 'localhost') {
      registry = head;
      rest = rest.slice(first + 1);
    }
  }
  if (rest.startsWith('library/') && (registry === undefined || registry === 'docker.io' || registry === 'index.docker.io')) rest = rest.slice(8);
  const name = rest.slice(rest.lastIndexOf('/') + 1);
  return { registry, repository: rest.toLowerCase(), name: name.toLowerCase(), tag, digest };
}

/** A container's command and args, as the strings it would exec. */
export function commandOf(c: Obj): string[] {
  const out: string[] = [];
  for (const key of ['command', 'args']) {
    const v = c[key];
    if (Array.isArray(v)) for (const a of v) if (typeof a === 'string' || typeof a === 'number') out.push(String(a));
  }
  return out;
}

export interface ContainerResources {
  name: string;
  cpuRequest?: number;
  cpuLimit?: number;
  memoryRequest?: number;
  memoryLimit?: number;
}

/**
 * Requests and limits of one container in millicores and bytes. A limit without a request means a
 * request of the same size (Kubernetes fills it in), so the rules see what the scheduler will.
 */
export function resourcesOf(c: Obj): ContainerResources {
  const req = dig(c, 'resources', 'requests');
  const lim = dig(c, 'resources', 'limits');
  const cpuLimit = cpuMillicores(dig(lim, 'cpu'));
  const memoryLimit = memoryBytes(dig(lim, 'memory'));
  return {
    name: typeof c.name === 'string' ? c.name : '',
    cpuRequest: cpuMillicores(dig(req, 'cpu')) ?? cpuLimit,
    cpuLimit,
    memoryRequest: memoryBytes(dig(req, 'memory')) ?? memoryLimit,
    memoryLimit,
  };
}
