/**
 * minewatch's own syscall-source fields, all under `mw.` so a Falco user can tell them from
 * Falco's at a glance (ARCHITECTURE.md, "The event model"):
 *
 *   mw.wallet.found / .type / .address   a valid wallet address in the command line or environment
 *   mw.stratum.url / .scheme / .host / .port   the first mining-pool (stratum-family) URL
 *   mw.miner.flags                       the arguments look like a miner's
 *   mw.stratum.method / .agent / .login  a mining protocol message in the first bytes a connection sent
 *   mw.dns.query                         the name a DNS answer the process received was for
 *   mw.cpu.percent / .limit_percent / .duration / .scope   figures set by the CPU sampler
 *   mw.fpu.rounding_* / .seconds / .busy_percent   figures set by the RandomX detector
 *   mw.proc.exe_sha256                   SHA-256 of the executable (set by the process table)
 *   mw.exec.recovered                    an exec found by a read of /proc after notices were lost
 *
 * Several rules often ask for these on one event (a wallet rule, a stratum rule, a flags rule),
 * so the work that is not trivial is done once per event (src/fields/memo.ts): a fresh record
 * per event, no map lookups on the hot path.
 */
import type { Event, SyscallEvent } from '../events.js';
import type { Extracted, FieldDef, FieldType } from './types.js';
import { perEventOf } from './memo.js';
import { findWallets, mayHoldWallet, type WalletMatch, type WalletType } from '../knowledge/wallets.js';
import { parseStratumPayload, type StratumMessage } from '../knowledge/stratum-wire.js';
import { parseStratumUrl, type StratumUrl } from '../knowledge/stratum-url.js';
import { hasMinerFlags } from '../knowledge/miner-flags.js';
import { parseDnsAnswer } from '../platform/dns-answer.js';
import { lastCall } from '../platform/last-call.js';

// ---- per-event cache ---------------------------------------------------------------------------

interface Parsed {
  cmdline?: string;
  /** Shared between events (LastParse, envWallets): never changed in place. */
  wallets?: readonly WalletMatch[];
  /** null: looked, found none. */
  stratum?: StratumUrl | null;
  minerFlags?: boolean;
  /** null: looked, found none. */
  wire?: StratumMessage | null;
  /** null: looked, not a DNS answer. */
  dnsQuery?: string | null;
}

/** Where one event's derived values are kept: per event through the engine's memo, else fresh per call. */
type Scratch = (ev: Event) => Parsed;
// Every key in the literal: one object of one shape per event, not one that changes its map (and
// outgrows its in-object slots) as the rules ask for the fields one by one.
const newParsed: Scratch = () => ({ cmdline: undefined, wallets: undefined, stratum: undefined, minerFlags: undefined, wire: undefined, dnsQuery: undefined });

function procOf(ev: Event): SyscallEvent['proc'] | undefined {
  const proc = (ev as Partial<SyscallEvent>).proc;
  return proc !== null && typeof proc === 'object' ? proc : undefined;
}

/**
 * proc.cmdline exactly as Falco builds it: the comm (proc.name), then each argument after one
 * space. argv[0] is not repeated: Falco's args are argv[1..].
 */
export function cmdlineOf(ev: Event, parsed: Scratch = newParsed): string | undefined {
  const proc = procOf(ev);
  if (!proc) return undefined;
  const p = parsed(ev);
  if (p.cmdline === undefined) {
    const args = proc.args ?? [];
    if (args.length === 0) p.cmdline = proc.name;
    else {
      // The last command line again when built from the same name and the same args array (a
      // storm of one command shares one argv: decode.ts BytesCache, kernel-exec.ts argsOf): one
      // string, not a new join per event, and the parses below see the same string.
      const l = lastCmdline;
      if (args !== l.args || proc.name !== l.name) lastCmdline = { name: proc.name, args, text: `${proc.name} ${args.join(' ')}` };
      p.cmdline = lastCmdline.text;
    }
  }
  return p.cmdline;
}

/** cmdlineOf()'s last command line, by what it was built from (nothing changes an args array once built). */
let lastCmdline: { name: string | undefined; args: readonly string[]; text: string } = { name: undefined, args: [], text: '' };

// ---- wallets -----------------------------------------------------------------------------------

/** An environment entry is normally a string; anything else is looked at as its text, as join() does. */
const mayHoldEnvWallet = (e: unknown): boolean => mayHoldWallet(typeof e === 'string' ? e : `${e as string}`);

function walletsOf(ev: Event, parsed: Scratch = newParsed): readonly WalletMatch[] | undefined {
  const cmd = cmdlineOf(ev, parsed);
  if (cmd === undefined) return undefined;
  const p = parsed(ev);
  if (!p.wallets) {
    const env = procOf(ev)?.env;
    // Command line first, so mw.wallet.address prefers what the process was told on its argv.
    const inCmd = cmdWallets(cmd);
    const inEnv = env && env.length > 0 ? envWallets(env) : NO_WALLETS;
    // A new array only when both hold some: the cached ones are shared, never added to.
    p.wallets = inEnv.length === 0 ? inCmd : inCmd.length === 0 ? inEnv : inCmd.concat(inEnv);
  }
  return p.wallets;
}

const NO_WALLETS: readonly WalletMatch[] = [];
/**
 * The parses of a command line below keep the last text's result (platform/last-call.ts): the
 * engine asks each event's, and a storm's events repeat one command line. The results are read,
 * never changed, so events share them.
 */
const cmdWallets = lastCall((cmd: string): readonly WalletMatch[] => findWallets(cmd));

/**
 * The wallets of an environment, by the array: processes share their environment's array (the
 * eBPF decoder gives equal environments one array, a fork keeps its parent's), so a storm of
 * commands started with one environment scans it once.
 */
const envWalletCache = new WeakMap<readonly unknown[], WalletMatch[]>();

function envWallets(env: readonly unknown[]): WalletMatch[] {
  let found = envWalletCache.get(env);
  if (found === undefined) {
    // Entries are joined by a newline, which no address spans: when no entry may hold one, the
    // joined text cannot either, and is not built.
    found = env.some(mayHoldEnvWallet) ? findWallets(env.join('\n')) : [];
    envWalletCache.set(env, found);
  }
  return found;
}

// ---- stratum URLs ------------------------------------------------------------------------------

function stratumOf(ev: Event, parsed: Scratch = newParsed): StratumUrl | undefined {
  const cmd = cmdlineOf(ev, parsed);
  if (cmd === undefined) return undefined;
  const p = parsed(ev);
  if (p.stratum === undefined) p.stratum = stratumUrls(cmd);
  return p.stratum ?? undefined;
}

const stratumUrls = lastCall((cmd: string): StratumUrl | null => parseStratumUrl(cmd) ?? null);

// ---- miner flags -------------------------------------------------------------------------------

function minerFlagsOf(ev: Event, parsed: Scratch = newParsed): boolean | undefined {
  const proc = procOf(ev);
  if (!proc) return undefined;
  const p = parsed(ev);
  if (p.minerFlags === undefined) p.minerFlags = argsMinerFlags(proc.args);
  return p.minerFlags;
}

/** The last args array's answer again (a storm of one command shares one array; arrays are never changed). */
const argsMinerFlags = lastCall(hasMinerFlags);

// ---- stratum on the wire ---------------------------------------------------------------------

function wireOf(ev: Event, parsed: Scratch = newParsed): StratumMessage | undefined {
  const buffer = (ev as Partial<SyscallEvent>).buffer;
  if (typeof buffer !== 'string') return undefined;
  const p = parsed(ev);
  if (p.wire === undefined) p.wire = parseStratumPayload(buffer) ?? null;
  return p.wire ?? undefined;
}

// ---- DNS answers -------------------------------------------------------------------------------

const RECV_TYPES = new Set(['recvfrom', 'recvmsg', 'read', 'recv']);

function dnsQueryOf(ev: Event, parsed: Scratch = newParsed): string | undefined {
  const e = ev as Partial<SyscallEvent>;
  if (typeof e.buffer !== 'string' || !RECV_TYPES.has(ev.type) || e.fd?.sport !== 53) return undefined;
  const p = parsed(ev);
  if (p.dnsQuery === undefined) p.dnsQuery = parseDnsAnswer(Buffer.from(e.buffer, 'latin1'))?.query ?? null;
  return p.dnsQuery ?? undefined;
}

// ---- RandomX detector figures ------------------------------------------------------------------

function fpuValue(ev: Event, key: string): Extracted {
  const fpu = (ev as Partial<SyscallEvent>).fpu;
  if (!fpu || typeof fpu !== 'object') return undefined;
  const v = fpu[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

// ---- CPU sampler figures -----------------------------------------------------------------------

function cpuValue(ev: Event, key: string, numeric: boolean): Extracted {
  const cpu = (ev as Partial<SyscallEvent>).cpu;
  if (!cpu || typeof cpu !== 'object') return undefined;
  const v = cpu[key];
  if (v === undefined || v === null) return undefined;
  if (!numeric) return String(v);
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

// ---- the catalog -------------------------------------------------------------------------------

function field(name: string, type: FieldType, desc: string, get: (ev: Event, parsed: Scratch) => Extracted, isList = false): FieldDef {
  return {
    name, type, desc, arg: 'none', isList,
    bind: (_arg, memo) => {
      const parsed = perEventOf(memo, newParsed);
      return (ev) => get(ev, parsed);
    },
  };
}

/** A RandomX detector figure: mw.fpu.<key> is the event's fpu[key]. */
const fpuField = (key: string, desc: string): FieldDef => field(`mw.fpu.${key}`, 'uint64', desc, (ev) => fpuValue(ev, key));

/** A CPU sampler figure: mw.cpu.<key> is the event's cpu[key], a number unless the field is text. */
const cpuField = (key: string, type: FieldType, desc: string): FieldDef =>
  field(`mw.cpu.${key}`, type, desc, (ev) => cpuValue(ev, key, type !== 'charbuf'));

export const mwFields: FieldDef[] = [
  field('mw.wallet.found', 'bool',
    'true when proc.cmdline or the process environment holds a valid cryptocurrency wallet address (Monero, Bitcoin, Ethereum; format and checksum verified)',
    (ev, parsed) => {
      const w = walletsOf(ev, parsed);
      return w === undefined ? undefined : w.length > 0;
    }),
  field('mw.wallet.type', 'charbuf',
    'the wallet families found in proc.cmdline and the environment (monero, bitcoin, ethereum), each once, in order of appearance',
    (ev, parsed) => {
      const w = walletsOf(ev, parsed);
      if (!w || w.length === 0) return undefined;
      return [...new Set<WalletType>(w.map((x) => x.type))];
    }, true),
  field('mw.wallet.address', 'charbuf',
    'the first valid wallet address in proc.cmdline, else in the environment',
    (ev, parsed) => walletsOf(ev, parsed)?.[0]?.address),
  field('mw.stratum.url', 'charbuf',
    'the first mining-pool URL of the stratum family in proc.cmdline (stratum+tcp://, stratum+ssl://, stratum2+tcp://, stratums://, ethproxy+tcp://, …)',
    (ev, parsed) => stratumOf(ev, parsed)?.url),
  field('mw.stratum.scheme', 'charbuf',
    'the scheme of mw.stratum.url, lowercased, e.g. stratum+tcp',
    (ev, parsed) => stratumOf(ev, parsed)?.scheme),
  field('mw.stratum.host', 'charbuf',
    'the host of mw.stratum.url, lowercased, without user info or port',
    (ev, parsed) => stratumOf(ev, parsed)?.host),
  field('mw.stratum.port', 'port',
    'the port of mw.stratum.url, when it names one',
    (ev, parsed) => stratumOf(ev, parsed)?.port),
  field('mw.stratum.method', 'charbuf',
    'the mining protocol method in the first bytes a connection sent (evt.buffer of the eBPF driver\'s write/send events): mining.subscribe, mining.authorize, mining.notify, … (stratum v1), login with an agent (XMRig and its forks), eth_submitLogin (eth-proxy); a message cut short still counts',
    (ev, parsed) => wireOf(ev, parsed)?.method),
  field('mw.stratum.agent', 'charbuf',
    "the miner's user agent in that message: XMRig's params.agent (\"XMRig/6.21.0 …\"), or mining.subscribe's first parameter",
    (ev, parsed) => wireOf(ev, parsed)?.agent),
  field('mw.stratum.login', 'charbuf',
    'the account the miner logs in as in that message (a wallet, or wallet.worker): XMRig login params.login, mining.authorize\'s first parameter',
    (ev, parsed) => wireOf(ev, parsed)?.login),
  field('mw.dns.query', 'charbuf',
    'the name (lowercased) a DNS answer was for, on the eBPF driver\'s recvfrom/recvmsg events from port 53: a lookup of a pool domain is an event of its own',
    dnsQueryOf),
  fpuField('rounding_count',
    "times the RandomX detector saw the process leave the CPU with a floating-point rounding mode other than round-to-nearest (MXCSR bits 13-14, at x86_fpu_regs_deactivated); cryptnono's monero detector kills at 64"),
  fpuField('rounding_percent',
    'mw.fpu.rounding_count in percent of all the times the process left the CPU since the first sighting (any rounding mode): RandomX is away from round-to-nearest most of the time, a program that sets another mode now and then is not'),
  fpuField('rounding_rarest',
    'times the process left the CPU in the rarest of the four rounding modes (nearest, down, up, toward zero) since the first sighting: RandomX uses all four alike, interval arithmetic never rounds toward zero'),
  fpuField('seconds',
    'seconds since the RandomX detector first saw the process away from round-to-nearest'),
  fpuField('busy_percent',
    "how much of its life the process's switched-out thread wanted a CPU (running, or runnable and waiting for one), in percent of the time since that thread started (the kernel's counts): a hashing thread never sleeps and shows ~100 however loaded the host"),
  fpuField('rounding_rate',
    'mw.fpu.rounding_count per second since the first sighting for this process'),
  fpuField('rounding_changes',
    "times the rounding mode differed from the one seen at the process's previous switch-out: RandomX changes it all the time, a program that set one mode once never does"),
  field('mw.miner.flags', 'bool',
    "true when the process arguments carry a miner's options: --donate-level, --randomx-*, --cpu-priority, -a/--algo with a mining algorithm (rx/0, cryptonight, kawpow, ethash, …), --coin monero, or -o/--url with a pool plus -u/--user",
    minerFlagsOf),
  field('mw.proc.exe_sha256', 'charbuf',
    "SHA-256 (lowercase hex) of the process's executable file, read through /proc/PID/exe so deleted, memfd and container files are hashed too; computed in the background once per file version, so the first event of a new binary may not have it yet",
    (ev) => procOf(ev)?.exe_sha256),
  field('mw.exec.recovered', 'bool',
    "true on an exec event the driver never delivered (its ring buffer, the proc connector or the agent's queue overflowed, as in an exec flood) and that the agent found afterwards by reading /proc: the process is described as it is now, and evt.time is when it was found, not when it exec'd",
    (ev) => (ev.type === 'execve' || ev.type === 'execveat' ? (ev as SyscallEvent).recovered === true : undefined)),
  cpuField('percent', 'int64',
    'CPU use of the process or container, in percent of one CPU (may exceed 100 on several CPUs), as measured by the CPU sampler'),
  cpuField('limit_percent', 'int64',
    "the container's CPU limit in percent of one CPU (cgroup cpu.max), when it has one"),
  cpuField('duration', 'reltime',
    'how long, in nanoseconds, the CPU use has stayed above the sampler threshold'),
  cpuField('scope', 'charbuf',
    "what the CPU figures measure: 'process' or 'container'"),
  // The pod context pod enrichment adds beyond Falco's k8s.* fields.
  field('mw.k8s.pod.owner.kind', 'charbuf', "kind of the pod's top owner (Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet, …)", (ev) => k8sOf(ev)?.owner_kind),
  field('mw.k8s.pod.owner.name', 'charbuf', "name of the pod's top owner", (ev) => k8sOf(ev)?.owner_name),
  field('mw.k8s.pod.node', 'charbuf', 'node the pod runs on', (ev) => k8sOf(ev)?.node_name),
  field('mw.k8s.pod.service_account', 'charbuf', 'ServiceAccount the pod runs as', (ev) => k8sOf(ev)?.service_account),
  field('mw.k8s.pod.images', 'charbuf', "images of the pod's containers as its spec names them, comma separated", (ev) => k8sOf(ev)?.images?.join(',')),
];

function k8sOf(ev: Event): SyscallEvent['k8s'] {
  return (ev as SyscallEvent).k8s;
}
