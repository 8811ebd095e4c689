/**
 * Which DNS resolvers a process may learn names from. For the host's network namespace: the
 * `nameserver` lines of the host's own files (the agent's, and the host init's through
 * /proc/1/root): a process there may have a private mount namespace with a resolv.conf of its own
 * choosing, and what it learned would name addresses for every process on the host.
 *
 * For any other network namespace (a container, a pod, `unshare -n`): whatever resolver the query
 * went to (the learner still requires the answer to come from there). Its processes' own
 * resolv.conf is deliberately not read: whoever owns that namespace owns that file too, and can
 * make it a FIFO or a file on a FUSE mount that never answers, and a read would hang the agent.
 * What is learned there names addresses only there, and never drives an action for real.
 *
 * The same module reads the host's resolvers for block_destination's protect list.
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { canonicalIp } from './dns.js';

/** The host's files: the stub's, and systemd-resolved's upstreams (what 127.0.0.53 asks). */
const HOST_RESOLV_FILES: readonly string[] = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'];

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
function netnsInode(link = '/proc/self/ns/net'): number | undefined {
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
function processResolvFile(procRoot: string, pid: number): string {
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

/** How long a read of the host's files is reused, ms: a query burst reads them once. */
const CACHE_MS = 10_000;

export interface ResolverSetsOptions {
  /** The host's network namespace (default: the agent's own). */
  hostNetns?: number;
  /** The host's resolv.conf files (default hostResolvFiles()). */
  hostFiles?: readonly string[];
}

export class ResolverSets {
  readonly hostNetns: number | undefined;
  private readonly hostFiles: readonly string[];
  private host: { at: number; ips: ReadonlySet<string> } | undefined;

  constructor(opts: ResolverSetsOptions = {}) {
    this.hostNetns = opts.hostNetns ?? netnsInode();
    this.hostFiles = opts.hostFiles ?? hostResolvFiles();
  }

  /**
   * The resolvers a process in `netns` may learn from; undefined: any (the one its query went to).
   */
  forNetns(netns: number): ReadonlySet<string> | undefined {
    if (netns !== this.hostNetns) return undefined;
    const t = Date.now();
    if (!this.host || t - this.host.at > CACHE_MS) this.host = { at: t, ips: new Set(readResolvers(this.hostFiles)) };
    return this.host.ips;
  }
}
