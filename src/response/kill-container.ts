/**
 * `kill_container`: kill every process of the target's container, as one act, so a miner's
 * supervisor cannot restart it between two kills.
 *
 * The container is the target process's cgroup:
 * - cgroup v2 (kernel 5.14+): write "1" to cgroup.kill; the kernel kills the whole subtree,
 *   forks in flight included.
 * - cgroup v1 (these machines): freeze the cgroup with the freezer controller (freezer.state
 *   FROZEN, waiting until the kernel reports FROZEN, so nothing in it can fork or exit any more),
 *   SIGKILL each member of the frozen subtree through a pidfd, then thaw: the members die as they
 *   wake up. The cgroup is always thawed, whatever went wrong.
 *
 * Safety, besides the checks of `kill` on the target itself (its identity by start time, host
 * init, kernel thread, the agent, allow-list):
 * - a target outside any container (container id "host", or none) is spared: never the host's
 *   cgroups, and never the root cgroup;
 * - the cgroup's path must name the container (its id, as the enrichment found it in that path);
 * - the whole action is refused when the cgroup holds the agent or one of its children, the
 *   host's init, a kernel thread, or an allow-listed executable.
 * The cgroup itself is left in place: it belongs to the container runtime.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { forEachCgroupLine, readSmallSync } from '../platform/procfs.js';
import { type KillHooks, ProcessPinner } from './kill.js';
import { isKernelThread, type Safety } from './safety.js';
import type { ActionOutcome, ActionRequest, ActionResult, ResponseAction } from './types.js';
import type { PidfdFunctions } from '../platform/native-addon.js';

export interface KillContainerOptions {
  safety?: Safety;
  /** pidfd functions: default the native addon's; null forces kill(2) (after a cgroup check). */
  pidfd?: PidfdFunctions | null;
  /** `afterPidfd` runs after the target's pidfd is taken; `beforeSignal` before the kill. */
  hooks?: KillHooks;
  /** auto (default): cgroup.kill where the process has a v2 cgroup with one, else the v1 freezer. */
  strategy?: 'auto' | 'v2' | 'v1';
  /** How long to wait for freezer.state to read FROZEN (default 2000 ms). */
  freezeTimeoutMs?: number;
  /** How long to wait for the killed members to leave the cgroup (default 3000 ms). */
  settleTimeoutMs?: number;
  procRoot?: string;
  /** Called on cgroup v1 once the cgroup is frozen, with its members, before they are killed (tests, tracing). */
  onFrozen?: (members: number[], dir: string) => void | Promise<void>;
  /** /proc/self/mountinfo, where the cgroup hierarchies are found (tests may point elsewhere). */
  mountinfo?: string;
}

/** One cgroup hierarchy mount: where it is and which part of the hierarchy it shows. */
interface CgroupMount {
  mountpoint: string;
  root: string;
}

/** The v2 mount and the v1 freezer mount, from mountinfo. */
export function cgroupMounts(mountinfoText: string): { v2?: CgroupMount; freezer?: CgroupMount } {
  const out: { v2?: CgroupMount; freezer?: CgroupMount } = {};
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  for (const line of mountinfoText.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const pre = line.slice(0, dash).split(' ');
    const post = line.slice(dash + 3).split(' ');
    const fstype = post[0];
    const superOpts = (post[2] ?? '').split(',');
    const m: CgroupMount = { root: unescape(pre[3] ?? '/'), mountpoint: unescape(pre[4] ?? '') };
    if (fstype === 'cgroup2' && !out.v2) out.v2 = m;
    if (fstype === 'cgroup' && superOpts.includes('freezer') && !out.freezer) out.freezer = m;
  }
  return out;
}

/** The directory of a cgroup path under a mount, or undefined when the mount does not show it. */
export function cgroupDir(mount: CgroupMount, path: string): string | undefined {
  const root = mount.root === '/' ? '' : mount.root.replace(/\/$/, '');
  if (root && path !== root && !path.startsWith(root + '/')) return undefined;
  return join(mount.mountpoint, path.slice(root.length));
}

/** The v2 path ("0::/path") and the freezer path ("N:…freezer…:/path") of /proc/PID/cgroup. */
export function parseCgroupFile(text: string): { v2?: string; freezer?: string } {
  const out: { v2?: string; freezer?: string } = {};
  forEachCgroupLine(text, (id, controllers, raw) => {
    const path = raw.trim();
    if (id === '0' && controllers === '') out.v2 = path;
    else if (controllers.split(',').includes('freezer')) out.freezer = path;
  });
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every pid in a cgroup directory and its descendants. */
function membersOf(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string): void => {
    let text: string;
    try {
      text = readFileSync(join(d, 'cgroup.procs'), 'utf8');
    } catch {
      return; // removed meanwhile
    }
    for (const l of text.split('\n')) if (/^\d+$/.test(l.trim())) out.push(Number(l.trim()));
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(d, e.name));
  };
  walk(dir);
  return [...new Set(out)];
}

export class KillContainerAction implements ResponseAction {
  readonly name = 'kill_container' as const;
  readonly pinner: ProcessPinner;
  private readonly opts: KillContainerOptions;

  constructor(opts: KillContainerOptions = {}) {
    this.opts = opts;
    this.pinner = new ProcessPinner(opts);
  }

  private get safety(): Safety {
    return this.pinner.safety;
  }

  async run(req: ActionRequest): Promise<ActionResult> {
    const result = (outcome: ActionOutcome, reason: string): ActionResult => ({ request: req, outcome, reason });
    const t = req.target;
    const c = t.container;
    if (!c || !c.id || c.id === 'host') return result('spared', 'not in a container: kill_container never acts on the host');
    const pin = await this.pinner.pin(t, this.opts.hooks?.afterPidfd);
    if (!pin.ok) return result(pin.outcome, pin.reason);
    const p = pin.pinned;
    try {
      // The cgroup, read while the process is pinned and known to be the matched one.
      const procRoot = this.opts.procRoot ?? '/proc';
      const cg = readSmallSync(`${procRoot}/${p.pid}/cgroup`);
      if (cg === undefined) return result('missed', 'process gone');
      const paths = parseCgroupFile(cg);
      const mountinfo = readSmallSync(this.opts.mountinfo ?? '/proc/self/mountinfo') ?? '';
      const mounts = cgroupMounts(mountinfo);
      const strategy = this.opts.strategy ?? 'auto';

      let mode: 'v2' | 'v1' | undefined;
      let path: string | undefined;
      let dir: string | undefined;
      if (strategy !== 'v1' && mounts.v2 && paths.v2 && paths.v2 !== '/') {
        const d = cgroupDir(mounts.v2, paths.v2);
        if (d && existsSync(join(d, 'cgroup.kill'))) [mode, path, dir] = ['v2', paths.v2, d];
      }
      if (!mode && strategy !== 'v2' && mounts.freezer && paths.freezer && paths.freezer !== '/') {
        const d = cgroupDir(mounts.freezer, paths.freezer);
        if (d && existsSync(join(d, 'freezer.state'))) [mode, path, dir] = ['v1', paths.freezer, d];
      }
      if (!mode || !path || !dir) {
        const where = [paths.v2 !== undefined ? `v2 ${paths.v2}` : '', paths.freezer !== undefined ? `freezer ${paths.freezer}` : ''].filter(Boolean).join(', ');
        return result('failed', `no cgroup to kill pid ${p.pid} with: neither a v2 cgroup with cgroup.kill nor a v1 freezer cgroup (${where || 'none'}), other than the root`);
      }
      // The cgroup must be the container's: its path names the container id.
      const ids = [c.full_id, c.id].filter((s): s is string => !!s && s.length >= 4);
      if (!ids.some((id) => path!.split('/').some((seg) => seg.includes(id)))) {
        return result('spared', `cgroup ${path} does not name container ${c.id}: refusing to kill it`);
      }
      const members = membersOf(dir);
      const refuse = this.refuseMembers(members);
      if (refuse) return result('spared', refuse);

      if (req.mode !== 'enforce') {
        return result('dryrun', `would kill the ${members.length} process(es) of cgroup ${path} (${mode === 'v2' ? 'cgroup.kill' : 'freeze, SIGKILL each, thaw'}): pids ${members.join(' ')}`);
      }
      if (this.opts.hooks?.beforeSignal) await this.opts.hooks.beforeSignal(p.pid);
      return mode === 'v2' ? await this.killV2(req, dir, path) : await this.killV1(req, dir, path, paths.freezer!);
    } catch (e) {
      return result('failed', e instanceof Error ? e.message : String(e));
    } finally {
      this.pinner.close(p.fd);
    }
  }

  /** Why no member of the cgroup may be killed, if any: the agent, the host init, a kernel thread, an allow-listed executable. */
  private refuseMembers(pids: number[]): string | undefined {
    for (const pid of pids) {
      if (pid === process.pid || this.safety.isSelf(pid)) return `the minewatch agent or its child (pid ${pid}) is in this cgroup`;
      const live = this.safety.read(pid);
      if (!live) continue;
      if (this.safety.isHostInit(live)) return `the host init (pid ${pid}) is in this cgroup`;
      if (isKernelThread(live)) return `kernel thread ${live.stat.comm} (pid ${pid}) is in this cgroup`;
      const allowed = this.safety.allow.exeReason(live.exepath);
      if (allowed) return `pid ${pid} in this cgroup is an ${allowed}`;
    }
    return undefined;
  }

  /** Wait until the subtree has no processes; returns the pids still there. */
  private async settle(dir: string): Promise<number[]> {
    const deadline = Date.now() + (this.opts.settleTimeoutMs ?? 3000);
    let left = membersOf(dir);
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(10);
      left = membersOf(dir);
    }
    return left;
  }

  private async killV2(req: ActionRequest, dir: string, path: string): Promise<ActionResult> {
    const before = membersOf(dir).length;
    writeFileSync(join(dir, 'cgroup.kill'), '1');
    const left = await this.settle(dir);
    return {
      request: req,
      outcome: 'done',
      reason: `killed the ${before} process(es) of cgroup ${path} with cgroup.kill${left.length ? `; ${left.length} still exiting` : ''}`,
    };
  }

  private async killV1(req: ActionRequest, dir: string, path: string, freezerPath: string): Promise<ActionResult> {
    const stateFile = join(dir, 'freezer.state');
    const state = (): string => readFileSync(stateFile, 'utf8').trim();
    let froze = false;
    let killed = 0;
    let note = '';
    try {
      writeFileSync(stateFile, 'FROZEN');
      froze = true;
      const deadline = Date.now() + (this.opts.freezeTimeoutMs ?? 2000);
      while (state() !== 'FROZEN' && Date.now() < deadline) await sleep(2);
      if (state() !== 'FROZEN') note = '; the cgroup did not finish freezing in time, killed what was there';
      // Frozen: nothing in the subtree can fork or exit, so this list is complete and stable.
      const members = membersOf(dir);
      const refuse = this.refuseMembers(members);
      if (refuse) return { request: req, outcome: 'spared', reason: refuse };
      if (this.opts.onFrozen) await this.opts.onFrozen(members, dir);
      for (const pid of members) if (this.killMember(pid, freezerPath)) killed++;
    } finally {
      if (froze) writeFileSync(stateFile, 'THAWED');
    }
    const left = await this.settle(dir);
    return {
      request: req,
      outcome: 'done',
      reason: `killed the ${killed} process(es) of cgroup ${path} (froze, SIGKILL each through ${this.pinner.method === 'pidfd' ? 'a pidfd' : 'kill(2)'}, thawed)${note}${left.length ? `; ${left.length} still exiting` : ''}`,
    };
  }

  /** SIGKILL one member, after checking through its pidfd that it is still in the cgroup. */
  private killMember(pid: number, freezerPath: string): boolean {
    const o = this.pinner.open(pid);
    if (o === 'gone') return false;
    try {
      const cg = readSmallSync(`${this.opts.procRoot ?? '/proc'}/${pid}/cgroup`);
      const now = cg === undefined ? undefined : parseCgroupFile(cg).freezer;
      if (now === undefined || (now !== freezerPath && !now.startsWith(freezerPath + '/'))) return false;
      const err = this.pinner.signal({ pid, fd: o }, undefined, 'SIGKILL');
      return err === undefined;
    } finally {
      this.pinner.close(o);
    }
  }
}
