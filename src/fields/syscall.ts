/**
 * The syscall source's field catalog: Falco's field names and types over our event model
 * (src/events.ts). Every field a Falco rules file may name for syscall events lives here; our own
 * additions live under `mw.` elsewhere.
 *
 * Conventions, all of them Falco's unless said otherwise:
 * - Missing data yields `undefined` (printed as <NA>); extractors never throw (see `safe`).
 * - Numbers are JS numbers; nanosecond times and durations (abstime, reltime) are bigints.
 * - A process outside any container has container.id and container.name "host".
 * - proc.aname and friends: [0] is the process itself, [1] its parent, …; without an index they
 *   yield every ancestor (not the process itself) and a comparison holds when any of them matches.
 */
import { hostname as osHostname } from 'node:os';
import { globToRegExp } from '../platform/glob.js';
import { posix as posixPath } from 'node:path';
import type { ContainerMount, Event, FdInfo, FdType, ProcessInfo, SyscallEvent } from '../events.js';
import type { AnyOf, Extracted, Extractor, FieldDef, FieldType, FieldValue } from './types.js';
import { errnoName, modeHasExec, openAccess, renderArg, type RenderedArg, renderFlagTable, renderOpenFlags, renderResult } from './flags.js';
import { formatInt, type ParamDef, paramDef, paramsOf } from './event-params.js';

type Get = (ev: SyscallEvent) => Extracted;

/** Wrap an extractor so a malformed event gives <NA> instead of an exception in the engine. */
function safe(get: Get): Extractor {
  return (ev: Event) => {
    try {
      return get(ev as SyscallEvent);
    } catch {
      return undefined;
    }
  };
}

interface ArgOpts {
  arg: 'index' | 'key';
  argOptional?: boolean;
  isList?: boolean;
  anyWhenNoArg?: boolean;
  bindAny?: () => AnyOf;
}

/** A field without an argument. */
function plain(
  name: string,
  type: FieldType,
  desc: string,
  get: Get,
  opts: { isList?: boolean; anyWhenNoArg?: boolean; bindAny?: () => AnyOf } = {},
): FieldDef {
  return { name, type, desc, arg: 'none', ...opts, bind: () => safe(get), bindUnguarded: () => get as Extractor };
}

/** Fields whose extractors run bare, without `safe` (see bare()). */
export const BARE_FIELDS = new Set<string>();

/**
 * A field that is a few property reads. `get` must never throw on any event, however malformed
 * (optional chaining at every step): it runs bare, one call instead of two (`safe` and `get`) each
 * time the engine extracts it.
 */
function bare(name: string, type: FieldType, desc: string, get: (ev: SyscallEvent) => FieldValue | undefined): FieldDef {
  const extract = get as Extractor;
  BARE_FIELDS.add(name);
  return { name, type, desc, arg: 'none', bind: () => extract };
}

/** A field with an argument; `make` runs once at compile time with the argument bound. */
function withArg(name: string, type: FieldType, desc: string, opts: ArgOpts, make: (arg: string | undefined) => Get): FieldDef {
  return { name, type, desc, ...opts, bind: (arg) => safe(make(arg)), bindUnguarded: (arg) => make(arg) as Extractor };
}

const isDigits = (s: string): boolean => /^\d+$/.test(s);

/** obj[key] for a key that comes from data or rules, never from Object.prototype ("constructor"). */
function own<T>(obj: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return obj !== undefined && obj !== null && Object.hasOwn(obj, key) ? obj[key] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Event

/** Event types that Falco does not count as system calls (syscall.type is unset for them). */
const NON_SYSCALL_TYPES = new Set(['container', 'procexit', 'switch', 'notification', 'infra', 'procinfo', 'drop', 'asyncevent', 'pluginevent', 'cpu_hotplug']);
const OPEN_TYPES = new Set(['open', 'openat', 'openat2', 'open_by_handle_at']);
const READ_TYPES = new Set(['read', 'readv', 'pread', 'pread64', 'preadv', 'recv', 'recvfrom', 'recvmsg', 'recvmmsg']);
const WRITE_TYPES = new Set(['write', 'writev', 'pwrite', 'pwrite64', 'pwritev', 'send', 'sendto', 'sendmsg', 'sendmmsg']);

/** Events whose return value is the new fd: fd.num is it, or -1 when they failed. */
const FD_CREATING_TYPECHAR: Readonly<Record<string, string>> = {
  open: 'f', openat: 'f', openat2: 'f', creat: 'f', open_by_handle_at: 'f',
  // Falco guesses IPv4 for these too when it has no fd state.
  socket: '4', accept: '4', accept4: '4',
  pipe: 'p', pipe2: 'p', eventfd: 'e', eventfd2: 'e', signalfd: 's', signalfd4: 's',
  timerfd_create: 't', inotify_init: 'i', inotify_init1: 'i', memfd_create: 'm',
};

let cachedHostname: string | undefined;
export function localHostname(): string {
  return (cachedHostname ??= osHostname());
}

export const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
export const nsPart = (ts: bigint): string => pad(Number(((ts % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n), 9);
export const dateOf = (ts: bigint): Date => new Date(Number(ts / 1_000_000n));
/** HH:MM:SS in local time, as Falco prints evt.time. */
export const clock = (d: Date): string => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
export const day = (d: Date): string => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
/** "2025-11-24T16:00:00.123456789+0000": UTC with nanoseconds, as libs' ts_to_iso_8601 prints evt.time.iso8601. */
export function iso8601(ts: bigint): string {
  const d = dateOf(ts);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${nsPart(ts)}+0000`;
}

/** "16:00:00.123456789" in local time: evt.time, and the time that opens Falco's text alert. */
export function timeOfDay(ts: bigint): string {
  return `${clock(dateOf(ts))}.${nsPart(ts)}`;
}

/** Text of one argument as evt.arg shows it: the resolved form when there is one, else the raw one. */
function argText(ev: SyscallEvent, key: string, value: string | number): string {
  const r = renderEventArg(ev, key, value);
  return r.resolved ?? r.raw;
}

/** Argument names that hold a user or group id, for events libs' table does not describe. */
const UID_KEYS = new Set(['uid', 'ruid', 'euid', 'suid']);
const GID_KEYS = new Set(['gid', 'rgid', 'egid', 'sgid']);
const AT_FDCWD = -100;

/** "<f>/etc/shadow", "<4t>10.0.0.1:40000->10.0.0.2:22": an fd as libs shows it resolved. */
function fdText(fd: FdInfo, ev: SyscallEvent): string | undefined {
  const probe: SyscallEvent = fd === ev.fd ? ev : { ...ev, fd };
  const name = fdName(probe);
  const tc = fdTypechar(probe);
  if (name === undefined || tc === undefined) return undefined;
  const proto = isSocketType(fdType(probe)) && fd.l4proto ? fd.l4proto[0] : '';
  return `<${tc}${proto}>${name}`;
}

/** The FdInfo an fd-typed argument names: the event's own fd, or what enrichment found for it. */
function argFd(ev: SyscallEvent, key: string, value: number): FdInfo | undefined {
  if (ev.fd && ev.fd.num === value) return ev.fd;
  const f = own(ev.argFds, key);
  return f && (f.num === undefined || f.num === value) ? f : undefined;
}

/** A uid or gid argument: "-1"/<NONE>, the enricher's name for it, the caller's own name, else the number. */
function idArg(ev: SyscallEvent, key: string, value: number, isUid: boolean): RenderedArg {
  if (value === -1 || value === 4294967295) return { raw: '-1', resolved: '<NONE>' };
  const known = own(ev.argNames, key);
  if (known) return { raw: String(value), resolved: known };
  const ownId = isUid ? ev.proc.uid : ev.proc.gid;
  const name = isUid ? ev.proc.user : ev.proc.group;
  // Without an enricher's answer only the event's own user is known by name.
  if (ownId === value && name) return { raw: String(value), resolved: name };
  return { raw: String(value) };
}

/** The directory a relative path argument is relative to (libs' get_base_dir): its dirfd's, else the cwd. */
function baseDir(ev: SyscallEvent, p: ParamDef): string | undefined {
  if (p.dirfd !== undefined) {
    const d = argValue(ev, p.dirfd);
    if (typeof d === 'number' && d !== AT_FDCWD) return d >= 0 ? argFd(ev, p.dirfd, d)?.name : undefined;
  }
  return ev.proc.cwd;
}

/** One argument by libs' parameter type (src/fields/event-params.ts). */
function renderParam(ev: SyscallEvent, p: ParamDef, value: string | number): RenderedArg {
  if (p.kind === 'path') {
    const text = String(value);
    if (text === '' || text.startsWith('/')) return { raw: text };
    const base = baseDir(ev, p);
    return base === undefined ? { raw: text } : { raw: text, resolved: posixPath.resolve(base, text) };
  }
  // Text a source already rendered passes through as it is.
  if (typeof value !== 'number') return { raw: value };
  const named = (resolved: string | undefined): RenderedArg => (resolved ? { raw: String(value), resolved } : { raw: String(value) });
  switch (p.kind) {
    case 'fd': {
      if (value === AT_FDCWD) return { raw: String(value), resolved: 'AT_FDCWD' };
      if (value < 0) return named(errnoName(value));
      const f = argFd(ev, p.name, value);
      return named(f ? fdText(f, ev) : undefined);
    }
    case 'errno':
      return value < 0 ? named(errnoName(value)) : { raw: String(value) };
    case 'openflags':
      return named(renderOpenFlags(value));
    case 'flags':
    case 'enum': {
      const t = p.table!;
      return named(typeof t === 'function' ? t(value) : renderFlagTable(value, t));
    }
    case 'mode':
      return renderArg('chmod', 'mode', value);
    case 'uid':
    case 'gid':
      return idArg(ev, p.name, value, p.kind === 'uid');
    case 'pid':
      return named(own(ev.argNames, p.name));
    case 'int':
      return { raw: formatInt(value, p.fmt) };
    default:
      return { raw: String(value) };
  }
}

/** How evt.arg shows argument `key`: by libs' table for the event type, else by the name alone. */
function renderEventArg(ev: SyscallEvent, key: string, value: string | number): RenderedArg {
  const p = paramDef(ev.type, key);
  if (p) return renderParam(ev, p, value);
  if (typeof value === 'number') {
    if (key === 'fd') return renderParam(ev, { name: 'fd', kind: 'fd' }, value);
    const isUid = UID_KEYS.has(key);
    if (isUid || GID_KEYS.has(key)) return idArg(ev, key, value, isUid);
  }
  return renderArg(ev.type, key, value);
}

function argValue(ev: SyscallEvent, key: string): string | number | undefined {
  const v = own(ev.args, key);
  if (v === undefined || v === null) {
    // Exit events carry the return value as their first argument in Falco.
    if (key === 'res' && ev.res !== undefined) return ev.res;
    return undefined;
  }
  return v;
}

/** The arguments in libs' order for the type (those the event has), then any others it carries. */
function argNames(ev: SyscallEvent): string[] {
  const given = ev.args ? Object.keys(ev.args) : [];
  const table = paramsOf(ev.type);
  if (!table) return given;
  const names = table.map((p) => p.name).filter((n) => argValue(ev, n) !== undefined);
  for (const k of given) if (!names.includes(k)) names.push(k);
  return names;
}

/** Falco's evt.args text: "k=raw" or "k=raw(resolved)" for each argument, in order. */
function allArgs(ev: SyscallEvent): string | undefined {
  if (!ev.args) return undefined;
  const parts: string[] = [];
  for (const k of argNames(ev)) {
    const v = argValue(ev, k);
    if (v === undefined || v === null) continue;
    const r = renderEventArg(ev, k, v);
    parts.push(r.resolved !== undefined ? `${k}=${r.raw}(${r.resolved})` : `${k}=${r.raw}`);
  }
  return parts.join(' ');
}

/** evt.arg[N]: the Nth parameter of libs' table for the type (0-based), else the Nth the event carries. */
function argAt(ev: SyscallEvent, idx: number): string | undefined {
  const table = paramsOf(ev.type);
  const k = table ? table[idx]?.name : ev.args ? Object.keys(ev.args)[idx] : undefined;
  if (k === undefined) return undefined;
  const v = argValue(ev, k);
  return v === undefined || v === null ? undefined : argText(ev, k, v);
}

const eventFields: FieldDef[] = [
  bare('evt.num', 'uint64', 'Sequence number the source gave the event.', (ev) => ev.num),
  plain('evt.time', 'charbuf', 'Event time of day (local time) with nanoseconds, HH:MM:SS.nnnnnnnnn.', (ev) => timeOfDay(ev.ts)),
  plain('evt.time.s', 'charbuf', 'Event time of day (local time) without nanoseconds.', (ev) => clock(dateOf(ev.ts))),
  plain('evt.time.iso8601', 'charbuf', 'Event time in ISO 8601, UTC, with nanoseconds.', (ev) => iso8601(ev.ts)),
  plain('evt.datetime', 'charbuf', 'Event date and time (local time) with nanoseconds.', (ev) => {
    const d = dateOf(ev.ts);
    return `${day(d)} ${clock(d)}.${nsPart(ev.ts)}`;
  }),
  plain('evt.datetime.s', 'charbuf', 'Event date and time (local time) without nanoseconds.', (ev) => {
    const d = dateOf(ev.ts);
    return `${day(d)} ${clock(d)}`;
  }),
  plain('evt.rawtime', 'abstime', 'Event time in nanoseconds since the epoch.', (ev) => ev.ts),
  plain('evt.rawtime.s', 'abstime', 'Whole seconds of the event time since the epoch.', (ev) => ev.ts / 1_000_000_000n),
  plain('evt.rawtime.ns', 'abstime', 'Nanosecond part of the event time.', (ev) => ev.ts % 1_000_000_000n),
  plain('evt.hostname', 'charbuf', 'Host the event came from (this host unless the event says otherwise).', (ev) => ev.hostname ?? localHostname()),
  bare('evt.source', 'charbuf', 'Name of the source that produced the event (syscall).', (ev) => ev.source),
  plain('evt.is_async', 'bool', 'True for asynchronous (non-syscall) events; ours never are.', () => false),
  plain('evt.dir', 'charbuf', "Event direction; always '<' because every event here is a syscall exit.", () => '<'),
  bare('evt.type', 'charbuf', 'Event type, e.g. execve, openat, connect.', (ev) => ev.type),
  plain('syscall.type', 'charbuf', 'Name of the system call; unset for events that are not system calls.', (ev) =>
    NON_SYSCALL_TYPES.has(ev.type) ? undefined : ev.type),
  plain('evt.args', 'charbuf', 'All arguments as one string, "name=value name=value", names resolved in parentheses.', allArgs),
  withArg('evt.arg', 'charbuf', 'One argument by name (evt.arg.flags, evt.arg[flags]) or by 0-based position (evt.arg[0]), rendered as text: flags and modes as names, errors as errno names.',
    { arg: 'key' }, (arg) => {
      const key = arg ?? '';
      if (isDigits(key)) {
        const idx = Number(key);
        return (ev) => argAt(ev, idx);
      }
      return (ev) => {
        const v = argValue(ev, key);
        if (v === undefined) return undefined;
        // Text is shown as it is, except a relative path, which libs makes absolute.
        return typeof v === 'string' && (v.startsWith('/') || paramDef(ev.type, key)?.kind !== 'path') ? v : argText(ev, key, v);
      };
    }),
  withArg('evt.rawarg', 'int64', 'One argument by name as the source gave it, unrendered (numbers stay numbers).', { arg: 'key' }, (arg) => {
    const key = arg ?? '';
    return (ev) => argValue(ev, key);
  }),
  plain('evt.info', 'charbuf', 'Summary of the event; here the same text as evt.args.', allArgs),
  plain('evt.buffer', 'bytebuf', 'Data read or written by I/O events (latin1 text of the bytes).', (ev) => ev.buffer),
  plain('evt.buflen', 'uint64', 'Byte count an I/O event moved (its non-negative return value).', (ev) =>
    (READ_TYPES.has(ev.type) || WRITE_TYPES.has(ev.type)) && ev.res !== undefined && ev.res >= 0 ? ev.res : undefined),
  plain('evt.res', 'charbuf', 'Result as text: SUCCESS, or the errno name (ENOENT, EINPROGRESS, …) when the call failed.', (ev) =>
    ev.res === undefined ? undefined : renderResult(ev.res)),
  bare('evt.rawres', 'int64', 'Result as a number; a negative errno on failure.', (ev) => ev.res),
  plain('evt.failed', 'bool', 'True when the call returned an error.', (ev) => (ev.res === undefined ? undefined : ev.res < 0)),
  plain('evt.is_io', 'bool', 'True for events that read or write data through an fd.', (ev) => READ_TYPES.has(ev.type) || WRITE_TYPES.has(ev.type)),
  plain('evt.is_io_read', 'bool', 'True for events that read data through an fd.', (ev) => READ_TYPES.has(ev.type)),
  plain('evt.is_io_write', 'bool', 'True for events that write data through an fd.', (ev) => WRITE_TYPES.has(ev.type)),
  plain('evt.io_dir', 'charbuf', "'read' or 'write' for I/O events.", (ev) =>
    WRITE_TYPES.has(ev.type) ? 'write' : READ_TYPES.has(ev.type) ? 'read' : undefined),
  plain('evt.count', 'uint64', 'Always 1: handy to count matching events.', () => 1),
  plain('evt.is_open_read', 'bool', 'True for open-family events whose flags ask for reading.', (ev) => {
    const flags = OPEN_TYPES.has(ev.type) ? argValue(ev, 'flags') : undefined;
    return flags === undefined ? false : openAccess(flags).read;
  }),
  plain('evt.is_open_write', 'bool', 'True for open-family events whose flags ask for writing.', (ev) => {
    const flags = OPEN_TYPES.has(ev.type) ? argValue(ev, 'flags') : undefined;
    return flags === undefined ? false : openAccess(flags).write;
  }),
  plain('evt.is_open_exec', 'bool', 'True for open-family (O_CREAT or O_TMPFILE) and creat events that create a file with an execute bit.', (ev) => {
    const mode = argValue(ev, 'mode');
    if (ev.type === 'creat') return mode === undefined ? false : modeHasExec(mode);
    if (!OPEN_TYPES.has(ev.type) || ev.type === 'open_by_handle_at') return false;
    const flags = argValue(ev, 'flags');
    if (flags === undefined || mode === undefined) return false;
    const a = openAccess(flags);
    return (a.create || a.tmpfile) && modeHasExec(mode);
  }),
];

// ---------------------------------------------------------------------------------------------
// Processes and threads

const MAX_DEPTH = 256;

/** The process `n` generations up (0 = itself); undefined past the known ancestry. */
function ancestor(p: ProcessInfo | undefined, n: number): ProcessInfo | undefined {
  let cur = p;
  for (let i = 0; i < n && cur; i++) cur = cur.parent;
  return cur;
}

/** Parent, grandparent, … (not the process itself); stops on a cycle. */
function ancestors(p: ProcessInfo | undefined): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  const seen = new Set<ProcessInfo>(p ? [p] : []);
  for (let cur = p?.parent; cur && !seen.has(cur) && out.length < MAX_DEPTH; cur = cur.parent) {
    out.push(cur);
    seen.add(cur);
  }
  return out;
}

function cmdline(p: ProcessInfo | undefined): string | undefined {
  if (!p || p.name === undefined) return undefined;
  return p.args && p.args.length ? `${p.name} ${p.args.join(' ')}` : p.name;
}

type Leader = Pick<ProcessInfo, 'name' | 'exe' | 'exepath' | 'pid'>;

/**
 * The session or process-group leader: the one the enricher named, else the eldest ancestor in an
 * unbroken line sharing the id (Falco's fallback when the leader is gone or in another pid ns).
 */
function leaderOf(p: ProcessInfo, key: 'sid' | 'vpgid'): Leader | undefined {
  const given = key === 'sid' ? p.session_leader : p.vpgid_leader;
  if (given) return given;
  const id = p[key];
  if (id === undefined) return undefined;
  let best: ProcessInfo = p;
  for (const a of ancestors(p)) {
    if (a[key] !== id) break;
    best = a;
  }
  return best;
}

/**
 * ancestors(p).map(pick) walked without arrays: true when `test` holds for a defined value. The
 * same walk as ancestors(): parent first, at most MAX_DEPTH, stopping at a process already seen
 * (a cycle), found by walking the chain again from `p` (ancestries are short; this allocates
 * nothing, unlike a set).
 */
function someAncestor(p: ProcessInfo | undefined, pick: (p: ProcessInfo) => FieldValue | undefined, test: (v: FieldValue) => boolean): boolean {
  let n = 0;
  for (let cur = p?.parent; cur && n < MAX_DEPTH; cur = cur.parent) {
    if (cur === p) return false;
    let a = p!.parent;
    for (let i = 0; i < n; i++, a = a!.parent) if (a === cur) return false;
    const v = pick(cur);
    if (v !== undefined && test(v)) return true;
    n++;
  }
  return false;
}

/**
 * proc.aname-style field: [N] is the Nth ancestor (0 = self); no index = every ancestor.
 * `pickNeverThrows`: pick is a property read, so comparisons may walk the ancestors lazily
 * (FieldDef.bindAny) and stop at the first match; a pick that may throw must see them all first,
 * as the extractor does, since one exception makes the whole field undefined.
 */
function ancestorField(name: string, type: FieldType, desc: string, pick: (p: ProcessInfo) => FieldValue | undefined, pickNeverThrows = false): FieldDef {
  const bindAny = pickNeverThrows ? (): AnyOf => (ev, test) => someAncestor((ev as SyscallEvent).proc, pick, test) : undefined;
  return withArg(name, type, desc, { arg: 'index', argOptional: true, isList: true, anyWhenNoArg: true, bindAny }, (arg) => {
    if (arg === undefined) {
      return (ev) => ancestors(ev.proc).map(pick).filter((v): v is FieldValue => v !== undefined);
    }
    const n = Number(arg);
    return (ev) => {
      const a = ancestor(ev.proc, n);
      return a ? pick(a) : undefined;
    };
  });
}

function envOf(p: ProcessInfo, key: string): string | undefined {
  if (!p.env) return undefined;
  const prefix = key + '=';
  const hit = p.env.find((e) => e.startsWith(prefix));
  // Falco gives an empty string, not <NA>, for a variable the environment lacks.
  return hit === undefined ? '' : hit.slice(prefix.length);
}

const sinceStart = (ev: SyscallEvent, start: bigint | undefined): bigint | undefined =>
  start === undefined ? undefined : ev.ts - start;

const processFields: FieldDef[] = [
  bare('proc.name', 'charbuf', 'Process name as the kernel keeps it (comm, at most 15 characters).', (ev) => ev.proc?.name),
  bare('proc.exe', 'charbuf', 'First command-line argument (argv[0]).', (ev) => ev.proc?.exe),
  bare('proc.exepath', 'charbuf', 'Full path of the executable file.', (ev) => ev.proc?.exepath),
  plain('proc.args', 'charbuf', 'Command-line arguments after argv[0], space separated.', (ev) => ev.proc.args?.join(' ')),
  plain('proc.cmdline', 'charbuf', 'proc.name followed by the arguments.', (ev) => cmdline(ev.proc)),
  plain('proc.exeline', 'charbuf', 'proc.exe followed by the arguments.', (ev) =>
    ev.proc.exe === undefined ? undefined : [ev.proc.exe, ...(ev.proc.args ?? [])].join(' ')),
  plain('proc.cmdnargs', 'uint64', 'Number of command-line arguments after argv[0].', (ev) => ev.proc.args?.length),
  plain('proc.cmdlenargs', 'uint64', 'Total length of the arguments after argv[0], without separators.', (ev) =>
    ev.proc.args?.reduce((n, a) => n + a.length, 0)),
  withArg('proc.env', 'charbuf', 'Environment as "K=v K=v"; proc.env[NAME] gives one variable\'s value.', { arg: 'key', argOptional: true }, (arg) =>
    arg === undefined ? (ev) => ev.proc.env?.join(' ') : (ev) => envOf(ev.proc, arg)),
  bare('proc.cwd', 'charbuf', 'Current working directory.', (ev) => ev.proc?.cwd),
  bare('proc.tty', 'uint64', 'Controlling terminal device number; 0 when there is none.', (ev) => ev.proc?.tty),
  bare('proc.pid', 'int64', 'Id of the process that made the call.', (ev) => ev.proc?.pid),
  plain('proc.ppid', 'int64', 'Id of the parent process.', (ev) => ev.proc.ppid ?? ev.proc.parent?.pid),
  bare('proc.vpid', 'int64', 'Process id inside its own pid namespace.', (ev) => ev.proc?.vpid),
  plain('proc.pvpid', 'int64', 'Parent process id inside its pid namespace.', (ev) => ev.proc.parent?.vpid),
  bare('proc.sid', 'int64', 'Session id of the process.', (ev) => ev.proc?.sid),
  plain('proc.sname', 'charbuf', 'Name of the session leader.', (ev) => leaderOf(ev.proc, 'sid')?.name),
  plain('proc.sid.exe', 'charbuf', 'argv[0] of the session leader.', (ev) => leaderOf(ev.proc, 'sid')?.exe),
  plain('proc.sid.exepath', 'charbuf', 'Executable path of the session leader.', (ev) => leaderOf(ev.proc, 'sid')?.exepath),
  bare('proc.vpgid', 'int64', 'Process group id inside the pid namespace.', (ev) => ev.proc?.vpgid),
  plain('proc.vpgid.name', 'charbuf', 'Name of the process group leader.', (ev) => leaderOf(ev.proc, 'vpgid')?.name),
  plain('proc.vpgid.exe', 'charbuf', 'argv[0] of the process group leader.', (ev) => leaderOf(ev.proc, 'vpgid')?.exe),
  plain('proc.vpgid.exepath', 'charbuf', 'Executable path of the process group leader.', (ev) => leaderOf(ev.proc, 'vpgid')?.exepath),
  plain('proc.is_sid_leader', 'bool', 'True when the process leads its session (sid equals its vpid).', (ev) => {
    const p = ev.proc;
    if (p.is_sid_leader !== undefined) return p.is_sid_leader;
    return p.sid === undefined ? undefined : p.sid === (p.vpid ?? p.pid);
  }),
  plain('proc.is_vpgid_leader', 'bool', 'True when the process leads its process group (vpgid equals its vpid), e.g. a command typed at a shell.', (ev) => {
    const p = ev.proc;
    if (p.is_vpgid_leader !== undefined) return p.is_vpgid_leader;
    return p.vpgid === undefined ? undefined : p.vpgid === (p.vpid ?? p.pid);
  }),
  bare('proc.pname', 'charbuf', 'Name of the parent process.', (ev) => ev.proc?.parent?.name),
  bare('proc.pexe', 'charbuf', 'argv[0] of the parent process.', (ev) => ev.proc?.parent?.exe),
  bare('proc.pexepath', 'charbuf', 'Executable path of the parent process.', (ev) => ev.proc?.parent?.exepath),
  plain('proc.pcmdline', 'charbuf', 'Command line (name and arguments) of the parent process.', (ev) => cmdline(ev.proc.parent)),
  ancestorField('proc.aname', 'charbuf', 'Name of an ancestor: [0] self, [1] parent, [2] grandparent…; without index, any ancestor.', (p) => p.name, true),
  ancestorField('proc.aexe', 'charbuf', 'argv[0] of an ancestor ([0] self, [1] parent…); without index, any ancestor.', (p) => p.exe, true),
  ancestorField('proc.aexepath', 'charbuf', 'Executable path of an ancestor ([0] self, [1] parent…); without index, any ancestor.', (p) => p.exepath, true),
  ancestorField('proc.acmdline', 'charbuf', 'Command line of an ancestor ([0] self, [1] parent…); without index, any ancestor.', (p) => cmdline(p)),
  ancestorField('proc.apid', 'int64', 'Pid of an ancestor ([0] self, [1] parent…); without index, any ancestor.', (p) => p.pid, true),
  plain('proc.loginshellid', 'int64', 'Pid of the eldest shell (a name ending in "sh") among the process and its ancestors.', (ev) => {
    let pid: number | undefined;
    for (const p of [ev.proc, ...ancestors(ev.proc)]) if (p.name?.endsWith('sh')) pid = p.pid;
    return pid;
  }),
  plain('proc.duration', 'reltime', 'Nanoseconds since the process started.', (ev) => sinceStart(ev, ev.proc.start_ts)),
  plain('proc.ppid.duration', 'reltime', 'Nanoseconds since the parent process started.', (ev) => sinceStart(ev, ev.proc.parent?.start_ts)),
  plain('proc.pid.ts', 'reltime', 'Process start time, nanoseconds since the epoch.', (ev) => ev.proc.start_ts),
  plain('proc.ppid.ts', 'reltime', 'Parent process start time, nanoseconds since the epoch.', (ev) => ev.proc.parent?.start_ts),
  bare('proc.is_exe_writable', 'bool', 'True when the executable is writable by the user that started the process.', (ev) => ev.proc?.exe_writable),
  bare('proc.is_exe_upper_layer', 'bool', "True when the executable lives on the container's writable overlay layer (dropped in after the image was built).", (ev) => ev.proc?.exe_upper_layer),
  bare('proc.is_exe_from_memfd', 'bool', 'True when the executable is an in-memory file (memfd_create): fileless execution.', (ev) => ev.proc?.exe_from_memfd),
  plain('proc.exe_ino', 'int64', 'Inode number of the executable.', (ev) => ev.proc.exe_ino || undefined),
  plain('proc.exe_ino.ctime', 'abstime', 'Last status change time of the executable inode, ns since the epoch.', (ev) => ev.proc.exe_ino_ctime || undefined),
  plain('proc.exe_ino.mtime', 'abstime', 'Last modification time of the executable inode, ns since the epoch.', (ev) => ev.proc.exe_ino_mtime || undefined),
  plain('proc.exe_ino.ctime_duration_proc_start', 'abstime', 'Nanoseconds between the last status change of the executable and the process start.', (ev) => {
    const { start_ts, exe_ino_ctime } = ev.proc;
    if (start_ts === undefined || !exe_ino_ctime) return undefined;
    const d = start_ts - exe_ino_ctime;
    return d > 0n ? d : undefined;
  }),
  plain('thread.tid', 'int64', 'Id of the thread that made the call.', (ev) => ev.proc.tid ?? ev.proc.pid),
  plain('thread.vtid', 'int64', 'Thread id inside its pid namespace.', (ev) => ev.proc.vtid),
  plain('thread.ismain', 'bool', 'True when the thread is the main thread of its process.', (ev) => (ev.proc.tid ?? ev.proc.pid) === ev.proc.pid),
  bare('thread.cap_permitted', 'charbuf', 'Permitted capability set, e.g. "CAP_CHOWN CAP_SYS_ADMIN".', (ev) => ev.proc?.cap_permitted),
  bare('thread.cap_effective', 'charbuf', 'Effective capability set.', (ev) => ev.proc?.cap_effective),
  bare('thread.cap_inheritable', 'charbuf', 'Inheritable capability set.', (ev) => ev.proc?.cap_inheritable),
];

// ---------------------------------------------------------------------------------------------
// Users and groups

const userFields: FieldDef[] = [
  bare('user.uid', 'uint64', 'User id the process runs as.', (ev) => ev.proc?.uid),
  bare('user.name', 'charbuf', 'Name of the user the process runs as.', (ev) => ev.proc?.user),
  bare('user.homedir', 'charbuf', 'Home directory of the user.', (ev) => ev.proc?.homedir),
  bare('user.shell', 'charbuf', 'Login shell of the user.', (ev) => ev.proc?.shell),
  bare('user.loginuid', 'int64', 'Audit login uid; -1 when unset.', (ev) => {
    const l = ev.proc?.loginuid;
    return l === 4294967295 ? -1 : l;
  }),
  bare('user.loginname', 'charbuf', 'User name of the audit login uid.', (ev) => ev.proc?.loginname),
  bare('group.gid', 'uint64', 'Group id the process runs as.', (ev) => ev.proc?.gid),
  bare('group.name', 'charbuf', 'Name of the group the process runs as.', (ev) => ev.proc?.group),
];

// ---------------------------------------------------------------------------------------------
// File descriptors

const TYPECHAR: Readonly<Record<FdType, string>> = {
  file: 'f', directory: 'd', ipv4: '4', ipv6: '6', unix: 'u', pipe: 'p', event: 'e', signalfd: 's',
  eventpoll: 'l', inotify: 'i', timerfd: 't', netlink: 'n', bpf: 'b', userfaultfd: 'u', io_uring: 'r',
  memfd: 'm', pidfd: 'P',
};

const isSocketType = (t: FdType | undefined): boolean => t === 'ipv4' || t === 'ipv6';

/** The fd's type, inferred from its addresses or path when the source left it out. */
function fdType(ev: SyscallEvent): FdType | undefined {
  const fd = ev.fd;
  if (!fd) return undefined;
  if (fd.type) return fd.type;
  const ip = fd.sip ?? fd.cip;
  if (ip !== undefined) return ip.includes(':') ? 'ipv6' : 'ipv4';
  if (fd.name?.startsWith('/')) return 'file';
  return undefined;
}

/** The tables above as maps: looked up on every event, with keys that come from data. */
const TYPECHAR_OF = new Map<string, string>(Object.entries(TYPECHAR));
const FD_CREATING_TYPECHAR_OF = new Map<string, string>(Object.entries(FD_CREATING_TYPECHAR));

/** table[key] for a key from data: a map lookup for text, the own-property rule for anything else. */
function lookup(map: ReadonlyMap<string, string>, table: Readonly<Record<string, string>>, key: unknown): string | undefined {
  return typeof key === 'string' ? map.get(key) : own(table, key as string);
}

function fdTypechar(ev: SyscallEvent): string | undefined {
  const t = fdType(ev);
  if (t) return lookup(TYPECHAR_OF, TYPECHAR, t) ?? 'o';
  if (ev.fd) return lookup(FD_CREATING_TYPECHAR_OF, FD_CREATING_TYPECHAR, ev.type) ?? 'o';
  // No fd state at all: Falco guesses from the event type, for fd-creating events only.
  return lookup(FD_CREATING_TYPECHAR_OF, FD_CREATING_TYPECHAR, ev.type);
}

/** A path argument resolved against the process cwd when relative. */
function resolvePath(ev: SyscallEvent, p: string): string {
  if (p.startsWith('/') || !ev.proc.cwd) return p;
  return posixPath.resolve(ev.proc.cwd, p);
}

/** The path an open-family event names, straight from its arguments. */
function openPathArg(ev: SyscallEvent): string | undefined {
  if (!OPEN_TYPES.has(ev.type) && ev.type !== 'creat') return undefined;
  const v = ev.args?.name ?? ev.args?.path ?? ev.args?.pathname;
  return typeof v === 'string' ? v : undefined;
}

function fdName(ev: SyscallEvent): string | undefined {
  const fd = ev.fd;
  if (fd?.name !== undefined) return fd.name;
  if (fd && fd.cip !== undefined && fd.sip !== undefined) {
    return `${fd.cip}:${fd.cport ?? 0}->${fd.sip}:${fd.sport ?? 0}`;
  }
  // A failed open has no fd, yet Falco still names the file it tried.
  const p = openPathArg(ev);
  return p === undefined ? undefined : resolvePath(ev, p);
}

/** fd type for path fields: a failed open has no fd but is still about a file (Falco's null-fd case). */
const pathKind = (ev: SyscallEvent): FdType | undefined => fdType(ev) ?? (!ev.fd && openPathArg(ev) !== undefined ? 'file' : undefined);

function fdDirectory(ev: SyscallEvent): string | undefined {
  const t = pathKind(ev);
  const name = fdName(ev);
  if (name === undefined) return undefined;
  if (t === 'directory') return name;
  if (t !== 'file') return undefined;
  const pos = name.lastIndexOf('/');
  if (pos <= 0) return '/';
  return pos < name.length - 1 ? name.slice(0, pos) : name;
}

/** Is the local end the server? Unknown is taken as the client, except for accepted sockets. */
const localIsServer = (fd: FdInfo, ev: SyscallEvent): boolean => fd.is_server ?? ev.type.startsWith('accept');

/** Socket-only getter: undefined unless the fd is an IP socket. */
function sock<T>(get: (fd: FdInfo, ev: SyscallEvent) => T | undefined): Get {
  return (ev) => {
    const fd = ev.fd;
    if (!fd || !isSocketType(fdType(ev))) return undefined;
    return get(fd, ev) as Extracted;
  };
}

/** Both ends, for fd.ip, fd.port and fd.net: a comparison holds when either end matches. */
const bothEnds = <T extends FieldValue>(a: T | undefined, b: T | undefined): T[] =>
  [a, b].filter((v): v is T => v !== undefined);

/**
 * bothEnds over a socket's two ends as an AnyOf: client end, then server end, no array. Only
 * deciding that the fd is an IP socket may throw (on malformed data), and then, as `sock` under
 * `safe` gives undefined, no value is tested.
 */
function eitherEnd(client: 'cip' | 'cport', server: 'sip' | 'sport'): AnyOf {
  return (e, test) => {
    const ev = e as SyscallEvent;
    let fd: FdInfo | undefined;
    try {
      fd = ev.fd;
      if (!fd || !isSocketType(fdType(ev))) return false;
    } catch {
      return false;
    }
    const a = fd[client];
    if (a !== undefined && test(a)) return true;
    const b = fd[server];
    return b !== undefined && test(b);
  };
}

/** container.id's value, for the fd.container* fields that prefix it. */
const containerId = (ev: SyscallEvent): string => {
  const c = ev.container;
  return c && c.id ? c.id : 'host';
};

const localIp = (fd: FdInfo, ev: SyscallEvent) => (localIsServer(fd, ev) ? fd.sip : fd.cip);
const remoteIp = (fd: FdInfo, ev: SyscallEvent) => (localIsServer(fd, ev) ? fd.cip : fd.sip);
const localPort = (fd: FdInfo, ev: SyscallEvent) => (localIsServer(fd, ev) ? fd.sport : fd.cport);
const remotePort = (fd: FdInfo, ev: SyscallEvent) => (localIsServer(fd, ev) ? fd.cport : fd.sport);
const localName = (fd: FdInfo, ev: SyscallEvent) => (localIsServer(fd, ev) ? fd.sip_name : fd.cip_name);
const remoteName = (fd: FdInfo, ev: SyscallEvent) => (localIsServer(fd, ev) ? fd.cip_name : fd.sip_name);

const ANY = { isList: true, anyWhenNoArg: true } as const;

const fdFields: FieldDef[] = [
  plain('fd.num', 'int64', 'Number of the fd the event used or created; -1 when a call that creates one failed.', (ev) => {
    if (ev.fd?.num !== undefined) return ev.fd.num;
    if (lookup(FD_CREATING_TYPECHAR_OF, FD_CREATING_TYPECHAR, ev.type) !== undefined && ev.res !== undefined) return ev.res >= 0 ? ev.res : -1;
    const a = ev.args?.fd;
    return typeof a === 'number' ? a : undefined;
  }),
  plain('fd.type', 'charbuf', 'Kind of fd: file, directory, ipv4, ipv6, unix, pipe, event, signalfd, eventpoll, inotify, timerfd, netlink, bpf, memfd, …', (ev) => fdType(ev)),
  plain('fd.typechar', 'charbuf', "fd kind as one character: f file, d directory, 4 ipv4, 6 ipv6, u unix, p pipe, e event, s signalfd, l eventpoll, i inotify, t timerfd, n netlink, b bpf, r io_uring, m memfd, P pidfd, o other.", (ev) => fdTypechar(ev)),
  plain('fd.name', 'charbuf', 'Full name: the absolute path of a file, "cip:cport->sip:sport" for a socket.', (ev) => fdName(ev)),
  plain('fd.nameraw', 'charbuf', 'File path as the process passed it, before it was made absolute.', (ev) =>
    ev.fd?.nameraw ?? openPathArg(ev) ?? (pathKind(ev) === 'file' ? ev.fd?.name : undefined)),
  plain('fd.name_changed', 'bool', "True when this event changed the fd's name (e.g. a UDP socket sending to a new peer).", (ev) =>
    ev.fd ? ev.fd.name_changed === true : undefined),
  plain('fd.directory', 'charbuf', 'Directory holding the file (for a directory fd, the directory itself).', fdDirectory),
  plain('fd.filename', 'charbuf', 'File name without its directory.', (ev) => {
    const name = fdName(ev);
    if (name === undefined || pathKind(ev) !== 'file') return undefined;
    const pos = name.lastIndexOf('/');
    if (pos < 0) return '/';
    return pos < name.length - 1 ? name.slice(pos + 1) : name;
  }),
  plain('fd.ip', 'ipaddr', 'Either IP address of the socket (client or server): matches when one of them does.', sock((fd) => bothEnds(fd.cip, fd.sip)), { ...ANY, bindAny: () => eitherEnd('cip', 'sip') }),
  plain('fd.cip', 'ipaddr', 'IP address of the client end of the socket.', sock((fd) => fd.cip)),
  plain('fd.sip', 'ipaddr', 'IP address of the server end of the socket.', sock((fd) => fd.sip)),
  plain('fd.lip', 'ipaddr', 'Local IP address (the server address when this process accepted the connection).', sock(localIp)),
  plain('fd.rip', 'ipaddr', 'IP address of the remote end of the socket.', sock(remoteIp)),
  plain('fd.port', 'port', 'Either port of the socket: matches when one of them does.', sock((fd) => bothEnds(fd.cport, fd.sport)), { ...ANY, bindAny: () => eitherEnd('cport', 'sport') }),
  plain('fd.cport', 'port', 'Port of the client end of a TCP/UDP socket.', sock((fd) => fd.cport)),
  plain('fd.sport', 'port', 'Port of the server end of a TCP/UDP socket.', sock((fd) => fd.sport)),
  plain('fd.lport', 'port', 'Port of the local end of a TCP/UDP socket.', sock(localPort)),
  plain('fd.rport', 'port', 'Port of the remote end of a TCP/UDP socket.', sock(remotePort)),
  plain('fd.net', 'ipnet', 'Either address of the socket, for network (CIDR) comparisons.', sock((fd) => bothEnds(fd.cip, fd.sip)), { ...ANY, bindAny: () => eitherEnd('cip', 'sip') }),
  plain('fd.cnet', 'ipnet', 'Client address, for network (CIDR) comparisons.', sock((fd) => fd.cip)),
  plain('fd.snet', 'ipnet', 'Server address, for network (CIDR) comparisons.', sock((fd) => fd.sip)),
  plain('fd.lnet', 'ipnet', 'Local address, for network (CIDR) comparisons.', sock(localIp)),
  plain('fd.rnet', 'ipnet', 'Remote address, for network (CIDR) comparisons.', sock(remoteIp)),
  plain('fd.cip.name', 'charbuf', 'Domain name known for the client address.', sock((fd) => fd.cip_name)),
  plain('fd.sip.name', 'charbuf', 'Domain name known for the server address.', sock((fd) => fd.sip_name)),
  plain('fd.lip.name', 'charbuf', 'Domain name known for the local address.', sock(localName)),
  plain('fd.rip.name', 'charbuf', 'Domain name known for the remote address.', sock(remoteName)),
  bare('fd.l4proto', 'charbuf', 'Transport protocol of a socket: tcp, udp, icmp or raw.', (ev) => ev.fd?.l4proto),
  plain('fd.sockfamily', 'charbuf', "Socket family: 'ip' or 'unix'.", (ev) => {
    if (ev.fd?.sockfamily) return ev.fd.sockfamily;
    const t = fdType(ev);
    return isSocketType(t) ? 'ip' : t === 'unix' ? 'unix' : undefined;
  }),
  plain('fd.is_server', 'bool', 'True when this process is the server end of the connection.', sock((fd, ev) => localIsServer(fd, ev))),
  bare('fd.connected', 'bool', 'True when the socket is connected.', (ev) => ev.fd?.connected),
  // Falco lists every open fd's type; the event carries only its own fd, so that is the list.
  withArg('fd.types', 'charbuf', "Types of the process's fds; fd.types[N] gives the type of fd N. Only the event's fd is known here.",
    { arg: 'index', argOptional: true, isList: true }, (arg) => (ev) => {
      const t = fdType(ev);
      if (t === undefined || !ev.fd) return undefined;
      if (arg !== undefined && ev.fd.num !== Number(arg)) return undefined;
      return [t];
    }),
  plain('fd.dev', 'int64', 'Device number of the file.', (ev) => ev.fd?.dev),
  plain('fd.dev.major', 'int64', 'Major device number of the file.', (ev) => (ev.fd?.dev === undefined ? undefined : ev.fd.dev >>> 20)),
  plain('fd.dev.minor', 'int64', 'Minor device number of the file.', (ev) => (ev.fd?.dev === undefined ? undefined : ev.fd.dev & 0xfffff)),
  plain('fd.ino', 'int64', 'Inode number of the file.', (ev) => ev.fd?.ino),
  plain('fd.containername', 'charbuf', 'Container id and fd name joined by a colon.', (ev) => {
    const n = fdName(ev);
    return n === undefined ? undefined : `${containerId(ev)}:${n}`;
  }),
  plain('fd.containerdirectory', 'charbuf', 'Container id and fd directory joined by a colon.', (ev) => {
    const d = fdDirectory(ev);
    return d === undefined ? undefined : `${containerId(ev)}:${d}`;
  }),
];

// ---------------------------------------------------------------------------------------------
// Filesystem paths named by arguments (unlink, rename, symlink… have no fd)

const LINK_TYPES = new Set(['symlink', 'symlinkat']);
const TWO_PATH_TYPES = new Set(['rename', 'renameat', 'renameat2', 'link', 'linkat']);

function pathArg(ev: SyscallEvent, role: 'name' | 'source' | 'target'): string | undefined {
  const a = ev.args;
  if (!a) return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  if (role === 'name') {
    if (TWO_PATH_TYPES.has(ev.type) || LINK_TYPES.has(ev.type)) return undefined;
    return str(a.name) ?? str(a.path) ?? str(a.pathname) ?? str(a.filename);
  }
  if (LINK_TYPES.has(ev.type)) return role === 'source' ? str(a.target) : str(a.linkpath);
  if (TWO_PATH_TYPES.has(ev.type)) return role === 'source' ? str(a.oldpath) : str(a.newpath);
  return undefined;
}

const fsPathFields: FieldDef[] = (['name', 'source', 'target'] as const).flatMap((role) => [
  plain(`fs.path.${role}`, 'charbuf', `Path the call acts on (${role === 'name' ? 'its single path' : `the ${role} of a rename, link or symlink`}), made absolute.`, (ev) => {
    const p = pathArg(ev, role);
    // A symlink's target is stored as given: it is not resolved against the caller's cwd.
    return p === undefined ? undefined : role === 'source' && LINK_TYPES.has(ev.type) ? p : resolvePath(ev, p);
  }),
  plain(`fs.path.${role}raw`, 'charbuf', `fs.path.${role} exactly as the process passed it.`, (ev) => pathArg(ev, role)),
]);

// ---------------------------------------------------------------------------------------------
// Containers and Kubernetes

/** Outside any container (also when the container's id says "host"). Never throws. */
const inHost = (ev: SyscallEvent): boolean => {
  const c = ev.container;
  return !c || !c.id || c.id === 'host';
};

/** Container getter that is <NA> for host processes. */
function ctr(get: (c: NonNullable<SyscallEvent['container']>, ev: SyscallEvent) => Extracted): Get {
  return (ev) => (inHost(ev) ? undefined : get(ev.container!, ev));
}

const mountText = (m: ContainerMount): string => `${m.source}:${m.dest}:${m.mode ?? ''}:${m.rw ? 'true' : 'false'}:${m.propagation ?? ''}`;

/**
 * container.mount.* take [N] (the Nth mount) or [glob]; the glob matches the mount source, except
 * for container.mount.source where it matches the destination (Falco's convention).
 */
function mountField(name: string, desc: string, by: 'source' | 'dest', pick: (m: ContainerMount) => string): FieldDef {
  return withArg(name, 'charbuf', desc, { arg: 'key' }, (arg) => {
    const key = arg ?? '';
    const find: (ms: ContainerMount[]) => ContainerMount | undefined = isDigits(key)
      ? (ms) => ms[Number(key)]
      : ((re) => (ms: ContainerMount[]) => ms.find((m) => m[by] === key || re.test(m[by])))(globToRegExp(key));
    // In a container with no such mount the value is "N/A", as Falco's container plugin gives it:
    // Falco's sensitive_mount macro tests `not container.mount.dest[/proc*] in ("<NA>","N/A")`.
    return ctr((c) => {
      const m = c.mounts ? find(c.mounts) : undefined;
      return m ? pick(m) : 'N/A';
    });
  });
}

/** "k:v, k:v" sorted by key, without Kubernetes-internal labels: Falco's label list text. */
function labelsText(labels: Record<string, string> | undefined): string | undefined {
  if (!labels) return undefined;
  return Object.keys(labels)
    .filter((k) => !k.startsWith('annotation.') && !k.startsWith('io.kubernetes.'))
    .sort()
    .map((k) => (labels[k] ? `${k}:${labels[k]}` : k))
    .join(', ');
}

const containerFields: FieldDef[] = [
  bare('container.id', 'charbuf', 'Short (12 hex) container id; "host" for processes outside containers.', containerId),
  plain('container.full_id', 'charbuf', 'Full (64 hex) container id.', ctr((c) => c.full_id)),
  bare('container.name', 'charbuf', 'Container name; "host" for processes outside containers.', (ev) => (inHost(ev) ? 'host' : ev.container!.name)),
  bare('container.image', 'charbuf', 'Image reference as the runtime reports it, e.g. docker.io/library/nginx:1.25.', (ev) => (inHost(ev) ? undefined : ev.container!.image)),
  bare('container.image.id', 'charbuf', 'Id of the container image.', (ev) => (inHost(ev) ? undefined : ev.container!.image_id)),
  bare('container.image.repository', 'charbuf', 'Image repository, without tag or digest.', (ev) => (inHost(ev) ? undefined : ev.container!.image_repository)),
  bare('container.image.tag', 'charbuf', 'Tag of the container image, e.g. latest.', (ev) => (inHost(ev) ? undefined : ev.container!.image_tag)),
  bare('container.image.digest', 'charbuf', 'Image registry digest (sha256:…).', (ev) => (inHost(ev) ? undefined : ev.container!.image_digest)),
  bare('container.type', 'charbuf', 'Container runtime: docker, containerd, cri-o, podman, …', (ev) => (inHost(ev) ? undefined : ev.container!.type)),
  bare('container.privileged', 'bool', 'True for a privileged container.', (ev) => (inHost(ev) ? undefined : ev.container!.privileged)),
  plain('container.mounts', 'charbuf', 'All mounts, comma separated, each as source:dest:mode:rdwr:propagation.', ctr((c) => c.mounts?.map(mountText).join(','))),
  mountField('container.mount', 'One mount as source:dest:mode:rdwr:propagation, by index or by source path glob.', 'source', mountText),
  mountField('container.mount.source', 'Source of a mount, chosen by index or by destination path glob.', 'dest', (m) => m.source),
  mountField('container.mount.dest', 'Destination of a mount, chosen by index or by source path glob (container.mount.dest[/proc*]).', 'source', (m) => m.dest),
  mountField('container.mount.mode', 'Mode of a mount, chosen by index or by source path glob.', 'source', (m) => m.mode ?? ''),
  mountField('container.mount.rdwr', 'Whether a mount is read-write ("true"/"false"), chosen by index or by source path glob.', 'source', (m) => (m.rw ? 'true' : 'false')),
  mountField('container.mount.propagation', 'Propagation of a mount, chosen by index or by source path glob.', 'source', (m) => m.propagation ?? ''),
  plain('container.start_ts', 'uint64', 'Container start time, ns since the epoch.', ctr((c) => c.start_ts)),
  plain('container.duration', 'reltime', 'Nanoseconds since the container started.', ctr((c, ev) => sinceStart(ev, c.start_ts))),
  withArg('container.label', 'charbuf', 'One container label, container.label[KEY] or container.label.KEY.', { arg: 'key' }, (arg) =>
    ctr((c) => (arg === undefined ? undefined : own(c.labels, arg)))),
  plain('container.labels', 'charbuf', 'Container labels as "key:value, key:value".', ctr((c) => labelsText(c.labels))),
  // Falco's placeholder, filled by its -pc/-pk options; we always render the container part.
  plain('container.info', 'charbuf', 'Container summary for outputs: "container_id=<id> container_name=<name>".', (ev) =>
    inHost(ev) ? 'container_id=host container_name=host' : `container_id=${ev.container!.id} container_name=${ev.container!.name ?? '<NA>'}`),
];

const k8sFields: FieldDef[] = [
  bare('k8s.ns.name', 'charbuf', 'Kubernetes namespace of the pod.', (ev) => ev.k8s?.ns_name),
  bare('k8s.pod.name', 'charbuf', 'Name of the Kubernetes pod.', (ev) => ev.k8s?.pod_name),
  plain('k8s.pod.uid', 'charbuf', 'UID of the Kubernetes pod.', (ev) => ev.k8s?.pod_uid),
  plain('k8s.pod.id', 'charbuf', 'Legacy name of k8s.pod.uid.', (ev) => ev.k8s?.pod_uid),
  withArg('k8s.pod.label', 'charbuf', 'One pod label, k8s.pod.label[KEY] or k8s.pod.label.KEY.', { arg: 'key' }, (arg) => (ev) =>
    arg === undefined ? undefined : own(ev.k8s?.pod_labels, arg)),
  plain('k8s.pod.labels', 'charbuf', 'Pod labels as "key:value, key:value".', (ev) => labelsText(ev.k8s?.pod_labels)),
  plain('k8s.pod.ip', 'charbuf', 'IP address of the Kubernetes pod.', (ev) => ev.k8s?.pod_ip),
  // Falco's (pre-0.37) workload fields, from the pod's owner chain (pod enrichment).
  plain('k8s.rs.name', 'charbuf', 'Name of the ReplicaSet that owns the pod.', (ev) => ownerNamed(ev, 'ReplicaSet')),
  plain('k8s.deployment.name', 'charbuf', 'Name of the Deployment that owns the pod (through its ReplicaSet).', (ev) => ownerNamed(ev, 'Deployment')),
];

function ownerNamed(ev: SyscallEvent, kind: string): string | undefined {
  return ev.k8s?.owners?.find((o) => o.kind === kind)?.name;
}

export const syscallFields: FieldDef[] = [
  ...eventFields,
  ...processFields,
  ...userFields,
  ...fdFields,
  ...fsPathFields,
  ...containerFields,
  ...k8sFields,
];

/**
 * The fields Falco 0.42's container plugin (0.4) marks as suggested output, in its order: Falco
 * appends them to every syscall rule's output by default (append_output: suggested_output).
 */
const SUGGESTED = ['container.id', 'container.name', 'container.image.repository', 'container.image.tag', 'k8s.pod.name', 'k8s.ns.name'];
SUGGESTED.forEach((name, i) => (syscallFields.find((f) => f.name === name)!.suggestedOutput = i + 1));
