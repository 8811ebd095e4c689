/**
 * The event model (ARCHITECTURE.md, "The event model").
 *
 * An event is a plain object `{ source, type, ts, ... }`. Timestamps are nanoseconds since the
 * epoch as `bigint` in memory and as decimal strings in JSON lines, because a JS number loses
 * nanoseconds past 2^53. Every syscall event is an exit event (`evt.dir` is `<`).
 *
 * Rules never read these properties directly: the field catalog (src/fields) maps each Falco
 * field name to an extractor over this shape, so the shape can grow without touching rules.
 */

/** Falco's event source names. */
export type SourceName = 'syscall' | 'k8s_audit' | 'github' | (string & {});

export interface BaseEvent {
  source: SourceName;
  /** Falco event type: execve, connect, openat, chmod, … or the audit/webhook kind. */
  type: string;
  /** Nanoseconds since the epoch. */
  ts: bigint;
  /** Monotonic event number (evt.num); assigned by the source. */
  num?: number;
  /** Host that produced the event (evt.hostname); the local hostname when absent. */
  hostname?: string;
}

/** A process as the enrichment layer knows it. `parent` links form the ancestry chain. */
export interface ProcessInfo {
  pid: number;
  tid?: number;
  ppid?: number;
  /** pid and tid as seen inside the process's own pid namespace. */
  vpid?: number;
  vtid?: number;
  sid?: number;
  vpgid?: number;
  /** Kernel comm (proc.name): at most 15 characters. */
  name: string;
  /** argv[0] (proc.exe). */
  exe?: string;
  /** Full path of the executable (proc.exepath), the /proc/PID/exe target. */
  exepath?: string;
  /** argv[1..] (proc.args is these joined by spaces). */
  args?: string[];
  cwd?: string;
  /** Environment as `KEY=value` strings. */
  env?: string[];
  /** Controlling terminal device number; 0 when none. */
  tty?: number;
  uid?: number;
  gid?: number;
  /** Audit login uid; -1 (4294967295 as unsigned) when unset. */
  loginuid?: number;
  /** Names resolved for uid, gid and loginuid (user.name, group.name, user.loginname). */
  user?: string;
  group?: string;
  loginname?: string;
  homedir?: string;
  shell?: string;
  /** Process start time, ns since the epoch: with pid, the process's identity. */
  start_ts?: bigint;
  /** Executable lives on the container's writable (overlay upper) layer. */
  exe_upper_layer?: boolean;
  /** Executable was run from a memfd (fileless). */
  exe_from_memfd?: boolean;
  exe_writable?: boolean;
  /** The executable was deleted after it started (/proc/PID/exe ends in " (deleted)"). */
  exe_deleted?: boolean;
  /** SHA-256 of the executable file (mw.proc.exe_sha256), hashed once per file version. */
  exe_sha256?: string;
  exe_ino?: number;
  exe_ino_ctime?: bigint;
  exe_ino_mtime?: bigint;
  /** Capability sets in Falco's text form, e.g. "CAP_CHOWN CAP_SYS_ADMIN". */
  cap_permitted?: string;
  cap_effective?: string;
  cap_inheritable?: string;
  is_vpgid_leader?: boolean;
  is_sid_leader?: boolean;
  /** Session leader and process group leader, for proc.sname and proc.vpgid.*. */
  session_leader?: Pick<ProcessInfo, 'name' | 'exe' | 'exepath' | 'pid'>;
  vpgid_leader?: Pick<ProcessInfo, 'name' | 'exe' | 'exepath' | 'pid'>;
  parent?: ProcessInfo;
}

export type FdType =
  | 'file' | 'directory' | 'ipv4' | 'ipv6' | 'unix' | 'pipe' | 'event' | 'signalfd'
  | 'eventpoll' | 'inotify' | 'timerfd' | 'netlink' | 'bpf' | 'userfaultfd' | 'io_uring'
  | 'memfd' | 'pidfd';

/** The file descriptor an event acts on. For sockets, client/server follow Falco's fd.c*, fd.s*. */
export interface FdInfo {
  num?: number;
  type?: FdType;
  /** Path for files; "cip:cport->sip:sport" for sockets (fd.name); derived when absent. */
  name?: string;
  nameraw?: string;
  name_changed?: boolean;
  l4proto?: 'tcp' | 'udp' | 'icmp' | 'raw';
  sockfamily?: 'ip' | 'unix';
  cip?: string;
  cport?: number;
  sip?: string;
  sport?: number;
  /** True when this process is the server side of the socket (accept): local = server. */
  is_server?: boolean;
  connected?: boolean;
  /** Names for the addresses, set by the DNS enricher (fd.sip.name, fd.cip.name, …). */
  sip_name?: string;
  cip_name?: string;
  /**
   * True when that name came only from a DNS answer the host received (not from a hosts file or
   * the config): an answer can be forged, so responses acting on it alone stay dry runs.
   */
  sip_name_dns?: boolean;
  cip_name_dns?: boolean;
  /** Sockets (eBPF driver): the inode number of the network namespace the socket lives in. */
  netns?: number;
  dev?: number;
  ino?: number;
}

export interface ContainerMount {
  source: string;
  dest: string;
  mode?: string;
  rw?: boolean;
  propagation?: string;
}

export interface ContainerInfo {
  /** 12-hex short id, or "host" for processes outside any container. */
  id: string;
  full_id?: string;
  name?: string;
  /** Full image reference as the runtime reports it (container.image). */
  image?: string;
  image_repository?: string;
  image_tag?: string;
  image_digest?: string;
  image_id?: string;
  /** docker, containerd, cri-o, podman, … */
  type?: string;
  privileged?: boolean;
  mounts?: ContainerMount[];
  start_ts?: bigint;
  labels?: Record<string, string>;
}

export interface K8sInfo {
  ns_name?: string;
  pod_name?: string;
  pod_uid?: string;
  pod_labels?: Record<string, string>;
  pod_ip?: string;
  /** Owning workload, as found from the pod's ownerReferences. */
  owner_kind?: string;
  owner_name?: string;
  /** The pod's owners from its direct controller to the top one (ReplicaSet, then Deployment). */
  owners?: Array<{ kind: string; name: string; uid?: string; apiVersion?: string }>;
  node_name?: string;
  service_account?: string;
  /** Images of the pod's containers, as the pod spec names them. */
  images?: string[];
}

/** A syscall exit event. `args` holds evt.arg.* as Falco renders them (strings or numbers). */
export interface SyscallEvent extends BaseEvent {
  source: 'syscall';
  /** Return value (evt.rawres); negative errno on failure. */
  res?: number;
  args?: Record<string, string | number>;
  /**
   * What the event alone cannot say about an argument, from enrichment (libs resolves these from
   * its fd, thread and user tables): the fd an fd-typed argument other than `fd` names (dirfd,
   * olddirfd, linkdirfd, oldfd…), by argument name.
   */
  argFds?: Record<string, FdInfo>;
  /** Names found for uid, gid and pid arguments (setuid's uid: "nobody"), by argument name. */
  argNames?: Record<string, string>;
  /** Payload bytes seen by a read/write-family event (evt.buffer), as latin1 text. */
  buffer?: string;
  proc: ProcessInfo;
  fd?: FdInfo;
  container?: ContainerInfo;
  k8s?: K8sInfo;
  /** CPU sampler figures (mw.cpu.*), set on the sampler's events. */
  cpu?: Record<string, number | string>;
  /** RandomX detector figures (mw.fpu.*), set on its mw_fpu_rounding events. */
  fpu?: Record<string, number>;
  /** An exec the driver lost (a flood) and a later read of /proc found (mw.exec.recovered). */
  recovered?: boolean;
  /**
   * An exec's signature (KernelExec.sig) the kernel does not yet count as quiet: when nothing comes
   * of the event (no rule matches, no detector answers), the pipeline hands it back to the driver
   * (EventPipelineOptions.onQuietExec), so that later execs like it need not wake the agent at once.
   */
  execSig?: number;
}

/** Events of plugin sources (k8s_audit, github) carry their decoded JSON payload. */
export interface PluginEvent extends BaseEvent {
  payload: unknown;
}

export type Event = SyscallEvent | PluginEvent | (BaseEvent & Record<string, unknown>);

/** Keys whose decimal-string values become bigints when an event is read from JSON. */
const BIGINT_KEYS = new Set(['ts', 'start_ts', 'exe_ino_ctime', 'exe_ino_mtime']);

export class EventDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventDecodeError';
  }
}

function reviveBigints(value: unknown, where: string): unknown {
  if (Array.isArray(value)) return value.map((v, i) => reviveBigints(v, `${where}[${i}]`));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (BIGINT_KEYS.has(k) && (typeof v === 'string' || typeof v === 'number')) {
        const s = String(v);
        if (!/^-?\d+$/.test(s)) {
          throw new EventDecodeError(`${where}.${k}: expected nanoseconds as a decimal integer, got ${JSON.stringify(v)}`);
        }
        out[k] = BigInt(s);
      } else {
        out[k] = reviveBigints(v, `${where}.${k}`);
      }
    }
    return out;
  }
  return value;
}

/** Parse one JSON-lines record into an event; throws EventDecodeError naming what is wrong. */
export function decodeEvent(line: string): Event {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    throw new EventDecodeError(`not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new EventDecodeError('an event must be a JSON object');
  }
  const obj = raw as Record<string, unknown>;
  if (typeof obj.type !== 'string' || obj.type === '') throw new EventDecodeError('missing "type" (the Falco event type, e.g. "execve")');
  if (obj.source === undefined) obj.source = 'syscall';
  if (typeof obj.source !== 'string') throw new EventDecodeError('"source" must be a string (syscall, k8s_audit, github)');
  if (obj.ts === undefined) throw new EventDecodeError('missing "ts" (nanoseconds since the epoch, as a decimal string)');
  const ev = reviveBigints(obj, 'event') as Event;
  if (ev.source === 'syscall' && (typeof (ev as SyscallEvent).proc !== 'object' || (ev as SyscallEvent).proc === null)) {
    throw new EventDecodeError('a syscall event needs a "proc" object (at least {"pid": N, "name": "comm"})');
  }
  return ev;
}

/** Serialize an event to one JSON line, bigints as decimal strings. */
export function encodeEvent(ev: Event): string {
  return JSON.stringify(ev, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * A process lifecycle notice from the kernel (proc connector) or the /proc poller. It says only
 * that something happened to a pid; the process table reads /proc to turn an exec into an event.
 */
export interface ProcNotice {
  kind: 'exec' | 'fork' | 'exit' | 'uid';
  /** Thread group id (the process id). */
  pid: number;
  /** Thread id; equals pid for the main thread. */
  tid: number;
  /** For fork: the parent's pid. */
  ppid?: number;
  /** For uid: the new real and effective uid. */
  ruid?: number;
  euid?: number;
  /** For exit: the exit code. */
  exitCode?: number;
  /**
   * For fork, from the eBPF driver: the child's start time as the process table counts it, and its
   * pid in its own pid namespace. With both, the table builds the child without reading /proc.
   */
  startTs?: bigint;
  vpid?: number;
  /** ns since the epoch, when the notice was made. */
  ts: bigint;
  /**
   * For exec, from the eBPF driver: what the kernel saw at the exec itself. The process may be gone
   * before /proc can be read; these make its event whole anyway (see applyKernelExec).
   */
  exec?: KernelExec;
  /**
   * For exec, from the proc connector: the process was reaped before its /proc could be read
   * (native/proc_connector.c MW_EXEC_REAPED): the table has nothing to read either.
   */
  reaped?: boolean;
}

/** An exec as the kernel saw it (src/sources/ebpf). */
export interface KernelExec {
  type: 'execve' | 'execveat';
  comm: string;
  /** argv[0..], the kernel's copy. */
  argv: string[];
  /** Full path of the executable; '' when the kernel could not name it. */
  exepath: string;
  uid: number;
  ppid: number;
  /** Start time as the process table counts it (btime + clock ticks). */
  startTs: bigint;
  /** Everything else /proc would have said (eBPF driver): the table then reads nothing. */
  facts?: KernelExecFacts;
  /**
   * The exec's signature (eBPF: struct mw_exec's sig, 53 bits): execs with the same one look alike
   * to the rules, but for the pid and times. 0 or undefined: none (other drivers). The table puts it
   * on the exec's event (execEvent), which every kernel-described exec's goes through.
   */
  sig?: number;
  /** The kernel found the signature judged harmless before (minewatch.h, struct mw_reader): the agent need not say so again. */
  quiet?: boolean;
}

/** MW_EXE_* (minewatch.h). */
export const EXE_UPPER = 1;
export const EXE_MEMFD = 2;
export const EXE_DELETED = 4;
export const EXE_OVERLAY = 8;
export const EXE_RDONLY = 16;
export const EXE_KNOWN = 32;

/**
 * What the kernel says about a process at its exec (eBPF: native/ebpf/minewatch.h, struct mw_exec):
 * all the process table needs, so that an exec costs no read of /proc (issue 16).
 */
export interface KernelExecFacts {
  /** undefined: not read (statusUnread). */
  ruid: number | undefined;
  euid: number;
  rgid: number | undefined;
  egid: number;
  /** undefined: unset (the kernel's (u32)-1). */
  loginuid: number | undefined;
  /**
   * True: loginuid was not read (the proc connector, while nothing reads it): the process keeps
   * the forked entry's, which an exec does not change.
   */
  loginuidUnread?: boolean;
  /** undefined: not read (statusUnread); the table then guesses it from the forked entry. */
  vpid: number | undefined;
  /**
   * True: /proc/PID/status was not read (the proc connector, while no rule reads the vpid or the
   * capabilities: rules-read.ts STATUS_FIELDS): ruid, rgid, vpid and the capability sets are
   * undefined.
   */
  statusUnread?: boolean;
  /** As /proc/PID/stat's tty_nr encodes it; 0: none. */
  tty: number;
  /** MW_EXE_* flags; EXE_KNOWN unset: nothing below about the file was read. */
  exeFlags: number;
  /** The file's device as stat() gives st_dev (user space's dev_t encoding). */
  exeDev: bigint;
  exeIno: bigint;
  exeMtimeNs: bigint;
  exeCtimeNs: bigint;
  exeSize: bigint;
  exeMode: number;
  exeUid: number;
  exeGid: number;
  /** The cgroup v2 id and path ('/' for the root); 0n and '' when the kernel had none. */
  cgroupId: bigint;
  cgroupPath: string;
  /** A v1 controller's cgroup (cpu, else memory) id and path, where one is not at its root (hybrid and v1 hosts); 0n and '' otherwise. */
  cgroup1Id: bigint;
  cgroup1Path: string;
  /** undefined: not read (statusUnread). */
  capEff: bigint | undefined;
  capPrm: bigint | undefined;
  capInh: bigint | undefined;
  /** The environment (first MW_ENV_MAX bytes); undefined when the kernel could not copy it. */
  env: string[] | undefined;
}
