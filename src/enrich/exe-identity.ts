/**
 * Facts about a process's executable file: whether it lives on a container's writable overlay
 * layer (proc.is_exe_upper_layer: dropped in after the image was built, the mark of a miner
 * downloaded into a running container), whether the process's user may write it
 * (proc.is_exe_writable), its inode and times (proc.exe_ino*), and its SHA-256
 * (mw.proc.exe_sha256).
 *
 * Everything is read through /proc/PID: /proc/PID/exe opens the very file the process runs, even
 * when it was deleted, lives in a memfd, or sits in another mount namespace, where a path lookup
 * from here would find nothing or, worse, a different file.
 *
 * Upper layer: the exe path (as the process sees it) is matched against /proc/PID/mountinfo (same
 * view) for the mount holding it; when that is an overlay, the file is on the upper layer exactly
 * when the upper directory holds it. The upperdir option is a path in the mounter's namespace
 * (the host's, for container runtimes), checked here under `hostRoot`.
 *
 * Hashing reads whole files, so it runs off the event path, at most `concurrency` at a time, and
 * once per file version: results are cached by (device, inode, mtime, size).
 */
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { posix as posixPath } from 'node:path';
import { CAP_DAC_OVERRIDE, hasCap, readlinkQuiet, type ExeStat } from '../platform/procfs.js';

// ---- mountinfo ------------------------------------------------------------------------------------

export interface MountEntry {
  id: number;
  parent: number;
  /** "major:minor" */
  dev: string;
  /** The directory of the filesystem this mount shows (not "/" for bind mounts of a subtree). */
  root: string;
  mountPoint: string;
  /** Per-mount options (rw/ro, nosuid, …). */
  options: string[];
  fstype: string;
  source: string;
  /** Per-superblock options (for overlay: lowerdir=, upperdir=, workdir=). */
  superOptions: string[];
}

/** Undo mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash, \054 comma). */
export function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse /proc/PID/mountinfo; malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || f.length < sep + 3) continue;
    const id = Number(f[0]);
    const parent = Number(f[1]);
    if (!Number.isInteger(id) || !Number.isInteger(parent)) continue;
    out.push({
      id,
      parent,
      dev: f[2]!,
      root: unescapeMount(f[3]!),
      mountPoint: unescapeMount(f[4]!),
      options: f[5]!.split(','),
      fstype: f[sep + 1]!,
      source: unescapeMount(f[sep + 2]!),
      superOptions: (f[sep + 3] ?? '').split(',').map(unescapeMount),
    });
  }
  return out;
}

const underMount = (path: string, mp: string): boolean => mp === '/' || path === mp || path.startsWith(mp + '/');

/**
 * The mount holding `path`: the longest mount point that is a prefix of it; among mounts on the
 * same point, the last listed (the one on top).
 */
export function findMount(mounts: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    if (!underMount(path, m.mountPoint)) continue;
    if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
  }
  return best;
}

export function superOption(m: MountEntry, key: string): string | undefined {
  const prefix = key + '=';
  const hit = m.superOptions.find((o) => o.startsWith(prefix));
  return hit === undefined ? undefined : hit.slice(prefix.length);
}

/** The path of `path` inside the filesystem that mount `m` shows. */
export function pathInFilesystem(m: MountEntry, path: string): string {
  const rest = m.mountPoint === '/' ? path : path.slice(m.mountPoint.length);
  return posixPath.join(m.root, rest || '/');
}

export type UpperCheck = { upper: boolean; reason: string };

/**
 * Whether `path` (in the process's view) is a regular file on the upper layer of the overlay that
 * holds it. A whiteout (a 0:0 character device) marks a file deleted from a lower layer: not there.
 */
export function isOnUpperLayer(mounts: readonly MountEntry[], path: string, hostRoot = ''): UpperCheck {
  const m = findMount(mounts, path);
  if (!m) return { upper: false, reason: 'no mount holds the path' };
  if (m.fstype !== 'overlay') return { upper: false, reason: `on ${m.fstype}, not overlay` };
  const upperdir = superOption(m, 'upperdir');
  if (!upperdir) return { upper: false, reason: 'read-only overlay (no upperdir)' };
  const candidate = hostRoot.replace(/\/+$/, '') + posixPath.join(upperdir, pathInFilesystem(m, path));
  try {
    const st = lstatSync(candidate);
    if (st.isCharacterDevice() && st.rdev === 0) return { upper: false, reason: 'whiteout in upper layer' };
    return { upper: st.isFile(), reason: st.isFile() ? `in ${upperdir}` : 'not a regular file in upper layer' };
  } catch {
    return { upper: false, reason: 'not in upper layer' };
  }
}

// ---- writability ----------------------------------------------------------------------------------

export interface Credentials {
  /** Effective uid and gid (what Falco reports as user.uid / group.gid). */
  uid?: number;
  gid?: number;
  groups?: readonly number[];
  capEff?: bigint;
}

/**
 * Whether a process with these credentials may write a file with this owner and mode, following
 * Falco: the owner always counts as able to (it can chmod the file), then the kernel's own
 * checks: a read-only mount refuses, then owner/group/other bits, then CAP_DAC_OVERRIDE.
 */
export function exeWritable(
  st: { uid: number; gid: number; mode: number },
  cred: Credentials,
  readOnlyMount: boolean,
): boolean | undefined {
  if (cred.uid === undefined) return undefined;
  if (st.uid === cred.uid) return true;
  if (readOnlyMount) return false;
  const inGroup = cred.gid === st.gid || (cred.groups?.includes(st.gid) ?? false);
  if (inGroup ? (st.mode & 0o020) !== 0 : (st.mode & 0o002) !== 0) return true;
  // Without capability data, uid 0 is assumed to hold CAP_DAC_OVERRIDE, as it normally does.
  const dacOverride = hasCap(cred.capEff, CAP_DAC_OVERRIDE) ?? cred.uid === 0;
  return dacOverride;
}

// ---- the inspector --------------------------------------------------------------------------------

export interface ExeFacts {
  upperLayer?: boolean;
  writable?: boolean;
  ino?: number;
  dev?: number;
  size?: number;
  ctimeNs?: bigint;
  mtimeNs?: bigint;
  /** fileKey() of the file: its hash may be in the cache already (cachedHash). */
  key?: string;
}

export interface ExeSubject extends Credentials {
  pid: number;
  /** /proc/PID/exe target (without " (deleted)"). */
  exepath?: string;
  deleted?: boolean;
  memfd?: boolean;
  /** /proc/PID/root target: "/" unless the process is chrooted within our mount namespace. */
  root?: string;
  /** ns/mnt link text, the cache key for the mount table. */
  mntns?: string;
  /** stat() of /proc/PID/exe when the caller has just taken it (the /proc read's image mark): not taken again. */
  exeStat?: ExeStat;
}

export interface ExeIdentityOptions {
  procRoot?: string;
  /** Where the host's filesystem is visible from here (default '': we run on the host). */
  hostRoot?: string;
  /** How long a mount namespace's table is reused (default 2000 ms). */
  mountCacheMs?: number;
  /** Hashing: largest file hashed (default 512 MiB), files hashed at once (2), results kept (8192). */
  hashMaxBytes?: number;
  hashConcurrency?: number;
  hashCacheSize?: number;
  now?: () => number;
}

export interface HashStats {
  /** Files read and hashed. */
  hashed: number;
  /** Answers served from the cache or an identical hash in flight. */
  cacheHits: number;
  /** Files over hashMaxBytes, not hashed. */
  tooLarge: number;
  /** Reads that failed (process gone, permission) or raced with a change to the file. */
  failures: number;
  bytes: number;
}

export class ExeIdentity {
  private readonly procRoot: string;
  private readonly hostRoot: string;
  private readonly mountCacheMs: number;
  private readonly maxBytes: number;
  private readonly concurrency: number;
  private readonly cacheSize: number;
  private readonly now: () => number;
  private readonly mountCache = new Map<string, { at: number; mounts: MountEntry[]; pid: number }>();
  private selfMntns: string | undefined;
  private readonly hashes = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  readonly hashStats: HashStats = { hashed: 0, cacheHits: 0, tooLarge: 0, failures: 0, bytes: 0 };

  constructor(opts: ExeIdentityOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.hostRoot = (opts.hostRoot ?? '').replace(/\/+$/, '');
    this.mountCacheMs = opts.mountCacheMs ?? 2000;
    this.maxBytes = opts.hashMaxBytes ?? 512 * 1024 * 1024;
    this.concurrency = Math.max(1, opts.hashConcurrency ?? 2);
    this.cacheSize = opts.hashCacheSize ?? 8192;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The mount table as process `pid` sees it, shared by every process of its mount namespace.
   * `root` is the process's /proc/PID/root link when the caller has just read it.
   */
  mounts(pid: number, mntns?: string, root?: string): MountEntry[] | undefined {
    const now = this.now();
    // The kernel hands a dead namespace's inode number to the next one at once (`ip netns exec`
    // makes short-lived ones), and a chroot sees another table in the same namespace: a cached
    // table counts only while the process that read it is still in that namespace, and per root.
    // Our own namespace lives as long as we do, so its number names it alone: a storm of
    // short-lived commands on the host (each reader gone by the next exec) reads it once.
    const key = mntns ? `${mntns}|${root ?? this.link(`${this.procRoot}/${pid}/root`) ?? ''}` : undefined;
    if (key) {
      const hit = this.mountCache.get(key);
      if (hit && now - hit.at < this.mountCacheMs && (mntns === this.ownMntns() || this.link(`${this.procRoot}/${hit.pid}/ns/mnt`) === mntns)) return hit.mounts;
    }
    let text: string;
    try {
      // Read whole (readFileSync reads size-0 procfs files to EOF): a big host has thousands of mounts.
      text = readFileSync(`${this.procRoot}/${pid}/mountinfo`, 'utf8');
    } catch {
      return undefined;
    }
    const mounts = parseMountinfo(text);
    if (key) {
      if (this.mountCache.size > 512) this.mountCache.clear();
      this.mountCache.set(key, { at: now, mounts, pid });
    }
    return mounts;
  }

  private link(path: string): string | undefined {
    return readlinkQuiet(path);
  }

  /** The agent's own mount namespace (ns/mnt link text), read once. */
  private ownMntns(): string | undefined {
    if (this.selfMntns === undefined) this.selfMntns = this.link(`${this.procRoot}/self/ns/mnt`) ?? '';
    return this.selfMntns || undefined;
  }

  /** The process's view of its exe path: a chroot within our namespace shows up in the link. */
  private viewPath(s: ExeSubject): string | undefined {
    if (!s.exepath || !s.exepath.startsWith('/')) return undefined;
    const root = s.root && s.root !== '/' ? s.root.replace(/\/+$/, '') : '';
    if (root && s.exepath.startsWith(root + '/')) return s.exepath.slice(root.length);
    return s.exepath;
  }

  /** Upper layer, writability, inode and times. Synchronous: a stat or two and a cached table. */
  inspect(s: ExeSubject): ExeFacts {
    const facts: ExeFacts = {};
    let st: ExeStat | undefined = s.exeStat;
    if (st === undefined) {
      try {
        st = statSync(`${this.procRoot}/${s.pid}/exe`, { bigint: true });
      } catch {
        st = undefined;
      }
    }
    if (st) {
      facts.ino = Number(st.ino);
      facts.dev = Number(st.dev);
      facts.size = Number(st.size);
      facts.ctimeNs = st.ctimeNs;
      facts.mtimeNs = st.mtimeNs;
      facts.key = fileKey(st);
    }
    if (s.memfd) {
      // An in-memory file is on no layer of any image.
      facts.upperLayer = false;
    }
    const view = s.memfd ? undefined : this.viewPath(s);
    const mounts = view ? this.mounts(s.pid, s.mntns, s.root) : undefined;
    if (view && mounts) {
      if (!s.deleted) {
        facts.upperLayer = isOnUpperLayer(mounts, view, this.hostRoot).upper;
      } else if (findMount(mounts, view)?.fstype !== 'overlay') {
        facts.upperLayer = false;
      }
      // A file deleted from an overlay is gone from the upper directory too: we cannot tell.
    }
    if (st) {
      const m = view && mounts ? findMount(mounts, view) : undefined;
      const ro = m ? m.options.includes('ro') || m.superOptions.includes('ro') : false;
      facts.writable = exeWritable({ uid: Number(st.uid), gid: Number(st.gid), mode: Number(st.mode) }, s, ro);
    }
    return facts;
  }

  /** Cached hash of a file version, if it was hashed already. */
  cachedHash(key: string): string | undefined {
    return this.hashes.get(key);
  }

  /**
   * SHA-256 (hex) of the file process `pid` runs, read through /proc/PID/exe. Resolves undefined
   * when the process is gone, the file is too large, or it changed while being read. Never rejects.
   */
  async sha256(pid: number): Promise<string | undefined> {
    return (await this.hashExe(pid))?.sha256;
  }

  /** sha256() with the inode and device it hashed, so a caller can tell which file it was. */
  async hashExe(pid: number): Promise<{ sha256: string; ino: number; dev: number } | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(`${this.procRoot}/${pid}/exe`, 'r');
    } catch {
      this.hashStats.failures++;
      return undefined;
    }
    let handedOff = false;
    try {
      const st = await fh.stat({ bigint: true });
      const id = { ino: Number(st.ino), dev: Number(st.dev) };
      const key = fileKey(st);
      const hit = this.hashes.get(key);
      if (hit !== undefined) {
        this.hashStats.cacheHits++;
        return { sha256: hit, ...id };
      }
      let job = this.inflight.get(key);
      if (job) {
        this.hashStats.cacheHits++;
      } else {
        if (st.size > BigInt(this.maxBytes)) {
          this.hashStats.tooLarge++;
          return undefined;
        }
        // Hashing takes over the handle (and closes it); the one that opened it last is reused.
        handedOff = true;
        const handle = fh;
        job = this.withSlot(() => this.hashHandle(handle, key)).finally(() => this.inflight.delete(key));
        this.inflight.set(key, job);
      }
      const digest = await job;
      return digest === undefined ? undefined : { sha256: digest, ...id };
    } catch {
      this.hashStats.failures++;
      return undefined;
    } finally {
      if (!handedOff) await fh.close().catch(() => undefined);
    }
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    while (this.running >= this.concurrency) await new Promise<void>((res) => this.waiting.push(res));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /** Hash an open file in chunks, then make sure it did not change under us. */
  private async hashHandle(fh: FileHandle, key: string): Promise<string | undefined> {
    try {
      const h = createHash('sha256');
      const buf = Buffer.allocUnsafe(1024 * 1024);
      let total = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, total);
        if (bytesRead <= 0) break;
        h.update(buf.subarray(0, bytesRead));
        total += bytesRead;
        if (total > this.maxBytes) {
          this.hashStats.tooLarge++;
          return undefined;
        }
      }
      const after = fileKey(await fh.stat({ bigint: true }));
      if (after !== key) {
        this.hashStats.failures++;
        return undefined;
      }
      const digest = h.digest('hex');
      this.hashStats.hashed++;
      this.hashStats.bytes += total;
      if (this.hashes.size >= this.cacheSize) {
        const oldest = this.hashes.keys().next().value;
        if (oldest !== undefined) this.hashes.delete(oldest);
      }
      this.hashes.set(key, digest);
      return digest;
    } catch {
      this.hashStats.failures++;
      return undefined;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }
}

/** One version of one file: device, inode, modification time and size. */
export function fileKey(st: { dev: bigint; ino: bigint; mtimeNs: bigint; size: bigint }): string {
  return `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}`;
}
