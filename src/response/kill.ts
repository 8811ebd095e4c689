/**
 * `kill`: SIGKILL the process a match or a detector named, and only that process.
 *
 * The process is named by pid and start time (the pair is its identity: pids are reused). In
 * enforce mode:
 *   1. take a pidfd on the pid (pidfd_open, through the native addon): from now on the fd names
 *      whichever process had the pid at that moment, and nothing else, ever;
 *   2. read /proc/PID/stat and compare its start time with the request's: equal means the process
 *      holding the pid now is the one that was matched, and (since it held the pid all along) it is
 *      also the one the pidfd names;
 *   3. run the safety checks on it (host init, kernel thread, the agent, allow-list);
 *   4. signal through the pidfd (pidfd_send_signal): if the process died meanwhile, the kernel says
 *      ESRCH, even if its pid was given to a new process in between.
 * Without a pidfd (addon not built, kernel before 5.3) the start time is compared right before
 * kill(2); the window between the two is a few microseconds instead of none.
 *
 * A race lost — the process gone (ESRCH, no /proc entry, a zombie) or replaced (start time
 * changed) — is `missed`, with the reason; never a kill of another process. In dryrun mode the
 * same checks run and the result says what would have been sent to whom.
 *
 * `hooks` are fault-injection points for tests: `afterPidfd` runs between taking the pidfd and
 * checking the start time, `beforeSignal` just before the signal. Tests use them to make a pid
 * change hands at the worst moment.
 */
import { constants as osConstants } from 'node:os';
import { loadNativeAddon, type PidfdFunctions } from '../platform/native-addon.js';
import { readStartTs } from '../platform/procfs.js';
import { type LiveProcess, Safety } from './safety.js';
import type { ActionOutcome, ActionRequest, ActionResult, ResponseAction, Target } from './types.js';

export interface KillHooks {
  /** After the pidfd is taken (or would have been, without one), before the start time check. */
  afterPidfd?: (pid: number) => void | Promise<void>;
  /** After every check, just before the signal is sent (enforce mode only). */
  beforeSignal?: (pid: number) => void | Promise<void>;
}

export interface KillOptions {
  /** The safety checks (default: no allow-list; the agent is this process and its descendants). */
  safety?: Safety;
  /** pidfd functions: default the native addon's when it has them; null forces the kill(2) path. */
  pidfd?: PidfdFunctions | null;
  hooks?: KillHooks;
  /** The signal (default SIGKILL). */
  signal?: NodeJS.Signals;
  procRoot?: string;
}

/** The pidfd functions of the native addon, or undefined (with the reason) when it lacks them. */
export function nativePidfd(): { pidfd?: PidfdFunctions; error?: string } {
  const l = loadNativeAddon();
  if ('error' in l) return { error: l.error };
  const a = l.addon;
  if (typeof a.pidfdOpen !== 'function' || typeof a.pidfdSendSignal !== 'function' || typeof a.closeFd !== 'function') {
    return { error: 'the native addon has no pidfd functions (a stale build? run `npm rebuild minewatch`)' };
  }
  return { pidfd: { pidfdOpen: a.pidfdOpen.bind(a), pidfdSendSignal: a.pidfdSendSignal.bind(a), closeFd: a.closeFd.bind(a) } };
}

const errCode = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;
const errMsg = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A process pinned for an action: its pidfd (when there is one) and what /proc said of it. */
export interface Pinned {
  pid: number;
  fd?: number;
  live: LiveProcess;
}

export type PinResult = { ok: true; pinned: Pinned } | { ok: false; outcome: ActionOutcome; reason: string };

/**
 * Takes pidfds and checks identities; shared by `kill` and `kill_container`. Remembers when the
 * kernel has no pidfd_open (ENOSYS) and stops asking.
 */
export class ProcessPinner {
  readonly safety: Safety;
  private pidfd: PidfdFunctions | undefined;
  private whyNoPidfd: string | undefined;
  private readonly procRoot: string | undefined;

  constructor(opts: { safety?: Safety; pidfd?: PidfdFunctions | null; procRoot?: string } = {}) {
    this.safety = opts.safety ?? new Safety({ procRoot: opts.procRoot });
    this.procRoot = opts.procRoot;
    if (opts.pidfd === null) {
      this.whyNoPidfd = 'pidfds turned off';
    } else if (opts.pidfd) {
      this.pidfd = opts.pidfd;
    } else {
      const n = nativePidfd();
      this.pidfd = n.pidfd;
      this.whyNoPidfd = n.error;
    }
  }

  /** Why there is no pidfd, when there is none. */
  get noPidfdReason(): string | undefined {
    return this.pidfd ? undefined : this.whyNoPidfd;
  }

  /** 'pidfd' when signals go through pidfds, 'kill' when through kill(2). */
  get method(): 'pidfd' | 'kill' {
    return this.pidfd ? 'pidfd' : 'kill';
  }

  /** The start time of pid as /proc shows it now. */
  startTs(pid: number): bigint | undefined {
    return readStartTs(pid, this.procRoot ? { procRoot: this.procRoot } : {});
  }

  /** Open a pidfd: the fd, or 'gone' (ESRCH), or undefined when pidfds are unavailable. */
  open(pid: number): number | 'gone' | undefined {
    if (!this.pidfd) return undefined;
    try {
      return this.pidfd.pidfdOpen(pid);
    } catch (e) {
      const code = errCode(e);
      if (code === 'ESRCH') return 'gone';
      if (code === 'ENOSYS') {
        this.pidfd = undefined;
        this.whyNoPidfd = 'this kernel has no pidfd_open (Linux < 5.3)';
        return undefined;
      }
      throw e;
    }
  }

  close(fd: number | undefined): void {
    if (fd === undefined || !this.pidfd) return;
    try {
      this.pidfd.closeFd(fd);
    } catch {
      // nothing to do about a close that failed
    }
  }

  /**
   * Signal a pinned process: through its pidfd, or by kill(2) after checking its start time once
   * more. Returns undefined when sent, or why not ('gone' for a lost race).
   */
  signal(p: Pick<Pinned, 'pid' | 'fd'>, expectedStart: bigint | undefined, signal: NodeJS.Signals): { outcome: ActionOutcome; reason: string } | undefined {
    const signo = osConstants.signals[signal];
    if (p.fd !== undefined && this.pidfd) {
      try {
        this.pidfd.pidfdSendSignal(p.fd, signo);
        return undefined;
      } catch (e) {
        if (errCode(e) === 'ESRCH') return { outcome: 'missed', reason: 'process gone before the signal (the pidfd says it exited)' };
        return { outcome: 'failed', reason: errMsg(e) };
      }
    }
    if (expectedStart !== undefined) {
      const now = this.startTs(p.pid);
      if (now === undefined) return { outcome: 'missed', reason: 'process gone before the signal' };
      if (now !== expectedStart) return { outcome: 'missed', reason: `start time changed before the signal: pid ${p.pid} is another process now` };
    }
    try {
      process.kill(p.pid, signal);
      return undefined;
    } catch (e) {
      if (errCode(e) === 'ESRCH') return { outcome: 'missed', reason: 'process gone before the signal' };
      return { outcome: 'failed', reason: errMsg(e) };
    }
  }

  /**
   * Pin the target: pidfd, identity (start time), liveness, safety. On success the caller owns
   * `pinned.fd` and must `close` it.
   */
  async pin(t: Target, afterPidfd?: (pid: number) => void | Promise<void>): Promise<PinResult> {
    const refused = this.safety.staticReason(t);
    if (refused) return { ok: false, outcome: 'spared', reason: refused };
    if (t.startTs === undefined) {
      return { ok: false, outcome: 'spared', reason: 'no start time in the request: the process identity cannot be checked' };
    }
    let fd: number | undefined;
    try {
      const o = this.open(t.pid);
      if (o === 'gone') return { ok: false, outcome: 'missed', reason: 'process gone (no such pid)' };
      fd = o;
    } catch (e) {
      if (errCode(e) === 'EINVAL') return { ok: false, outcome: 'failed', reason: `pid ${t.pid} is a thread, not a process (pidfd_open: EINVAL)` };
      return { ok: false, outcome: 'failed', reason: errMsg(e) };
    }
    const fail = (outcome: ActionOutcome, reason: string): PinResult => {
      this.close(fd);
      return { ok: false, outcome, reason };
    };
    try {
      if (afterPidfd) await afterPidfd(t.pid);
      const live = this.safety.read(t.pid);
      if (!live) return fail('missed', 'process gone');
      if (live.startTs !== t.startTs) {
        return fail('missed', `start time changed: pid ${t.pid} is another process now (started at ${live.startTs}, the matched one at ${t.startTs})`);
      }
      if (live.stat.state === 'Z' || live.stat.state === 'X') return fail('missed', 'process gone (exited, not yet reaped)');
      const why = this.safety.liveReason(live);
      if (why) return fail('spared', why);
      return { ok: true, pinned: { pid: t.pid, fd, live } };
    } catch (e) {
      return fail('failed', errMsg(e));
    }
  }
}

export class KillAction implements ResponseAction {
  readonly name = 'kill' as const;
  readonly pinner: ProcessPinner;
  private readonly hooks: KillHooks;
  private readonly sig: NodeJS.Signals;

  constructor(opts: KillOptions = {}) {
    this.pinner = new ProcessPinner(opts);
    this.hooks = opts.hooks ?? {};
    this.sig = opts.signal ?? 'SIGKILL';
  }

  /** 'pidfd' or 'kill': how signals are sent on this host. */
  get method(): 'pidfd' | 'kill' {
    return this.pinner.method;
  }

  async run(req: ActionRequest): Promise<ActionResult> {
    const result = (outcome: ActionOutcome, reason: string): ActionResult => ({ request: req, outcome, reason });
    const t = req.target;
    const pin = await this.pinner.pin(t, this.hooks.afterPidfd);
    if (!pin.ok) return result(pin.outcome, pin.reason);
    const p = pin.pinned;
    const how = p.fd !== undefined ? 'through a pidfd' : 'with kill(2)';
    const what = `${this.sig} to pid ${p.pid} (${p.live.stat.comm}${p.live.exepath ? `, ${p.live.exepath}` : ''}) ${how}`;
    try {
      if (req.mode !== 'enforce') return result('dryrun', `would send ${what}`);
      if (this.hooks.beforeSignal) await this.hooks.beforeSignal(p.pid);
      const err = this.pinner.signal(p, t.startTs, this.sig);
      if (err) return result(err.outcome, err.reason);
      return result('done', `sent ${what}`);
    } catch (e) {
      return result('failed', errMsg(e));
    } finally {
      this.pinner.close(p.fd);
    }
  }
}
