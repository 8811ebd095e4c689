/** Small helpers the benchmarks share. */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** A number with thousands separators and a fixed count of decimals. */
export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The p-th percentile (nearest rank) of `xs`. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

/** USER_HZ: the unit of /proc/PID/stat's CPU times. */
export function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** Fields 3.. of /proc/PID/stat (f[0] is field 3), undefined when the process is gone. */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime (and, with children, cutime + cstime) of a process, in seconds. */
export function cpuSeconds(pid: number | 'self', hz: number, children = false): number {
  const f = statFields(pid);
  if (!f) return 0;
  // f[0] is field 3: utime is field 14, stime 15, cutime 16, cstime 17.
  const own = Number(f[11]) + Number(f[12]);
  return (children ? Number(f[13]) + Number(f[14]) : own) / hz;
}

/**
 * CPU seconds of a whole process tree: the process, its reaped children (cutime + cstime) and
 * every live descendant (found by ppid in /proc).
 */
export function treeCpuSeconds(root: number, hz: number): number {
  const kids = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = kids.get(ppid);
    if (list) list.push(Number(name));
    else kids.set(ppid, [Number(name)]);
  }
  let total = cpuSeconds(root, hz, true);
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    total += cpuSeconds(pid, hz);
    stack.push(...(kids.get(pid) ?? []));
  }
  return total;
}

/** VmRSS of a process in MB (NaN when unreadable). */
export function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** An alert's time ("…T21:20:55.346508572Z", ns) in ms since the epoch, sub-ms kept. */
export function isoToEpochMs(iso: string): number {
  const m = /\.(\d+)Z$/.exec(iso);
  const whole = Date.parse(m ? iso.slice(0, m.index) + 'Z' : iso);
  return whole + (m ? Number(`0.${m[1]}`) * 1000 : 0);
}

/** Resolves once the child has exited. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** The 1-, 5- and 15-minute load averages, as /proc/loadavg says them. */
/**
 * The machine's CPU time so far from /proc/stat's first line, in ticks: all of it, and the part
 * stolen by the hypervisor (a VM's vCPU waiting on a busy host: figures from a window with much of
 * it are not comparable with one without; undefined where the kernel does not say).
 */
export function cpuTicks(): { total: number; steal: number } | undefined {
  try {
    const v = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    if (v.length < 8 || v.some((x) => !Number.isFinite(x))) return undefined;
    // user nice system idle iowait irq softirq steal [guest guest_nice: inside user and nice]
    return { total: v.slice(0, 8).reduce((a, b) => a + b, 0), steal: v[7]! };
  } catch {
    return undefined;
  }
}

/** The share of the machine's CPU time stolen between two cpuTicks() readings, in percent; undefined where unknown. */
export function stealPct(from: ReturnType<typeof cpuTicks>, to: ReturnType<typeof cpuTicks>): number | undefined {
  if (!from || !to || to.total <= from.total) return undefined;
  return ((to.steal - from.steal) / (to.total - from.total)) * 100;
}

export function loadAvg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

/** median (min–max) of a series, each formatted. */
export function spread(xs: number[], digits = 1, unit = ''): string {
  if (xs.length === 0) return 'n/a';
  return `${fmt(median(xs), digits)}${unit} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}${unit} over ${xs.length})`;
}

/** The last pid handed out on the host (/proc/loadavg), to count what started during a window. */
export function lastPid(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/)[4]);
}

/** Processes and threads started between two lastPid() readings (pids wrap at pid_max). */
export function pidsBetween(a: number, b: number): number {
  if (b >= a) return b - a;
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  return max - a + b;
}
