/**
 * Which DNS resolvers a process may learn names from: the `nameserver` lines of the resolv.conf it
 * uses. For the host's network namespace that is the host's own files (what the agent itself
 * reads): a process there may have a private mount namespace with a resolv.conf of its own
 * choosing, and whatever it learns would name addresses for every process on the host. For any
 * other network namespace (a container, a pod, `unshare -n`), the files of the querying process's
 * root (/proc/PID/root/etc/resolv.conf): what it learns stays in that namespace.
 *
 * The same module reads the host's resolvers for block_destination's protect list.
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { canonicalIp } from './dns.js';

/** The host's files: the stub's, and systemd-resolved's upstreams (what 127.0.0.53 asks). */
export const HOST_RESOLV_FILES: readonly string[] = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'];

/**
 * The host's files as the agent sees them and as the host's init sees them (/proc/1/root): in a
 * Kubernetes pod with hostPID (the chart's agent) the first are the pod's, the second the node's.
 */
export function hostResolvFiles(procRoot = '/proc'): string[] {
  return [...HOST_RESOLV_FILES, processResolvFile(procRoot, 1), `${procRoot}/1/root/run/systemd/resolve/resolv.conf`];
}

/** The canonical addresses of a resolv.conf's `nameserver` lines (comments, junk and zones dropped). */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const ip = canonicalIp(m[1]!);
    if (ip && !out.includes(ip)) out.push(ip);
  }
  return out;
}

/** The nameservers of every file of `files` that can be read, merged; [] when none. */
export function readResolvers(files: readonly string[]): string[] {
  const out = new Set<string>();
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue; // absent (no systemd-resolved), or the process is gone
    }
    for (const ip of parseResolvConf(text)) out.add(ip);
  }
  return [...out];
}

/** The inode number of a /proc/…/ns/net link ("net:[4026531840]"); undefined when unreadable. */
export function netnsInode(link = '/proc/self/ns/net'): number | undefined {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(link));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * /etc/resolv.conf as a process sees it, through /proc/PID/root. An absolute symlink there would be
 * followed in the agent's root, not the process's: it is resolved by hand, one level.
 */
export function processResolvFile(procRoot: string, pid: number): string {
  const root = `${procRoot}/${pid}/root`;
  const path = `${root}/etc/resolv.conf`;
  try {
    if (lstatSync(path).isSymbolicLink()) {
      const target = readlinkSync(path);
      if (target.startsWith('/')) return `${root}${target}`;
    }
  } catch {
    /* read below fails the same way */
  }
  return path;
}

export interface ResolverSetsOptions {
  /** The host's network namespace (default: the agent's own). */
  hostNetns?: number;
  /** The host's resolv.conf files (default hostResolvFiles()). */
  hostFiles?: readonly string[];
  /** Where /proc is (tests). */
  procRoot?: string;
  /** How long a read is reused, ms (default 10 s): a query burst reads each file once. */
  cacheMs?: number;
  now?: () => number;
}

interface Cached {
  at: number;
  ips: ReadonlySet<string>;
}

export class ResolverSets {
  readonly hostNetns: number | undefined;
  private readonly hostFiles: readonly string[];
  private readonly procRoot: string;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private host: Cached | undefined;
  /** By pid and by namespace: a process gone before its query was read uses its namespace's last. */
  private readonly byPid = new Map<number, Cached>();
  private readonly byNetns = new Map<number, Cached>();

  constructor(opts: ResolverSetsOptions = {}) {
    this.hostNetns = opts.hostNetns ?? netnsInode();
    this.hostFiles = opts.hostFiles ?? hostResolvFiles(opts.procRoot);
    this.procRoot = opts.procRoot ?? '/proc';
    this.cacheMs = opts.cacheMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** The resolvers a process in `netns` may learn from. */
  forProcess(netns: number, pid: number): ReadonlySet<string> {
    const t = this.now();
    if (netns === this.hostNetns) {
      if (!this.host || t - this.host.at > this.cacheMs) this.host = { at: t, ips: new Set(readResolvers(this.hostFiles)) };
      return this.host.ips;
    }
    const hit = this.byPid.get(pid);
    if (hit && t - hit.at <= this.cacheMs) return hit.ips;
    const ips = readResolvers([processResolvFile(this.procRoot, pid)]);
    if (ips.length === 0) return this.byNetns.get(netns)?.ips ?? new Set();
    const c: Cached = { at: t, ips: new Set(ips) };
    bounded(this.byPid, pid, c);
    bounded(this.byNetns, netns, c);
    return c.ips;
  }
}

function bounded<K>(m: Map<K, Cached>, k: K, v: Cached): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > 4096) m.delete(m.keys().next().value!);
}
