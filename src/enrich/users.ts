/**
 * uid → user name, home directory and shell; gid → group name (user.name, user.homedir,
 * user.shell, user.loginname, group.name).
 *
 * Names come from passwd and group files, never from NSS (no getpwuid in Node, and a network NSS
 * backend on the event path would stall it). Like Falco, a process in a container is named from
 * the container's own files, read through /proc/PID/root/etc/passwd: uid 101 is "nginx" inside
 * one image and "systemd-resolve" on the host. When the container's file cannot be read (no
 * /etc/passwd in a distroless image, the process gone) the host's files answer instead.
 *
 * Files are parsed once and re-read only when their mtime or size changes; that is checked at
 * most once per `checkIntervalMs` per file, so a burst of execs costs one stat, not thousands.
 */
import { readFileSync, statSync } from 'node:fs';

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface UserDbOptions {
  /** Host root directory holding etc/passwd and etc/group (default '/'). */
  hostRoot?: string;
  /** How often a cached file is re-checked for changes (default 1000 ms). */
  checkIntervalMs?: number;
  /** Most container files cached at once (default 256). */
  maxContainers?: number;
  /** Clock in ms, for tests (default Date.now). */
  now?: () => number;
}

/** The names of a process's ids (ProcessInfo's user, homedir, shell, group, loginname). */
export interface ProcessNames {
  readonly user?: string;
  readonly homedir?: string;
  readonly shell?: string;
  readonly group?: string;
  readonly loginname?: string;
}

/** Where to look: undefined for the host, else a container's root as seen from here. */
export interface UserScope {
  /** Cache key for this root (the container id): many pids share one container's files. */
  key: string;
  /** The root directory to read etc/passwd and etc/group under, e.g. "/proc/1234/root". */
  root: string;
}

/** Parse passwd text: name:password:uid:gid:gecos:home:shell. Malformed lines are skipped. */
export function parsePasswd(text: string): Map<number, UserEntry> {
  const out = new Map<number, UserEntry>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!/^\d+$/.test(f[2]!) || !Number.isInteger(uid)) continue;
    // The first entry for a uid wins, as getpwuid() returns it.
    if (!out.has(uid)) out.set(uid, { name: f[0]!, uid, gid: Number.isInteger(gid) ? gid : -1, home: f[5]!, shell: f[6]!.trim() });
  }
  return out;
}

/** Parse group text: name:password:gid:members. */
export function parseGroup(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2]!)) continue;
    const gid = Number(f[2]);
    if (!out.has(gid)) out.set(gid, f[0]!);
  }
  return out;
}

interface CachedFile<T> {
  path: string;
  /** null: the file could not be read. */
  data: T | null;
  mtimeMs: number;
  size: number;
  ino: number;
  checkedAt: number;
}

/** One parsed file kept fresh by mtime/size/inode. */
class FileCache<T> {
  private entry: CachedFile<T> | undefined;
  constructor(private readonly parse: (text: string) => T) {}

  /**
   * `anyPath`: the path is one of many ways to the same file, a container's /etc/passwd through
   * each of its processes' /proc/PID/root. Then a fresh answer holds whichever way it is asked
   * (each exec in a container came by a path of its own, and each re-read and re-parsed the file),
   * the file is told changed by its inode, size and mtime, and a way that has gone (its process
   * exited) says nothing about the file.
   */
  /** The data when checked less than `interval` ago (whatever the path), else undefined. */
  fresh(now: number, interval: number): T | null | undefined {
    const e = this.entry;
    return e && now - e.checkedAt < interval ? e.data : undefined;
  }

  get(path: string, now: number, interval: number, anyPath = false): T | null {
    const e = this.entry;
    if (e && (anyPath || e.path === path) && now - e.checkedAt < interval) return e.data;
    let st;
    try {
      st = statSync(path);
    } catch {
      if (anyPath) return e?.data ?? null;
      this.entry = { path, data: null, mtimeMs: 0, size: 0, ino: 0, checkedAt: now };
      return null;
    }
    if (e && (anyPath || e.path === path) && e.data !== null && e.mtimeMs === st.mtimeMs && e.size === st.size && e.ino === st.ino) {
      e.checkedAt = now;
      return e.data;
    }
    let data: T | null;
    try {
      data = this.parse(readFileSync(path, 'utf8'));
    } catch {
      data = null;
    }
    this.entry = { path, data, mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, checkedAt: now };
    return data;
  }
}

interface RootFiles {
  passwd: FileCache<Map<number, UserEntry>>;
  group: FileCache<Map<number, string>>;
}

/** What a RootFiles cache holds once parsed. */
type FileData<K extends keyof RootFiles> = RootFiles[K] extends FileCache<infer T> ? T : never;

const newRootFiles = (): RootFiles => ({ passwd: new FileCache(parsePasswd), group: new FileCache(parseGroup) });

export class UserDb {
  /** The host's files' paths (asked per exec: built once). */
  private readonly hostPaths: Record<keyof RootFiles, string>;
  private readonly interval: number;
  private readonly maxContainers: number;
  private readonly now: () => number;
  private readonly host = newRootFiles();
  /** Container id → its files; Map order doubles as LRU order. */
  private readonly containers = new Map<string, RootFiles>();

  constructor(opts: UserDbOptions = {}) {
    const root = (opts.hostRoot ?? '/').replace(/\/+$/, '');
    this.hostPaths = { passwd: `${root}/etc/passwd`, group: `${root}/etc/group` };
    this.interval = opts.checkIntervalMs ?? 1000;
    this.maxContainers = opts.maxContainers ?? 256;
    this.now = opts.now ?? Date.now;
  }

  private filesFor(scope: UserScope): RootFiles {
    let f = this.containers.get(scope.key);
    if (f) {
      this.containers.delete(scope.key);
    } else {
      f = newRootFiles();
      if (this.containers.size >= this.maxContainers) {
        const oldest = this.containers.keys().next().value;
        if (oldest !== undefined) this.containers.delete(oldest);
      }
    }
    this.containers.set(scope.key, f);
    return f;
  }

  /**
   * The parsed `which` file that answers for `files` (a container's; undefined: the host's), the
   * host's when the container's cannot be read.
   */
  private fileOf<K extends keyof RootFiles>(which: K, files: RootFiles | undefined, scope: UserScope | undefined, now: number): FileData<K> | null {
    if (files && scope) {
      const cache = files[which] as FileCache<FileData<K>>;
      // The path is built only when the container's file is due a check.
      let map = cache.fresh(now, this.interval);
      if (map === undefined) map = cache.get(`${scope.root.replace(/\/+$/, '')}/etc/${which}`, now, this.interval, true);
      // A readable container file is authoritative: an id it lacks has no name in there, and
      // the host's with the same number is somebody else.
      if (map !== null) return map;
    }
    return (this.host[which] as FileCache<FileData<K>>).get(this.hostPaths[which], now, this.interval);
  }

  /**
   * The passwd entry for a uid, in the container's files when a scope is given and its file is
   * readable, else in the host's.
   */
  user(uid: number | undefined, scope?: UserScope): UserEntry | undefined {
    if (uid === undefined || uid < 0) return undefined;
    return this.fileOf('passwd', scope && this.filesFor(scope), scope, this.now())?.get(uid);
  }

  group(gid: number | undefined, scope?: UserScope): string | undefined {
    if (gid === undefined || gid < 0) return undefined;
    return this.fileOf('group', scope && this.filesFor(scope), scope, this.now())?.get(gid);
  }

  /**
   * Every name of a process at once (user(uid), its home and shell, group(gid), user(loginuid)'s
   * name), as those give them: one look at the clock and the files, not three. The answer is kept
   * and given again while the ids and the parsed files are the same (an exec storm's commands run
   * as one user: issue 16); it is shared, never to be changed.
   */
  names(uid: number | undefined, gid: number | undefined, loginuid: number | undefined, scope?: UserScope): ProcessNames {
    const files = scope && this.filesFor(scope);
    const now = this.now();
    const pw = this.fileOf('passwd', files, scope, now);
    const gr = this.fileOf('group', files, scope, now);
    const l = this.lastNames;
    if (l.pw === pw && l.gr === gr && l.uid === uid && l.gid === gid && l.loginuid === loginuid) return l.names;
    const u = uid === undefined || uid < 0 ? undefined : pw?.get(uid);
    const names: ProcessNames = Object.freeze({
      user: u?.name,
      homedir: u?.home,
      shell: u?.shell,
      group: gid === undefined || gid < 0 ? undefined : gr?.get(gid),
      loginname: loginuid === undefined || loginuid < 0 ? undefined : pw?.get(loginuid)?.name,
    });
    this.lastNames = { pw, gr, uid, gid, loginuid, names };
    return names;
  }

  /** names()'s last answer and what it was made from (maps by identity: a re-read file is a new map). */
  private lastNames: {
    pw: Map<number, UserEntry> | null | undefined;
    gr: Map<number, string> | null | undefined;
    uid: number | undefined;
    gid: number | undefined;
    loginuid: number | undefined;
    names: ProcessNames;
  } = { pw: undefined, gr: undefined, uid: undefined, gid: undefined, loginuid: undefined, names: Object.freeze({}) };

  /** Forget a container's files (it was removed). */
  forget(key: string): void {
    this.containers.delete(key);
  }
}
