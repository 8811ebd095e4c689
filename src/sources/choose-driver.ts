/**
 * Which kernel source (driver) feeds the process table: the one asked for, or with `auto` the best
 * this host offers — eBPF, else the netlink proc connector, else the /proc poller. Each step down
 * is logged with its reason; a driver asked for by name that cannot run is an error that says,
 * for each driver tried, what failed and how to fix it.
 */
import type { ProcNotice, ProcNoticeSource } from './types.js';

export type DriverWant = 'auto' | 'ebpf' | 'proc' | 'procfs';
export type DriverName = Exclude<DriverWant, 'auto'>;

/** One driver that could not start, and why. */
export interface DriverFailure {
  driver: DriverName;
  reason: string;
  fix?: string;
}

const FIX: Record<DriverName, string> = {
  ebpf: 'run as root on a kernel with BTF (/sys/kernel/btf/vmlinux), or choose --driver proc',
  proc: 'run as root (the proc connector needs CAP_NET_ADMIN), or choose --driver procfs',
  procfs: 'make /proc readable',
};

export class DriverUnavailableError extends Error {
  constructor(readonly want: DriverWant, readonly tried: readonly DriverFailure[]) {
    super(tried.map((f) => `${f.driver === 'ebpf' ? 'eBPF' : f.driver} driver: ${f.reason}; fix: ${f.fix ?? FIX[f.driver]}`).join('; '));
    this.name = 'DriverUnavailableError';
  }
}

/** The drivers, built only when tried. */
export interface DriverMakers {
  ebpf(): ProcNoticeSource;
  proc(): ProcNoticeSource;
  procfs(): ProcNoticeSource;
}

export interface DriverLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface ChosenDriver<S extends ProcNoticeSource = ProcNoticeSource> {
  driver: DriverName;
  source: S;
}

function failureOf(driver: DriverName, err: unknown): DriverFailure {
  const fix = (err as { fix?: unknown }).fix;
  return { driver, reason: (err as Error).message ?? String(err), ...(typeof fix === 'string' ? { fix } : {}) };
}

/**
 * Start the driver `want` names (with `auto`, the first that starts). `onStarted` runs once a
 * driver is up, before its "driver chosen" line (the eBPF driver's extra field is its RandomX state).
 * Throws DriverUnavailableError when the driver asked for cannot run.
 */
export async function chooseDriver(
  want: DriverWant,
  notify: (n: ProcNotice) => void,
  make: DriverMakers,
  log: DriverLog,
  extra: (driver: DriverName, source: ProcNoticeSource) => object = () => ({}),
): Promise<ChosenDriver> {
  const tried: DriverFailure[] = [];
  const chosen = (driver: DriverName, source: ProcNoticeSource, why: string): ChosenDriver => {
    log.info({ driver, why: want === driver ? `asked for (--driver ${driver})` : why, ...extra(driver, source) }, 'driver chosen');
    return { driver, source };
  };
  if (want === 'auto' || want === 'ebpf') {
    const ebpf = make.ebpf();
    try {
      await ebpf.start(notify);
      return chosen('ebpf', ebpf, 'the best driver this host offers');
    } catch (err) {
      tried.push(failureOf('ebpf', err));
      if (want === 'ebpf') throw new DriverUnavailableError(want, tried);
      log.warn({ reason: (err as Error).message, fix: (err as { fix?: string }).fix }, 'eBPF driver unavailable; trying the proc connector');
    }
  }
  if (want !== 'procfs') {
    const conn = make.proc();
    try {
      await conn.start(notify);
      return chosen('proc', conn, 'the eBPF driver is unavailable');
    } catch (err) {
      tried.push(failureOf('proc', err));
      if (want === 'proc') throw new DriverUnavailableError(want, tried);
      log.warn({ reason: (err as Error).message }, 'proc connector unavailable; falling back to the /proc poller');
    }
  }
  const poller = make.procfs();
  try {
    await poller.start(notify);
  } catch (err) {
    throw new DriverUnavailableError(want, [...tried, failureOf('procfs', err)]);
  }
  return chosen('procfs', poller, 'neither eBPF nor the proc connector is available');
}
