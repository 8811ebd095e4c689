/**
 * `spare_readers` (opt-in, off by default): cryptnono kills anyone who *reads about* a miner —
 * `grep -ri xmrig /var/log/syslog`, `less xmrig.txt`, `git clone …/xmrig-notes` — because the
 * banned string is on their command line. With spare_readers on, a well-known reader or searcher
 * is spared when every banned string on its command line sits in an operand (a file name, a
 * search pattern, a URL to clone) or in the value of one of its search options (`grep -e`,
 * `find -name`, `git log --grep`), and nowhere else.
 *
 * A miner must not be able to pose as one, so the process must really be the system's tool:
 *
 * - argv[0]'s name picks the tool (READERS); the running executable's name must be one that tool
 *   installs as (`vi` runs /usr/bin/vim.basic through the alternatives links);
 * - that executable lives in a system directory (/usr/bin, /bin, /usr/sbin, /sbin, git's libexec)
 *   and is a regular file owned by root, not writable by group or others, not deleted, and is the
 *   very file at that path now (the same device and inode as /proc/PID/exe);
 * - the process runs in the host's mount namespace (pid 1's; the agent's own where pid 1's cannot be
 *   read): inside a container, the image's owner decides what /usr/bin/grep is, so a container
 *   image could ship a miner under that name;
 * - the banned string is not in argv[0] or the executable's path, and not in any other option or
 *   option value (`less -o FILE`, `git -c key=value`, `find -exec …`);
 * - a banned string that spans arguments counts as outside the operands unless blanking the
 *   operands alone removes it.
 *
 * What the reader starts (a pager, a `find -exec`, a git helper, `man -P`) is an exec of its own
 * and is judged on its own. The shell scripts egrep, fgrep and rgrep run as `sh /usr/bin/egrep …`:
 * the script (same checks) is then the tool.
 */
import { basename, dirname, posix } from 'node:path';
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';

/** Where the system's own tools live. */
export const SYSTEM_DIRS: readonly string[] = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/lib/git-core', '/usr/libexec/git-core'];

/** How a tool's options take values: 'search' values may hold a banned string, 'other' may not. */
type ValueKind = 'search' | 'other';

interface ReaderSpec {
  /** Names the executable may have (symlinks and alternatives resolved by the kernel). */
  exes: readonly string[];
  /** Options that take a value (the next argument, or `--long=value` / `-Xvalue`). */
  values?: Readonly<Record<string, ValueKind>>;
  /** find's style: options are whole words after one dash (`-name`), never clusters. */
  wordOptions?: boolean;
  /** find's `-exec … ;`: these options start a command that runs to `;` or `+` (never spared). */
  commands?: readonly string[];
  /** git: the first operand must be one of these subcommands. */
  subcommands?: readonly string[];
}

const GREP: ReaderSpec = {
  exes: ['grep'],
  values: {
    '-e': 'search', '--regexp': 'search', '-f': 'search', '--file': 'search', '--include': 'search', '--exclude': 'search',
    '--exclude-dir': 'search', '--exclude-from': 'search', '--label': 'search',
    '-m': 'other', '--max-count': 'other', '-A': 'other', '-B': 'other', '-C': 'other', '--after-context': 'other',
    '--before-context': 'other', '--context': 'other', '-d': 'other', '--directories': 'other', '-D': 'other', '--devices': 'other',
    '--binary-files': 'other', '--color': 'other', '--colour': 'other',
  },
};
const VIM: ReaderSpec = {
  exes: ['vim', 'vim.basic', 'vim.tiny', 'vim.nox', 'vim.gtk3', 'vim.athena', 'vi', 'nvim'],
  values: { '-t': 'search', '-c': 'other', '--cmd': 'other', '-S': 'other', '-u': 'other', '-U': 'other', '-i': 'other', '-T': 'other', '-w': 'other', '-W': 'other', '-s': 'other', '-q': 'other' },
};
const HEAD_TAIL: ReaderSpec['values'] = { '-n': 'other', '--lines': 'other', '-c': 'other', '--bytes': 'other', '-s': 'other', '--sleep-interval': 'other', '--pid': 'other' };

/** The readers and searchers spared, by argv[0]'s name. */
export const READERS: Readonly<Record<string, ReaderSpec>> = {
  grep: GREP, egrep: GREP, fgrep: GREP, rgrep: GREP,
  rg: { exes: ['rg'], values: { '-e': 'search', '--regexp': 'search', '-f': 'search', '--file': 'search', '-g': 'search', '--glob': 'search', '--iglob': 'search', '-m': 'other', '-A': 'other', '-B': 'other', '-C': 'other', '-t': 'other', '--type': 'other', '-T': 'other', '-j': 'other', '--pre': 'other', '--pre-glob': 'other', '--max-depth': 'other' } },
  ag: { exes: ['ag'], values: { '-G': 'search', '--file-search-regex': 'search', '--ignore': 'search', '-m': 'other', '-A': 'other', '-B': 'other', '-C': 'other', '--depth': 'other' } },
  less: { exes: ['less'], values: { '-p': 'search', '--pattern': 'search', '-t': 'search', '--tag': 'search', '-o': 'other', '-O': 'other', '--log-file': 'other', '--LOG-FILE': 'other', '-b': 'other', '-h': 'other', '-j': 'other', '-k': 'other', '--lesskey-file': 'other', '-P': 'other', '--prompt': 'other', '-T': 'other', '-x': 'other', '-y': 'other', '-z': 'other', '-#': 'other' } },
  more: { exes: ['more'], values: { '-n': 'other', '--lines': 'other' } },
  cat: { exes: ['cat'] },
  tac: { exes: ['tac'], values: { '-s': 'other', '--separator': 'other' } },
  head: { exes: ['head'], values: HEAD_TAIL },
  tail: { exes: ['tail'], values: HEAD_TAIL },
  wc: { exes: ['wc'], values: { '--files0-from': 'search' } },
  ls: { exes: ['ls'], values: { '-I': 'search', '--ignore': 'search', '--hide': 'search', '-w': 'other', '-T': 'other', '--format': 'other', '--sort': 'other', '--time-style': 'other' } },
  file: { exes: ['file'], values: { '-m': 'other', '--magic-file': 'other', '-f': 'search', '--files-from': 'search', '-F': 'other', '-P': 'other' } },
  stat: { exes: ['stat'], values: { '-c': 'other', '--format': 'other', '--printf': 'other' } },
  vi: VIM, vim: VIM, view: VIM, nvim: VIM,
  nano: { exes: ['nano'], values: { '-T': 'other', '--tabsize': 'other', '-Y': 'other', '--syntax': 'other', '-r': 'other', '--fill': 'other', '-o': 'other', '--operatingdir': 'other', '-s': 'other', '--speller': 'other', '-X': 'other', '-Q': 'other' } },
  find: {
    exes: ['find'],
    wordOptions: true,
    values: {
      '-name': 'search', '-iname': 'search', '-path': 'search', '-ipath': 'search', '-wholename': 'search', '-iwholename': 'search',
      '-regex': 'search', '-iregex': 'search', '-lname': 'search', '-ilname': 'search', '-newer': 'search', '-samefile': 'search',
      '-type': 'other', '-xtype': 'other', '-maxdepth': 'other', '-mindepth': 'other', '-user': 'other', '-group': 'other', '-perm': 'other',
      '-size': 'other', '-mtime': 'other', '-mmin': 'other', '-atime': 'other', '-amin': 'other', '-ctime': 'other', '-cmin': 'other',
      '-fprint': 'other', '-fprint0': 'other', '-fprintf': 'other', '-fls': 'other', '-printf': 'other', '-regextype': 'other', '-uid': 'other', '-gid': 'other', '-inum': 'other', '-links': 'other', '-fstype': 'other', '-context': 'other',
    },
    commands: ['-exec', '-execdir', '-ok', '-okdir'],
  },
  locate: { exes: ['locate', 'plocate', 'mlocate'], values: { '-d': 'other', '--database': 'other', '-l': 'other', '-n': 'other', '--limit': 'other' } },
  plocate: { exes: ['plocate'], values: { '-d': 'other', '--database': 'other', '-l': 'other', '-n': 'other', '--limit': 'other' } },
  man: { exes: ['man'], values: { '-P': 'other', '--pager': 'other', '-M': 'other', '--manpath': 'other', '-C': 'other', '--config-file': 'other', '-L': 'other', '--locale': 'other', '-m': 'other', '--systems': 'other', '-S': 'other', '-s': 'other', '--sections': 'other', '-e': 'other', '--extension': 'other', '-p': 'other', '--preprocessor': 'other', '-R': 'other', '-E': 'other', '-T': 'other', '-H': 'other', '-X': 'other' } },
  git: {
    exes: ['git'],
    values: {
      '-C': 'other', '-c': 'other', '--git-dir': 'other', '--work-tree': 'other', '--namespace': 'other', '--exec-path': 'other', '--config-env': 'other',
      '--grep': 'search', '--author': 'search', '--committer': 'search', '-S': 'search', '-G': 'search', '-e': 'search',
      '-b': 'other', '--branch': 'other', '-o': 'other', '--origin': 'other', '--depth': 'other', '-u': 'other', '--upload-pack': 'other', '--template': 'other', '--reference': 'other', '--separate-git-dir': 'other', '-n': 'other', '--max-count': 'other', '--format': 'other', '--pretty': 'other',
    },
    subcommands: ['log', 'show', 'grep', 'clone', 'fetch', 'pull', 'diff', 'blame', 'status', 'ls-files', 'ls-remote', 'shortlog', 'whatchanged', 'cat-file', 'rev-parse', 'rev-list', 'index-pack', 'fetch-pack', 'unpack-objects', 'checkout', 'switch', 'remote-https', 'remote-http'],
  },
  'git-remote-https': { exes: ['git-remote-https', 'git-remote-http', 'git'] },
  'git-remote-http': { exes: ['git-remote-http', 'git-remote-https', 'git'] },
  'git-upload-pack': { exes: ['git-upload-pack', 'git'], values: { '--timeout': 'other' } },
};

/** The scripts a shell runs as a reader: `sh /usr/bin/egrep -ri xmrig f`. */
const SCRIPT_READERS = new Set(['egrep', 'fgrep', 'rgrep']);
const SHELLS = new Set(['sh', 'dash', 'bash']);

/** What the check needs to know about the running executable; tests give their own. */
export interface ExeFile {
  /** A regular file. */
  regular: boolean;
  uid: number;
  mode: number;
  nlink: number;
  dev: bigint;
  ino: bigint;
}

export interface ExeProbe {
  /** The file the process runs (/proc/PID/exe), or undefined when it cannot be read. */
  running(pid: number): ExeFile | undefined;
  /** The file at `path` as the process sees it (/proc/PID/root + path), symlinks followed. */
  atPath(pid: number, path: string): ExeFile | undefined;
  /** Whether the process shares the host's mount namespace (pid 1's). */
  hostMountNs(pid: number): boolean;
}

function fileOf(path: string): ExeFile | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return { regular: st.isFile(), uid: Number(st.uid), mode: Number(st.mode), nlink: Number(st.nlink), dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

function nsIno(path: string): bigint | undefined {
  try {
    return statSync(path, { bigint: true }).ino;
  } catch {
    return undefined;
  }
}

/** The live probe: everything through /proc/PID, so a container's files are its own. */
export const procExeProbe: ExeProbe = {
  running: (pid) => fileOf(`/proc/${pid}/exe`),
  atPath: (pid, path) => fileOf(`/proc/${pid}/root${path}`),
  hostMountNs: (pid) => {
    // pid 1's namespace is the host's; where it cannot be read (a sandbox that hides pid 1), the
    // agent's own: on a host that is the host's, in a pod it spares nothing (fails closed).
    const host = nsIno('/proc/1/ns/mnt') ?? nsIno('/proc/self/ns/mnt');
    return host !== undefined && host === nsIno(`/proc/${pid}/ns/mnt`);
  },
};

/**
 * For `minewatch whack test` (no process): the executable is what argv[0] names, found on PATH
 * as a shell would, on this host.
 */
export function pathProbe(exe: string): ExeProbe {
  return { running: () => fileOf(exe), atPath: (_pid, path) => fileOf(path), hostMountNs: () => true };
}

/** Where `name` is on PATH (or `name` itself when it is a path), links resolved as the kernel reports them. */
export function whichExe(name: string, pathVar = process.env.PATH ?? '/usr/bin:/bin'): string | undefined {
  const real = (p: string): string | undefined => {
    try {
      return statSync(p).isFile() ? realpathSync(p) : undefined;
    } catch {
      return undefined;
    }
  };
  if (name.includes('/')) return real(name);
  for (const dir of pathVar.split(':')) {
    const found = dir ? real(posix.join(dir, name)) : undefined;
    if (found) return found;
  }
  return undefined;
}

/**
 * argv as the kernel would run it, for `whack test`: argv[0] found on PATH, and a script run by its
 * `#!` interpreter (`egrep x f` runs as `/bin/sh /usr/bin/egrep x f`, executable /usr/bin/dash).
 */
export function asExecuted(argv: readonly string[]): { exepath: string; argv: string[] } | undefined {
  const found = argv[0] === undefined ? undefined : whichExe(argv[0]);
  if (!found) return undefined;
  let head = '';
  try {
    const fd = openSync(found, 'r');
    const buf = Buffer.alloc(256);
    head = buf.subarray(0, readSync(fd, buf, 0, 256, 0)).toString('latin1');
    closeSync(fd);
  } catch {
    /* unreadable: taken as a binary */
  }
  if (!head.startsWith('#!')) return { exepath: found, argv: [...argv] };
  const [interp, ...interpArgs] = head.slice(2).split('\n')[0]!.trim().split(/\s+/);
  const exepath = interp ? whichExe(interp) : undefined;
  if (!interp || !exepath) return undefined;
  return { exepath, argv: [interp, ...interpArgs.slice(0, 1), found, ...argv.slice(1)] };
}

export interface ReaderProcess {
  pid: number;
  /** The running executable's path, as the kernel reports it. */
  exepath?: string;
  argv: readonly string[];
}

export type ReaderDecision = { spared: true; tool: string } | { spared: false; reason: string };

/** Is this a system tool file: in a system directory, root's, not writable by others, still linked, the file at that path? */
function systemFile(probe: ExeProbe, pid: number, path: string, running: ExeFile | undefined): string | undefined {
  if (!path.startsWith('/') || path !== posix.normalize(path)) return `${path} is not a plain absolute path`;
  if (!SYSTEM_DIRS.includes(dirname(path))) return `${path} is not in a system directory (${SYSTEM_DIRS.join(', ')})`;
  const f = running ?? probe.atPath(pid, path);
  if (!f) return `${path} cannot be examined`;
  if (!f.regular) return `${path} is not a regular file`;
  if (f.uid !== 0) return `${path} is not owned by root (uid ${f.uid})`;
  if ((f.mode & 0o022) !== 0) return `${path} is writable by group or others (mode ${(f.mode & 0o7777).toString(8)})`;
  if (f.nlink === 0) return `${path} was deleted`;
  if (running) {
    const there = probe.atPath(pid, path);
    if (!there || there.dev !== running.dev || there.ino !== running.ino) return `the running executable is not the file at ${path} now`;
  }
  return undefined;
}

/**
 * The arguments (after argv[0]) where a banned string may sit: operands and search-option values.
 * Returns their indexes into `args`, or a reason the command line cannot be a plain read.
 */
export function permittedArgs(spec: ReaderSpec, args: readonly string[]): Set<number> | string {
  const ok = new Set<number>();
  const values = spec.values ?? {};
  let operandsOnly = false;
  let sawSubcommand = spec.subcommands === undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (operandsOnly || a === '-' || !a.startsWith('-') || (spec.wordOptions && a === '(') || (spec.wordOptions && a === ')') || (spec.wordOptions && a === '!')) {
      if (!sawSubcommand) {
        if (!spec.subcommands!.includes(a)) return `'${a}' is not one of the subcommands spared (${spec.subcommands!.join(', ')})`;
        sawSubcommand = true;
        continue;
      }
      ok.add(i);
      continue;
    }
    if (a === '--') {
      operandsOnly = true;
      continue;
    }
    if (spec.wordOptions) {
      if (spec.commands?.includes(a)) {
        // The command and its arguments up to ; or + are never a read.
        while (i + 1 < args.length && args[i + 1] !== ';' && args[i + 1] !== '+') i++;
        i++;
        continue;
      }
      const kind = values[a];
      if (kind) {
        if (kind === 'search') ok.add(i + 1);
        i++;
      }
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a : a.slice(0, eq);
      const kind = values[name];
      if (eq >= 0) {
        // The value is inside this argument: the argument may hold a banned string only for a search option.
        if (kind === 'search') ok.add(i);
      } else if (kind) {
        if (kind === 'search') ok.add(i + 1);
        i++;
      }
      continue;
    }
    // A cluster of short options: the first one that takes a value takes the rest, or the next argument.
    for (let j = 1; j < a.length; j++) {
      const kind = values[`-${a[j]}`];
      if (!kind) continue;
      if (j + 1 < a.length) {
        if (kind === 'search' && j === 1) ok.add(i);
      } else {
        if (kind === 'search') ok.add(i + 1);
        i++;
      }
      break;
    }
  }
  if (!sawSubcommand) return 'no subcommand';
  return ok;
}

/**
 * Whether a process the execwhacker would kill is a reader to spare. `banned(argv)` answers
 * whether a standalone banned string is in the command line `argv` joins to (with the executable's
 * path in argv[0]'s place too: ExecMatcher.bannedIn).
 */
export function spareReader(p: ReaderProcess, banned: (argv: readonly string[], exepath?: string) => boolean, probe: ExeProbe = procExeProbe): ReaderDecision {
  const argv0 = p.argv[0];
  if (argv0 === undefined || !p.exepath) return { spared: false, reason: 'no argv[0] or executable path' };
  // sh /usr/bin/egrep …: the script is the tool (one of READERS), the shell must be the system's too.
  const script = SHELLS.has(basename(p.exepath)) && p.argv.length > 1 && SCRIPT_READERS.has(basename(p.argv[1]!)) ? p.argv[1]! : undefined;
  const name = basename(script ?? argv0);
  const args = p.argv.slice(script ? 2 : 1);
  const spec = Object.hasOwn(READERS, name) ? READERS[name] : undefined;
  if (!spec) return { spared: false, reason: `'${name}' is not a reader spared by spare_readers` };
  if (!script && !spec.exes.includes(basename(p.exepath))) return { spared: false, reason: `argv[0] says ${name} but the executable is ${p.exepath}` };
  // Only now, for a reader, the files themselves (a stat through /proc each).
  const bad = systemFile(probe, p.pid, p.exepath, probe.running(p.pid)) ?? (script ? systemFile(probe, p.pid, script, undefined) : undefined);
  if (bad) return { spared: false, reason: bad };
  if (!probe.hostMountNs(p.pid)) return { spared: false, reason: "the process runs in a container's mount namespace, where the image decides what a system path holds" };
  const where = permittedArgs(spec, args);
  if (typeof where === 'string') return { spared: false, reason: where };
  // Blank the operands and search values: whatever banned string is left sits elsewhere.
  const prefix = p.argv.slice(0, p.argv.length - args.length);
  const blanked = [...prefix, ...args.map((a, i) => (where.has(i) ? '' : a))];
  if (banned(blanked, p.exepath)) return { spared: false, reason: 'a banned string is outside the operands (in argv[0], the executable path, or an option)' };
  return { spared: true, tool: name };
}
