/**
 * Pod context for syscall events: container id → pod name, namespace, uid, labels, node, images,
 * service account and owner, from one watch on this node's pods (fieldSelector
 * spec.nodeName=NODE), never a request per event.
 *
 * The watch follows the API's list+watch protocol:
 * - list (the node's pods and a resourceVersion), then watch from that resourceVersion with
 *   bookmarks, so a reconnect resumes where the last event or bookmark left off;
 * - a watch that ends normally (the server's timeoutSeconds) is resumed at once;
 * - "410 Gone" (the resourceVersion fell out of the server's window, as an ERROR event or as the
 *   status of the watch request) means events were missed: relist;
 * - a failure (API server down, connection reset, a 5xx) is retried with exponential backoff and
 *   jitter, resuming from the last resourceVersion; nothing throws out of the loop, and the pods
 *   already known keep enriching events meanwhile;
 * - every `resyncIntervalMs` the list is taken again, so a watch that silently went astray cannot
 *   keep the cache wrong for long.
 *
 * Owners: a pod's controller is often a ReplicaSet (of a Deployment) or a Job (of a CronJob); the
 * top owner is what a responder acts on, so the controller is read once (cached) and followed
 * through its own ownerReferences. Without the right to read it, the direct owner is kept.
 */
import type { K8sInfo, SyscallEvent } from '../events.js';
import { type ApiCall, K8sApiError, type K8sClient, apiFailure, callApi, describeFailure } from '../k8s-api/client.js';

export interface PodWatcherLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PodWatcherOptions {
  /** The node whose pods are watched (spec.nodeName). */
  nodeName: string;
  /** Full relist interval (default 5 min; 0: never). */
  resyncIntervalMs?: number;
  /** First and longest wait between retries after a failure (default 500 ms, 30 s). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Server-side watch timeout (default 300 s; jittered by up to 20 % so agents do not reconnect together). */
  watchTimeoutS?: number;
  /** Follow ReplicaSet → Deployment and Job → CronJob (default true). */
  resolveOwners?: boolean;
  /** How long a deleted pod still enriches events (default 30 s): a process's last events arrive after. */
  deletedGraceMs?: number;
  log?: PodWatcherLog;
  now?: () => number;
  /** Random number in [0, 1), for jitter (tests pass a fixed one). */
  random?: () => number;
}

export interface PodWatcherStats {
  pods: number;
  containers: number;
  lists: number;
  watches: number;
  events: number;
  bookmarks: number;
  /** Relists forced by 410 Gone. */
  expired: number;
  resyncs: number;
  failures: number;
  /** Owner lookups made (cached afterwards). */
  ownerLookups: number;
  resourceVersion?: string;
  /** The last failure, in words (a 403 says which RBAC rule is missing). */
  lastError?: string;
  /** True after a successful list, false again after a failure until the next one. */
  synced: boolean;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** "containerd://<id>", "docker://<id>", "cri-o://<id>" → "<id>". */
export function stripRuntimePrefix(containerId: string): string {
  const i = containerId.indexOf('://');
  return i >= 0 ? containerId.slice(i + 3) : containerId;
}

interface OwnerRef {
  kind: string;
  name: string;
  uid?: string;
  apiVersion?: string;
}

function controllerOf(meta: Json | undefined): OwnerRef | undefined {
  const refs = arr(meta?.ownerReferences).map(obj).filter((r): r is Json => !!r);
  const r = refs.find((x) => x.controller === true) ?? refs[0];
  const kind = str(r?.kind);
  const name = str(r?.name);
  if (!r || !kind || !name) return undefined;
  return { kind, name, uid: str(r.uid), apiVersion: str(r.apiVersion) };
}

/** A pod object (as listed or as a watch event carries it) → what events are enriched with. */
export function podInfo(pod: unknown, owners?: OwnerRef[]): { info: K8sInfo; containerIds: string[] } | undefined {
  const p = obj(pod);
  const meta = obj(p?.metadata);
  const spec = obj(p?.spec);
  const status = obj(p?.status);
  const name = str(meta?.name);
  const ns = str(meta?.namespace);
  if (!name || !ns) return undefined;
  const info: K8sInfo = { ns_name: ns, pod_name: name };
  const uid = str(meta?.uid);
  if (uid) info.pod_uid = uid;
  const labels = obj(meta?.labels);
  info.pod_labels = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (typeof v === 'string') info.pod_labels[k] = v;
  const ip = str(status?.podIP);
  if (ip) info.pod_ip = ip;
  const node = str(spec?.nodeName);
  if (node) info.node_name = node;
  const sa = str(spec?.serviceAccountName) ?? str(spec?.serviceAccount);
  if (sa) info.service_account = sa;
  const images: string[] = [];
  for (const key of ['initContainers', 'containers', 'ephemeralContainers']) {
    for (const c of arr(spec?.[key])) {
      const image = str(obj(c)?.image);
      if (image && !images.includes(image)) images.push(image);
    }
  }
  info.images = images;
  const chain = owners ?? (controllerOf(meta) ? [controllerOf(meta)!] : []);
  if (chain.length > 0) {
    info.owners = chain;
    info.owner_kind = chain[chain.length - 1]!.kind;
    info.owner_name = chain[chain.length - 1]!.name;
  }
  const containerIds: string[] = [];
  for (const key of ['initContainerStatuses', 'containerStatuses', 'ephemeralContainerStatuses']) {
    for (const c of arr(status?.[key])) {
      const id = str(obj(c)?.containerID);
      if (id) containerIds.push(stripRuntimePrefix(id));
    }
  }
  return { info, containerIds };
}

interface PodEntry {
  info: K8sInfo;
  containerIds: string[];
  /** When a deleted pod stops enriching (ms). */
  goneAt?: number;
}

/** A watch ended: normally (the server closed it), expired (410: relist), or with an error. */
type WatchEnd = { kind: 'closed' } | { kind: 'expired' } | { kind: 'error'; error: unknown } | { kind: 'stopped' };

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export class PodWatcher {
  private readonly byUid = new Map<string, PodEntry>();
  private readonly byContainer = new Map<string, PodEntry>();
  /** `${ns}/${kind}/${name}` → the chain above that owner (empty when it has none), or a failure marker. */
  private readonly ownerCache = new Map<string, { chain: OwnerRef[]; uid?: string; until: number }>();
  private readonly counters = { lists: 0, watches: 0, events: 0, bookmarks: 0, expired: 0, resyncs: 0, failures: 0, ownerLookups: 0 };
  private rv: string | undefined;
  private lastError: string | undefined;
  private synced = false;
  private stopper = new AbortController();
  private currentWatch: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncDue = false;
  private syncWaiters: Array<() => void> = [];
  private readonly opts: Required<Omit<PodWatcherOptions, 'log'>> & { log?: PodWatcherLog };
  private readonly call: ApiCall = { verb: 'list', resource: 'pods', group: '' };

  constructor(private readonly client: K8sClient, opts: PodWatcherOptions) {
    if (!opts.nodeName) throw new Error('pod enrichment needs the node name: set k8s.api.node_name or the NODE_NAME env (fieldRef spec.nodeName in the DaemonSet)');
    this.opts = {
      resyncIntervalMs: 5 * 60_000,
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      watchTimeoutS: 300,
      resolveOwners: true,
      deletedGraceMs: 30_000,
      now: Date.now,
      random: Math.random,
      ...opts,
    };
  }

  get stats(): PodWatcherStats {
    return {
      pods: this.byUid.size,
      containers: this.byContainer.size,
      ...this.counters,
      resourceVersion: this.rv,
      lastError: this.lastError,
      synced: this.synced,
    };
  }

  /** Start listing and watching in the background. Never throws; failures are logged and retried. */
  start(): void {
    if (this.loop) return;
    this.stopper = new AbortController();
    this.loop = this.run().catch((e: unknown) => {
      // Not expected: run() catches everything. Logged so a bug is seen, never thrown.
      this.opts.log?.error({ err: String(e) }, 'pod watch loop ended');
    });
    if (this.opts.resyncIntervalMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncIntervalMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.stopper.abort();
    this.currentWatch?.abort();
    await this.loop;
    this.loop = undefined;
  }

  /** Take a full list again at the next opportunity (the current watch is ended). */
  resync(): void {
    this.resyncDue = true;
    this.currentWatch?.abort();
  }

  /** Resolves after the next successful list (the first one, or the next after now). */
  whenSynced(): Promise<void> {
    return new Promise((r) => this.syncWaiters.push(r));
  }

  // ---- lookups ---------------------------------------------------------------------------------

  /** The pod a container belongs to, by its full id (without a runtime prefix). */
  podOfContainer(fullId: string): K8sInfo | undefined {
    const e = this.byContainer.get(fullId);
    return e && this.live(e) ? e.info : undefined;
  }

  podByUid(uid: string): K8sInfo | undefined {
    const e = this.byUid.get(uid);
    return e && this.live(e) ? e.info : undefined;
  }

  private live(e: PodEntry): boolean {
    return e.goneAt === undefined || e.goneAt > this.opts.now();
  }

  /**
   * Fill `ev.k8s` from the pod of the event's container: by container id, else by the pod uid the
   * cgroup path gave (a container that started before the pod's status named it). The K8sInfo
   * object is shared between events and never changed once published.
   */
  enrich(ev: SyscallEvent): void {
    const c = ev.container;
    if (!c || c.id === 'host') return;
    let info = c.full_id ? this.podOfContainer(c.full_id) : undefined;
    if (!info && ev.k8s?.pod_uid) info = this.podByUid(ev.k8s.pod_uid);
    if (info) ev.k8s = info;
  }

  // ---- the cache -------------------------------------------------------------------------------

  private put(pod: unknown): void {
    const parsed = podInfo(pod);
    if (!parsed) return;
    const uid = parsed.info.pod_uid ?? `${parsed.info.ns_name}/${parsed.info.pod_name}`;
    const prev = this.byUid.get(uid);
    // Keep an owner chain already resolved for the same controller.
    const direct = parsed.info.owners?.[0];
    if (prev?.info.owners && direct && prev.info.owners[0]?.uid === direct.uid && prev.info.owners[0]?.name === direct.name) {
      parsed.info.owners = prev.info.owners;
      parsed.info.owner_kind = prev.info.owner_kind;
      parsed.info.owner_name = prev.info.owner_name;
    }
    const entry: PodEntry = { info: parsed.info, containerIds: parsed.containerIds };
    if (prev) for (const id of prev.containerIds) if (this.byContainer.get(id) === prev) this.byContainer.delete(id);
    this.byUid.set(uid, entry);
    for (const id of parsed.containerIds) this.byContainer.set(id, entry);
    if (this.opts.resolveOwners && direct && (!prev?.info.owners || parsed.info.owners === undefined || parsed.info.owners.length === 1)) {
      void this.resolveOwners(uid, entry, direct);
    }
  }

  private remove(pod: unknown): void {
    const meta = obj(obj(pod)?.metadata);
    const uid = str(meta?.uid) ?? `${str(meta?.namespace)}/${str(meta?.name)}`;
    const e = this.byUid.get(uid);
    if (e) e.goneAt = this.opts.now() + this.opts.deletedGraceMs;
  }

  /** After a list: the listed pods replace the cache; pods not listed any more get their grace. */
  private replaceAll(items: unknown[]): void {
    const seen = new Set<string>();
    for (const p of items) {
      this.put(p);
      const meta = obj(obj(p)?.metadata);
      seen.add(str(meta?.uid) ?? `${str(meta?.namespace)}/${str(meta?.name)}`);
    }
    const now = this.opts.now();
    for (const [uid, e] of this.byUid) if (!seen.has(uid) && e.goneAt === undefined) e.goneAt = now + this.opts.deletedGraceMs;
    this.sweep();
  }

  private sweep(): void {
    const now = this.opts.now();
    for (const [uid, e] of this.byUid) {
      if (e.goneAt === undefined || e.goneAt > now) continue;
      this.byUid.delete(uid);
      for (const id of e.containerIds) if (this.byContainer.get(id) === e) this.byContainer.delete(id);
    }
  }

  // ---- owners ----------------------------------------------------------------------------------

  /** The owners above a controller (ReplicaSet → Deployment, Job → CronJob), cached. */
  private async chainAbove(ns: string, ref: OwnerRef): Promise<OwnerRef[]> {
    if (ref.kind !== 'ReplicaSet' && ref.kind !== 'Job') return [];
    const key = `${ns}/${ref.kind}/${ref.name}`;
    const hit = this.ownerCache.get(key);
    if (hit && hit.until > this.opts.now() && (hit.uid === undefined || ref.uid === undefined || hit.uid === ref.uid)) return hit.chain;
    this.counters.ownerLookups++;
    const call: ApiCall = ref.kind === 'ReplicaSet'
      ? { verb: 'get', resource: 'replicasets', group: 'apps', namespace: ns }
      : { verb: 'get', resource: 'jobs', group: 'batch', namespace: ns };
    let chain: OwnerRef[] = [];
    let ttl = 60 * 60_000;
    try {
      const o = await callApi<unknown>(call, () => (ref.kind === 'ReplicaSet'
        ? this.client.apps.readNamespacedReplicaSet({ name: ref.name, namespace: ns })
        : this.client.batch.readNamespacedJob({ name: ref.name, namespace: ns })));
      const up = controllerOf(obj(obj(o)?.metadata));
      if (up) chain = [up];
    } catch (e) {
      // Keep the direct owner; say once why the top one is unknown; ask again later.
      ttl = 5 * 60_000;
      const msg = e instanceof K8sApiError ? e.message : String(e);
      if (this.lastError !== msg) this.opts.log?.warn({ err: msg }, 'cannot resolve the owner of a pod; keeping its direct owner');
      this.lastError = msg;
    }
    if (this.ownerCache.size > 4096) this.ownerCache.clear();
    this.ownerCache.set(key, { chain, uid: ref.uid, until: this.opts.now() + ttl });
    return chain;
  }

  private async resolveOwners(uid: string, entry: PodEntry, direct: OwnerRef): Promise<void> {
    const ns = entry.info.ns_name!;
    const above = await this.chainAbove(ns, direct);
    if (above.length === 0) return;
    // Only if the entry is still current: a newer version of the pod may have replaced it.
    if (this.byUid.get(uid) !== entry) return;
    const owners = [direct, ...above];
    const top = owners[owners.length - 1]!;
    // A new object: events already enriched keep theirs unchanged.
    entry.info = { ...entry.info, owners, owner_kind: top.kind, owner_name: top.name };
  }

  // ---- list + watch ----------------------------------------------------------------------------

  private fieldSelector(): string {
    return `spec.nodeName=${this.opts.nodeName}`;
  }

  private async list(): Promise<void> {
    this.counters.lists++;
    const items: unknown[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await callApi(this.call, () => this.client.core.listPodForAllNamespaces({ fieldSelector: this.fieldSelector(), limit: 500, _continue: cont }));
      items.push(...page.items);
      cont = page.metadata?._continue || undefined;
      rv = page.metadata?.resourceVersion;
    } while (cont);
    this.replaceAll(items);
    this.rv = rv;
    if (!this.synced) this.opts.log?.info({ node: this.opts.nodeName, pods: this.byUid.size }, 'pod enrichment synced');
    this.synced = true;
    this.lastError = undefined;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w();
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let settled = false;
      const finish = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        resolve(end);
      };
      const jitter = 1 + 0.2 * this.opts.random();
      const timeoutS = Math.max(1, Math.round(this.opts.watchTimeoutS * jitter));
      // The server sends a bookmark about every minute; no byte for longer than the timeout plus a
      // margin means a dead connection.
      const w = this.client.watcher((timeoutS + 30) * 1000);
      this.counters.watches++;
      const query = { allowWatchBookmarks: true, fieldSelector: this.fieldSelector(), resourceVersion: this.rv, timeoutSeconds: timeoutS };
      w.watch('/api/v1/pods', query, (type: string, object: unknown) => {
        if (settled) return;
        this.counters.events++;
        const rv = str(obj(obj(object)?.metadata)?.resourceVersion);
        switch (type) {
          case 'ADDED':
          case 'MODIFIED':
            this.put(object);
            if (rv) this.rv = rv;
            break;
          case 'DELETED':
            this.remove(object);
            if (rv) this.rv = rv;
            break;
          case 'BOOKMARK':
            this.counters.bookmarks++;
            if (rv) this.rv = rv;
            break;
          case 'ERROR': {
            const status = obj(object);
            if (status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone') {
              finish({ kind: 'expired' });
            } else {
              finish({ kind: 'error', error: new Error(`watch error event: ${str(status?.message) ?? JSON.stringify(object)}`) });
            }
            this.currentWatch?.abort();
            break;
          }
          default:
            break;
        }
      }, (err: unknown) => {
        if (this.stopper.signal.aborted) return finish({ kind: 'stopped' });
        if (!err) return finish({ kind: 'closed' });
        if ((err as { name?: string }).name === 'AbortError' && this.resyncDue) return finish({ kind: 'closed' });
        const status = (err as { statusCode?: number }).statusCode;
        if (status === 410) return finish({ kind: 'expired' });
        finish({ kind: 'error', error: err });
      }).then((ctrl) => {
        this.currentWatch = ctrl;
        if (settled || this.stopper.signal.aborted || this.resyncDue) ctrl.abort();
      }, (err: unknown) => finish({ kind: 'error', error: err }));
    });
  }

  private fail(call: ApiCall, e: unknown): void {
    this.counters.failures++;
    this.synced = false;
    const msg = e instanceof K8sApiError ? e.message : describeFailure(call, apiFailure(e));
    if (msg !== this.lastError) this.opts.log?.warn({ err: msg }, 'pod watch failed; retrying with backoff, the pods already known keep enriching events');
    this.lastError = msg;
  }

  private async run(): Promise<void> {
    const signal = this.stopper.signal;
    let backoff = this.opts.backoffInitialMs;
    const wait = async (): Promise<void> => {
      // Full jitter in [backoff/2, backoff], doubling up to the max.
      await sleep(Math.round(backoff * (0.5 + 0.5 * this.opts.random())), signal);
      backoff = Math.min(this.opts.backoffMaxMs, backoff * 2);
    };
    while (!signal.aborted) {
      if (this.rv === undefined || this.resyncDue) {
        if (this.resyncDue && this.rv !== undefined) this.counters.resyncs++;
        this.resyncDue = false;
        try {
          await this.list();
          backoff = this.opts.backoffInitialMs;
        } catch (e) {
          this.fail(this.call, e);
          // Refused (401/403) is a config problem an operator fixes: ask again only slowly.
          const status = e instanceof K8sApiError ? e.failure.status : 0;
          if (status === 401 || status === 403) backoff = this.opts.backoffMaxMs;
          await wait();
          continue;
        }
      }
      if (signal.aborted) break;
      const eventsBefore = this.counters.events;
      const end = await this.watchOnce();
      this.currentWatch = undefined;
      if (end.kind === 'stopped') break;
      if (end.kind === 'expired') {
        this.counters.expired++;
        this.opts.log?.info({ resourceVersion: this.rv }, 'pod watch expired (410 Gone); relisting');
        this.rv = undefined;
        continue;
      }
      if (end.kind === 'error') {
        this.fail({ verb: 'watch', resource: 'pods', group: '' }, end.error);
        const status = (end.error as { statusCode?: number }).statusCode;
        if (status === 401 || status === 403) backoff = this.opts.backoffMaxMs;
        await wait();
        continue;
      }
      this.sweep();
      // Closed by the server: resume from the last resourceVersion, at once when the watch was a
      // normal one; a watch that ended without a single event (a proxy cutting streams) backs off.
      if (this.counters.events === eventsBefore && !this.resyncDue) await wait();
      else backoff = this.opts.backoffInitialMs;
    }
  }
}
