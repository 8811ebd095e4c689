/**
 * Which container a process is in, and what the container runtime says about it.
 *
 * Two steps, with very different costs:
 *
 * 1. The container id comes from the process's cgroup path (/proc/PID/cgroup), synchronously and
 *    for free: every runtime names its cgroups after the container id, in a handful of shapes
 *    (see `containerFromCgroupPath`). The Kubernetes pod UID sits in the same path.
 * 2. Name, image, labels, privileged flag and mounts come from the runtime's API, which may be
 *    slow, absent or down. That lookup runs in the background, once per container (answers are
 *    cached by id; "no such container" and errors are cached briefly so a missing runtime is not
 *    asked again for every exec). `get()` returns what is known right now: the first event of a
 *    new container may carry only the id, later ones the rest. A caller that prefers to wait a
 *    little uses `resolve(ident, timeoutMs)`, which never waits longer than it is told.
 *
 * Runtimes are behind the small `RuntimeClient` interface. `DockerClient` speaks the Docker Engine
 * API over its unix socket (podman's compatible socket works too: give it podman's socket path
 * and `types: ['podman']`). containerd and CRI-O are only reachable through the CRI, which is
 * gRPC; it is left out for now, and a CRI client is a second `RuntimeClient` added to the list
 * passed to `ContainerResolver`, with nothing else to change.
 */
import { request } from 'node:http';
import type { ContainerInfo, ContainerMount, K8sInfo } from '../events.js';

// ---- cgroup paths → container id ------------------------------------------------------------------

/** What the cgroup path alone tells about a process's container. */
export interface CgroupContainer {
  /** Short id: the first 12 hex digits (or the name, for LXC). */
  id: string;
  /** Full id (64 hex for runc-based runtimes). */
  full_id: string;
  /**
   * Runtime as far as the path tells: docker, containerd, cri-o, podman, lxc. A bare id under
   * kubepods/ (the cgroupfs driver) does not say which runtime made it; it is reported as
   * containerd, the common case, and a runtime that answers for the id corrects it.
   */
  type: string;
  /** Kubernetes pod UID, with dashes, for processes under kubepods. */
  pod_uid?: string;
}

const HEX64 = '[0-9a-f]{64}';

/** Segment shapes, tried on each path segment from the innermost out. */
const SEGMENT_RULES: ReadonlyArray<{ re: RegExp; type: string }> = [
  // systemd cgroup driver: one .scope unit per container.
  { re: new RegExp(`^docker-(${HEX64})\\.scope$`), type: 'docker' },
  { re: new RegExp(`^cri-containerd-(${HEX64})\\.scope$`), type: 'containerd' },
  { re: new RegExp(`^nerdctl-(${HEX64})\\.scope$`), type: 'containerd' },
  { re: new RegExp(`^crio-(${HEX64})(?:\\.scope)?$`), type: 'cri-o' },
  { re: new RegExp(`^libpod-(${HEX64})(?:\\.scope)?$`), type: 'podman' },
];

const BARE_ID = new RegExp(`^(${HEX64})$`);

/**
 * Pod UID in a kubepods path: "pod<uid>" (cgroupfs driver) or "kubepods-<qos>-pod<uid>.slice"
 * (systemd driver, where the dashes of the UID are written as underscores). Static pods have a
 * 32-hex UID without dashes.
 */
const POD_UID_RE = /(?:^|[-/])pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32})(?:\.slice)?(?=\/|$)/;

/** The container named by one cgroup path, or undefined for a host path. */
export function containerFromCgroupPath(path: string): CgroupContainer | undefined {
  const segs = path.split('/').filter((s) => s !== '');
  const kube = segs.some((s) => s === 'kubepods' || s.startsWith('kubepods.') || s.startsWith('kubepods-'));
  let found: { full: string; type: string } | undefined;
  // Innermost first: docker-in-docker gives /docker/<outer>/docker/<inner>, and podman's
  // "libpod-<id>.scope/container" puts a plain directory below the id.
  for (let i = segs.length - 1; i >= 0 && !found; i--) {
    const seg = segs[i]!;
    // conmon, the runtime's monitor process, has a cgroup of its own next to the container's.
    if (seg.startsWith('crio-conmon-') || seg.startsWith('libpod-conmon-')) return undefined;
    for (const rule of SEGMENT_RULES) {
      const m = rule.re.exec(seg);
      if (m) {
        found = { full: m[1]!, type: rule.type };
        break;
      }
    }
    if (found) break;
    const bare = BARE_ID.exec(seg);
    if (bare) {
      // cgroupfs driver: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>, /ecs/<task>/<id>, …
      found = { full: bare[1]!, type: kube && segs[i - 1] !== 'docker' ? 'containerd' : 'docker' };
    }
    // LXC: /lxc/<name> (LXC 1-3) and /lxc.payload.<name> (LXC 4+); the name is the id.
    if (!found && i > 0 && segs[i - 1] === 'lxc') found = { full: seg, type: 'lxc' };
    if (!found && seg.startsWith('lxc.payload.') && seg.length > 'lxc.payload.'.length) {
      found = { full: seg.slice('lxc.payload.'.length), type: 'lxc' };
    }
  }
  if (!found) return undefined;
  const out: CgroupContainer = {
    id: found.type === 'lxc' ? found.full : found.full.slice(0, 12),
    full_id: found.full,
    type: found.type,
  };
  if (kube) {
    const pod = POD_UID_RE.exec(path);
    if (pod) out.pod_uid = pod[1]!.replace(/_/g, '-');
  }
  return out;
}

/**
 * The container of a process from the lines of /proc/PID/cgroup ("hierarchy:controllers:path",
 * cgroup v1 with one line per hierarchy, v2 with the single "0::/path" line). The first line that
 * names a container decides; all lines normally agree.
 */
export function containerFromCgroups(lines: readonly string[] | undefined): CgroupContainer | undefined {
  if (!lines) return undefined;
  for (const line of lines) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const c = containerFromCgroupPath(line.slice(b + 1).trim());
    if (c) return c;
  }
  return undefined;
}

// ---- image references -----------------------------------------------------------------------------

export interface ImageRef {
  /** Registry and path without tag or digest: "docker.io/library/nginx", "registry:5000/x/y". */
  repository: string;
  tag?: string;
  /** "sha256:…" */
  digest?: string;
}

/**
 * Split an image reference the way Falco does: repository is everything before the tag or digest
 * (registry host and port included, as the runtime gave it, not normalized), and the tag is
 * "latest" when none is written (Falco's docker engine sets that default even beside a digest).
 * A ':' before the last '/' belongs to a registry port, not a tag.
 */
export function parseImageRef(ref: string): ImageRef {
  let name = ref.trim();
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  const out: ImageRef = { repository: name, tag: tag || 'latest' };
  if (digest) out.digest = digest;
  return out;
}

/** RFC 3339 with up to nanoseconds ("2024-05-01T10:00:00.123456789Z") → ns since the epoch. */
export function parseRfc3339Ns(text: string | undefined): bigint | undefined {
  if (!text) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  // Docker reports "0001-01-01T00:00:00Z" for a container that never started.
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  const frac = BigInt((m[2] ?? '').padEnd(9, '0'));
  return BigInt(ms) * 1_000_000n + frac;
}

// ---- runtime clients ------------------------------------------------------------------------------

/** What a runtime says about a container; merged over what the cgroup path told. */
export interface RuntimeAnswer {
  container: Partial<ContainerInfo>;
  k8s?: K8sInfo;
}

export interface RuntimeClient {
  readonly name: string;
  /** Whether to ask this client about a container of the type the cgroup path suggested. */
  handles(type: string): boolean;
  /**
   * Resolves with the answer, or null when the runtime does not know the id (it belongs to
   * another runtime, or is gone). Rejects when the runtime cannot be reached or is too slow.
   */
  inspect(fullId: string): Promise<RuntimeAnswer | null>;
}

export interface DockerClientOptions {
  /** Default /var/run/docker.sock. */
  socketPath?: string;
  /** Per-request timeout (default 1000 ms): the socket of a wedged daemon accepts and never answers. */
  timeoutMs?: number;
  /** Container types to answer for (default docker and containerd: dockershim/cri-dockerd pods look like the latter). */
  types?: string[];
  /** container.type to report (default 'docker'; 'podman' for podman's compatible API). */
  reportType?: string;
  /** Also ask /images/<id>/json for tags and digests the container record lacks (default true). */
  queryImages?: boolean;
  /** Largest response accepted (default 4 MiB). */
  maxResponseBytes?: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** GET over a unix socket; resolves with the parsed JSON, rejects on non-2xx, timeout or I/O error. */
function getJson(socketPath: string, path: string, timeoutMs: number, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err: Error | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    };
    const req = request({ socketPath, path, method: 'GET', headers: { Host: 'docker', Accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy();
          done(new Error(`response larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks).toString('utf8');
        if (status < 200 || status >= 300) {
          done(new HttpError(status, `HTTP ${status}: ${body.slice(0, 200)}`));
          return;
        }
        try {
          done(undefined, JSON.parse(body));
        } catch (e) {
          done(new Error(`bad JSON from runtime: ${(e as Error).message}`));
        }
      });
      res.on('error', (e) => done(e));
    });
    const timer = setTimeout(() => {
      req.destroy();
      done(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => done(e));
    req.end();
  });
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function stringRecord(v: unknown): Record<string, string> | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(o)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** Docker's Mounts array → our mounts (source:dest:mode:rdwr:propagation, as Falco prints them). */
function dockerMounts(v: unknown): ContainerMount[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: ContainerMount[] = [];
  for (const m of v) {
    const o = obj(m);
    if (!o) continue;
    out.push({
      source: str(o.Source) ?? '',
      dest: str(o.Destination) ?? '',
      mode: str(o.Mode) ?? '',
      rw: o.RW === true,
      propagation: str(o.Propagation) ?? '',
    });
  }
  return out;
}

/**
 * The Docker Engine API client: GET /containers/<id>/json, and /images/<id>/json when the
 * container record names its image only by id or without a digest.
 */
export class DockerClient implements RuntimeClient {
  readonly name: string;
  private readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly types: Set<string>;
  private readonly reportType: string;
  private readonly queryImages: boolean;
  private readonly maxBytes: number;
  /** Image id → RepoTags/RepoDigests; images are immutable, so this never goes stale. */
  private readonly images = new Map<string, { tags: string[]; digests: string[] } | null>();

  constructor(opts: DockerClientOptions = {}) {
    this.socketPath = opts.socketPath ?? '/var/run/docker.sock';
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.types = new Set(opts.types ?? ['docker', 'containerd']);
    this.reportType = opts.reportType ?? 'docker';
    this.name = this.reportType;
    this.queryImages = opts.queryImages ?? true;
    this.maxBytes = opts.maxResponseBytes ?? 4 * 1024 * 1024;
  }

  handles(type: string): boolean {
    return this.types.has(type);
  }

  async inspect(fullId: string): Promise<RuntimeAnswer | null> {
    if (!/^[A-Za-z0-9_.-]+$/.test(fullId)) return null;
    let raw: unknown;
    try {
      raw = await getJson(this.socketPath, `/containers/${fullId}/json`, this.timeoutMs, this.maxBytes);
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) return null;
      throw e;
    }
    const root = obj(raw);
    if (!root) throw new Error('runtime answered with something that is not a container record');
    return this.toAnswer(root);
  }

  private async imageInfo(imageId: string): Promise<{ tags: string[]; digests: string[] } | null> {
    if (this.images.has(imageId)) return this.images.get(imageId)!;
    let info: { tags: string[]; digests: string[] } | null = null;
    try {
      // Ids are "sha256:<hex>"; the colon is fine in a path and Docker expects it unescaped.
      if (!/^[A-Za-z0-9:._-]+$/.test(imageId)) return null;
      const img = obj(await getJson(this.socketPath, `/images/${imageId}/json`, this.timeoutMs, this.maxBytes));
      if (img) {
        const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
        info = { tags: list(img.RepoTags), digests: list(img.RepoDigests) };
      }
    } catch {
      // Leave tag/digest unknown; the container itself still resolved. Not cached: try next time.
      return null;
    }
    if (this.images.size > 1024) this.images.clear();
    this.images.set(imageId, info);
    return info;
  }

  private async toAnswer(root: Json): Promise<RuntimeAnswer> {
    const config = obj(root.Config) ?? {};
    const state = obj(root.State) ?? {};
    const hostConfig = obj(root.HostConfig) ?? {};
    const labels = stringRecord(config.Labels) ?? {};
    const imageId = str(root.Image);
    let image = str(config.Image);
    const c: Partial<ContainerInfo> = { type: this.reportType };
    const fullId = str(root.Id);
    if (fullId) {
      c.full_id = fullId;
      c.id = fullId.slice(0, 12);
    }
    const name = str(root.Name);
    if (name !== undefined) c.name = name.replace(/^\//, '');
    if (imageId) c.image_id = imageId.replace(/^sha256:/, '');
    c.privileged = hostConfig.Privileged === true;
    const mounts = dockerMounts(root.Mounts);
    if (mounts) c.mounts = mounts;
    const started = parseRfc3339Ns(str(state.StartedAt));
    if (started !== undefined) c.start_ts = started;
    c.labels = labels;

    // Config.Image is what the user ran ("nginx:1.25", "registry:5000/x/y@sha256:…"), or an
    // image id when run by id (and under dockershim). The image record fills what it lacks.
    const byId = !image || /^(sha256:)?[0-9a-f]{12,64}$/.test(image);
    let ref = image && !byId ? parseImageRef(image) : undefined;
    if (imageId && this.queryImages && (byId || !ref?.digest)) {
      const info = await this.imageInfo(imageId);
      if (info) {
        if (byId && info.tags.length > 0) {
          image = info.tags[0]!;
          ref = parseImageRef(image);
        }
        if (ref && !ref.digest) {
          const d = info.digests.find((x) => x.slice(0, x.indexOf('@')) === ref!.repository) ?? info.digests[0];
          if (d && d.includes('@')) ref.digest = d.slice(d.indexOf('@') + 1);
        }
      }
    }
    if (image) c.image = image;
    if (ref) {
      c.image_repository = ref.repository;
      c.image_tag = ref.tag;
      if (ref.digest) c.image_digest = ref.digest;
    }

    let k8s: K8sInfo | undefined;
    const podName = labels['io.kubernetes.pod.name'];
    const podNs = labels['io.kubernetes.pod.namespace'];
    const podUid = labels['io.kubernetes.pod.uid'];
    if (podName || podNs || podUid) {
      k8s = {};
      if (podName) k8s.pod_name = podName;
      if (podNs) k8s.ns_name = podNs;
      if (podUid) k8s.pod_uid = podUid;
    }
    return { container: c, k8s };
  }
}

// ---- the resolver ---------------------------------------------------------------------------------

export interface ResolvedContainer {
  container: ContainerInfo;
  k8s?: K8sInfo;
  /** True once a runtime has answered (or every runtime said it does not know the id). */
  final: boolean;
}

export interface ContainerResolverOptions {
  /** Runtimes to ask, in order; the first that knows the id answers. Default: none. */
  clients?: RuntimeClient[];
  /** How long "no runtime knows this id" is remembered (default 5000 ms). */
  negativeTtlMs?: number;
  /**
   * How soon a lookup that failed (runtime unreachable, or no answer in time) is tried again
   * (default 1000 ms). Short, because a miss is not always the runtime's: the agent's own event
   * loop may have been busy past the request's timeout (the eBPF verifier runs for seconds while
   * the table's first lookups are out), and the first events of those containers would be judged
   * without their image.
   */
  failureRetryMs?: number;
  /** How long an answer is served before it is refreshed in the background (default 10 min). */
  positiveTtlMs?: number;
  /** Most containers remembered (default 4096); the least recently used go first. */
  maxEntries?: number;
  /** Clock in ms, for tests (default Date.now). */
  now?: () => number;
}

interface Record_ {
  ident: CgroupContainer;
  resolved: ResolvedContainer;
  /** When the current knowledge expires and a lookup is due again. 0: never looked up. */
  expires: number;
  inflight?: Promise<void>;
  /** When the last lookup failed (unreachable, too slow); cleared by an answer. */
  failedAt?: number;
}

/** A caller that waits for an answer asks again after a failure this old (not in a tight loop). */
const WAITER_RETRY_MS = 200;

export interface ContainerStats {
  /** Runtime lookups started. */
  lookups: number;
  /** Lookups a runtime answered. */
  found: number;
  /** Lookups no runtime knew. */
  missing: number;
  /** Lookups that failed (unreachable, timeout, bad answer). */
  errors: number;
  /** resolve() calls that gave up waiting. */
  waitTimeouts: number;
  entries: number;
}

function baseInfo(ident: CgroupContainer): ResolvedContainer {
  const container: ContainerInfo = { id: ident.id, full_id: ident.full_id, type: ident.type };
  const k8s = ident.pod_uid ? { pod_uid: ident.pod_uid } : undefined;
  return { container, k8s, final: false };
}

export class ContainerResolver {
  private readonly clients: RuntimeClient[];
  private readonly negativeTtl: number;
  private readonly failureRetry: number;
  private readonly positiveTtl: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly records = new Map<string, Record_>();
  private readonly counters = { lookups: 0, found: 0, missing: 0, errors: 0, waitTimeouts: 0 };

  constructor(opts: ContainerResolverOptions = {}) {
    this.clients = opts.clients ?? [];
    this.negativeTtl = opts.negativeTtlMs ?? 5000;
    this.failureRetry = opts.failureRetryMs ?? 1000;
    this.positiveTtl = opts.positiveTtlMs ?? 10 * 60_000;
    this.maxEntries = opts.maxEntries ?? 4096;
    this.now = opts.now ?? Date.now;
  }

  get stats(): ContainerStats {
    return { ...this.counters, entries: this.records.size };
  }

  /** The container named by a process's cgroup lines; undefined for a host process. */
  identify(cgroupLines: readonly string[] | undefined): CgroupContainer | undefined {
    return containerFromCgroups(cgroupLines);
  }

  private record(ident: CgroupContainer): Record_ {
    const key = ident.full_id;
    let r = this.records.get(key);
    if (r) {
      // Keep Map order = recency, for eviction.
      this.records.delete(key);
      this.records.set(key, r);
      return r;
    }
    r = { ident, resolved: baseInfo(ident), expires: 0 };
    this.records.set(key, r);
    while (this.records.size > this.maxEntries) {
      const oldest = this.records.keys().next().value;
      if (oldest === undefined) break;
      this.records.delete(oldest);
    }
    return r;
  }

  /**
   * What is known about the container now. Starts a runtime lookup in the background when none
   * was made yet or the last one expired. Never waits.
   */
  get(ident: CgroupContainer): ResolvedContainer {
    const r = this.record(ident);
    this.refresh(r);
    return r.resolved;
  }

  /**
   * Like get(), but waits up to `timeoutMs` for a lookup in flight. A lookup that takes longer
   * keeps going and fills the cache for later events.
   */
  async resolve(ident: CgroupContainer, timeoutMs: number): Promise<ResolvedContainer> {
    const r = this.waiterRecord(ident, timeoutMs);
    if (r.inflight && timeoutMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        r.inflight.then(() => false),
        new Promise<boolean>((res) => {
          timer = setTimeout(() => res(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) this.counters.waitTimeouts++;
    }
    return r.resolved;
  }

  /**
   * True when resolve(ident, timeoutMs) would answer at once, with what get() gives: no runtime
   * lookup in flight once resolve's own checks have run (they run here, starting a lookup if one
   * is due). The process table's synchronous exec path asks this before it skips the wait.
   */
  answersNow(ident: CgroupContainer, timeoutMs: number): boolean {
    return timeoutMs <= 0 || this.waiterRecord(ident, timeoutMs).inflight === undefined;
  }

  /** The record, refreshed as for a caller prepared to wait `timeoutMs` (resolve, answersNow). */
  private waiterRecord(ident: CgroupContainer, timeoutMs: number): Record_ {
    const r = this.record(ident);
    // Someone is prepared to wait for the answer and the last try failed: try again now rather
    // than at failureRetry, so the event waiting is judged with what the runtime says.
    if (timeoutMs > 0 && !r.inflight && r.failedAt !== undefined && this.now() - r.failedAt >= WAITER_RETRY_MS) r.expires = 0;
    this.refresh(r);
    return r;
  }

  /** Forget a container (it was removed). */
  forget(fullId: string): void {
    this.records.delete(fullId);
  }

  private refresh(r: Record_): void {
    if (r.inflight || (r.expires !== 0 && this.now() < r.expires)) return;
    const clients = this.clients.filter((c) => c.handles(r.ident.type));
    if (clients.length === 0) {
      // Nobody to ask: the cgroup's word is all there is, and it is final.
      r.resolved = { ...r.resolved, final: true };
      r.expires = Number.MAX_SAFE_INTEGER;
      return;
    }
    this.counters.lookups++;
    r.inflight = this.lookup(r, clients).finally(() => {
      r.inflight = undefined;
    });
  }

  private async lookup(r: Record_, clients: RuntimeClient[]): Promise<void> {
    let failed = false;
    for (const client of clients) {
      let answer: RuntimeAnswer | null;
      try {
        answer = await client.inspect(r.ident.full_id);
      } catch {
        failed = true;
        continue;
      }
      if (!answer) continue;
      this.counters.found++;
      const base = baseInfo(r.ident);
      const container: ContainerInfo = { ...base.container, ...answer.container, id: r.ident.id, full_id: answer.container.full_id ?? r.ident.full_id };
      // The cgroup's pod UID stays when the runtime has no k8s labels (CRI pods seen through docker).
      const k8s = answer.k8s || base.k8s ? { ...base.k8s, ...answer.k8s } : undefined;
      r.resolved = { container, k8s, final: true };
      r.expires = this.now() + this.positiveTtl;
      r.failedAt = undefined;
      return;
    }
    if (failed) {
      this.counters.errors++;
      // Keep a previous good answer through a runtime hiccup; else the cgroup's word, not final:
      // the runtime is asked again once failureRetry has passed.
      if (!(r.resolved.final && r.resolved.container.name !== undefined)) r.resolved = baseInfo(r.ident);
      r.failedAt = this.now();
      r.expires = r.failedAt + this.failureRetry;
      return;
    }
    r.failedAt = undefined;
    this.counters.missing++;
    // Every runtime says it does not know the id: the cgroup's word is all there is.
    r.resolved = { ...baseInfo(r.ident), final: true };
    r.expires = this.now() + this.negativeTtl;
  }
}

/** The container record of a host process, as Falco names it. */
export function hostContainer(): ContainerInfo {
  return { id: 'host', name: 'host' };
}
