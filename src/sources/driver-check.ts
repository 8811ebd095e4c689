/**
 * What this host can run, and what to do about what it can't: the kernel drivers in the order
 * `--driver auto` tries them, and the detectors and sources that ride on them. `minewatch doctor`
 * prints it; `minewatch run` uses the quick part (`ebpfPrecheck`) to say, in its first log record,
 * why it will fall back and the one command that fixes it.
 *
 * With `trial`, each driver is really started and stopped, the same code path `run` takes, so the
 * report and run's choice cannot disagree; without it (or without root) the checks are static.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { hasCap, parseStatus, readSmallSync } from '../platform/procfs.js';
import { loadEbpfAddon } from './ebpf/addon.js';
import { type EbpfError, EbpfSource } from './ebpf/index.js';
import { ProcConnectorSource } from './proc-connector.js';

export type DriverName = 'ebpf' | 'proc' | 'procfs';
export const DRIVER_ORDER: readonly DriverName[] = ['ebpf', 'proc', 'procfs'];

export interface Check {
  name: string;
  kind: 'driver' | 'detector' | 'source' | 'action' | 'integration';
  /** Whether it can run here (for drivers: start). */
  ok: boolean;
  /** What it gives, or why it cannot run. */
  detail: string;
  /** The one thing to do about it, when it cannot run. */
  fix?: string;
}

export interface DoctorReport {
  /** The driver `run` would take with this config, or null when the one asked for cannot run. */
  chosen: DriverName | null;
  asked: DriverName | 'auto';
  /** Whether the drivers were really started (root), or only checked. */
  trial: boolean;
  checks: Check[];
}

export interface DoctorOptions {
  driver: DriverName | 'auto';
  btfPath?: string;
  trial: boolean;
  /** Config facts the detector lines report. */
  execwhacker: boolean;
  tcpflowkiller: boolean;
  moneroKill: boolean;
  responseMode: string;
  /** The admission webhook's authentication (src/k8s/webhook-auth.ts), when the config has one. */
  admission?: { enabled: boolean; unauthenticated: boolean; refused?: true; message: string };
}

const BTF_DEFAULT = '/sys/kernel/btf/vmlinux';

/** Whether this process holds every capability of `bits` in its effective set (bit numbers as in linux/capability.h). */
function hasCaps(...bits: number[]): boolean {
  const eff = parseStatus(readSmallSync('/proc/self/status') ?? '').capEff;
  return bits.every((b) => hasCap(eff, b) === true);
}
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/**
 * Why the eBPF driver will not start here, without starting it (undefined: nothing known against
 * it). Cheap: run calls it before anything else so its first log record can say why and how to fix.
 */
export function ebpfPrecheck(btfPath?: string): { why: string; fix: string } | undefined {
  const loaded = loadEbpfAddon();
  if ('error' in loaded) return { why: loaded.error, fix: loaded.fix };
  const btf = btfPath ?? BTF_DEFAULT;
  if (!existsSync(btf)) {
    return btfPath
      ? { why: `the BTF file ${btf} (sources.ebpf.btf) does not exist`, fix: `point sources.ebpf.btf at this kernel's BTF file, or remove the key to use ${BTF_DEFAULT}` }
      : { why: `this kernel has no BTF (${BTF_DEFAULT} is missing)`, fix: 'boot a kernel built with CONFIG_DEBUG_INFO_BTF=y, or set sources.ebpf.btf to a BTF file for this kernel' };
  }
  if (!(hasCaps(CAP_BPF, CAP_PERFMON) || hasCaps(CAP_SYS_ADMIN))) {
    return { why: 'the eBPF driver needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)', fix: 'run minewatch as root (sudo)' };
  }
  return undefined;
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin'])) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

async function tryEbpf(opts: DoctorOptions): Promise<{ check: Check; fpu?: 'on' | 'off' | 'missing' }> {
  const pre = ebpfPrecheck(opts.btfPath);
  if (pre) return { check: { name: 'ebpf', kind: 'driver', ok: false, detail: pre.why, fix: pre.fix } };
  const loaded = loadEbpfAddon();
  const parts = 'parts' in loaded ? loaded.parts : 'built here';
  if (!opts.trial) {
    return { check: { name: 'ebpf', kind: 'driver', ok: true, detail: `addon and object present (${parts}); not started (--no-trial)` } };
  }
  const src = new EbpfSource({ lookup: () => undefined, containerOf: () => undefined, fpu: true, wanted: () => false, ...(opts.btfPath ? { btfPath: opts.btfPath } : {}), onError: () => undefined });
  try {
    await src.start(() => undefined);
    const fpu = src.fpuStatus;
    await src.stop();
    return { check: { name: 'ebpf', kind: 'driver', ok: true, detail: `CO-RE programs load and attach (${parts === 'prebuilt' ? 'prebuilt parts' : 'parts built here'})` }, fpu };
  } catch (e) {
    const err = e as EbpfError;
    return { check: { name: 'ebpf', kind: 'driver', ok: false, detail: err.message, ...(err.fix ? { fix: err.fix } : {}) } };
  }
}

async function tryProc(trial: boolean): Promise<Check> {
  if (!trial) return { name: 'proc', kind: 'driver', ok: true, detail: 'not started (--no-trial)' };
  const src = new ProcConnectorSource({});
  try {
    await src.start(() => undefined);
    await src.stop();
    return { name: 'proc', kind: 'driver', ok: true, detail: 'the kernel\'s netlink process connector answers: execs, forks, exits, uid changes' };
  } catch (e) {
    const msg = (e as Error).message;
    const fix = /addon/.test(msg) ? 'apt-get install -y g++ make python3 && npm rebuild minewatch' : 'run minewatch as root, in the host\'s network namespace (hostNetwork: true in a pod)';
    return { name: 'proc', kind: 'driver', ok: false, detail: msg, fix };
  }
}

function cpuAccounting(): Check {
  const v2 = '/sys/fs/cgroup/cgroup.controllers';
  if (existsSync(v2)) {
    const ok = /\bcpu\b/.test(readFileSync(v2, 'utf8'));
    return ok
      ? { name: 'cpu-sampler', kind: 'detector', ok, detail: 'cgroup v2 cpu.stat: sustained CPU per process and container (mw.cpu.*)' }
      : { name: 'cpu-sampler', kind: 'detector', ok, detail: 'cgroup v2 without the cpu controller: per-container CPU is unknown', fix: 'enable the cpu controller (echo +cpu > /sys/fs/cgroup/cgroup.subtree_control)' };
  }
  const ok = existsSync('/sys/fs/cgroup/cpuacct') || existsSync('/sys/fs/cgroup/cpu,cpuacct');
  return { name: 'cpu-sampler', kind: 'detector', ok, detail: ok ? 'cgroup v1 cpuacct' : 'no cgroup CPU accounting found', ...(ok ? {} : { fix: 'mount cgroup v2 at /sys/fs/cgroup' }) };
}

/** The whole report: drivers in auto's order, then what rides on the chosen one. */
export async function doctor(opts: DoctorOptions): Promise<DoctorReport> {
  const ebpf = await tryEbpf(opts);
  const proc = await tryProc(opts.trial);
  const procfs: Check = existsSync('/proc/self/stat')
    ? { name: 'procfs', kind: 'driver', ok: true, detail: 'the /proc poller: processes seen between polls (sources.procfs.interval_ms); needs nothing' }
    : { name: 'procfs', kind: 'driver', ok: false, detail: '/proc is not mounted', fix: 'mount -t proc proc /proc' };
  const drivers: Record<DriverName, Check> = { ebpf: ebpf.check, proc, procfs };
  const chosen = opts.driver === 'auto' ? DRIVER_ORDER.find((d) => drivers[d].ok) ?? null : drivers[opts.driver].ok ? opts.driver : null;
  const viaEbpf = chosen === 'ebpf';
  const needEbpf = (name: string, what: string): Check =>
    viaEbpf
      ? { name, kind: 'detector', ok: true, detail: what }
      : { name, kind: 'detector', ok: false, detail: `needs the eBPF driver (running: ${chosen ?? 'none'})`, ...(ebpf.check.fix ? { fix: ebpf.check.fix } : {}) };
  const checks: Check[] = [ebpf.check, proc, procfs];
  checks.push(needEbpf('stratum-wire', 'the first KiB each TCP connection sends, parsed for stratum (mw.stratum.*)'));
  checks.push(needEbpf('dns-answers', 'DNS answers name addresses for fd.sip.name; mw.dns.query'));
  checks.push(needEbpf('syscalls', 'every syscall the loaded rules name (link, rename, mount, socket, dup, …) with its parameters; opens for reading the rules can match'));
  const randomx = needEbpf('randomx', `MXCSR rounding per process (mw_fpu_rounding); kill: ${opts.moneroKill ? 'on (detectors.monero.enabled)' : 'off (detectors.monero.enabled: true turns it on)'}`);
  if (viaEbpf && opts.trial && ebpf.fpu === 'missing') {
    randomx.ok = false;
    randomx.detail = 'this kernel has no x86_fpu:x86_fpu_regs_deactivated tracepoint (x86 only)';
    randomx.fix = 'none on this kernel';
  }
  checks.push(randomx);
  checks.push(viaEbpf
    ? { name: 'connections', kind: 'source', ok: true, detail: 'every connect from the kernel (the socket-table poller stays off)' }
    : { name: 'connections', kind: 'source', ok: existsSync('/proc/net/tcp'), detail: 'the socket tables polled per network namespace (within a second)' });
  checks.push(cpuAccounting());
  checks.push({ name: 'execwhacker', kind: 'detector', ok: true, detail: opts.execwhacker ? 'on: kills banned command lines' : 'off (detectors.execwhacker.enabled: true)' });
  checks.push({ name: 'tcpflowkiller', kind: 'detector', ok: true, detail: opts.tcpflowkiller ? 'on' : 'off (detectors.tcpflowkiller.enabled: true)' });
  const nft = onPath('nft');
  checks.push(nft && hasCaps(CAP_NET_ADMIN)
    ? { name: 'block_destination', kind: 'action', ok: true, detail: `nftables set in table inet minewatch (response.mode: ${opts.responseMode})` }
    : { name: 'block_destination', kind: 'action', ok: false, detail: nft ? 'needs CAP_NET_ADMIN' : 'nft is missing', fix: nft ? 'run minewatch as root' : 'apt-get install -y nftables' });
  const cgv2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  checks.push({ name: 'kill_container', kind: 'action', ok: true, detail: cgv2 ? 'cgroup.kill (cgroup v2)' : 'freeze, kill each member, thaw (cgroup v1)' });
  const docker = existsSync('/var/run/docker.sock');
  checks.push({ name: 'docker-api', kind: 'integration', ok: docker, detail: docker ? 'container names, images and labels from /var/run/docker.sock' : 'no /var/run/docker.sock: containers are named from cgroups only' });
  const k8s = Boolean(process.env.KUBERNETES_SERVICE_HOST) || existsSync(process.env.KUBECONFIG ?? join(process.env.HOME ?? '/root', '.kube', 'config'));
  checks.push({ name: 'kubernetes-api', kind: 'integration', ok: k8s, detail: k8s ? 'in-cluster service account or a kubeconfig: pod context and cluster actions (k8s.api)' : 'no in-cluster service account or kubeconfig: no pod context' });
  const adm = opts.admission;
  if (adm?.enabled) {
    checks.push(adm.unauthenticated || adm.refused
      ? { name: 'admission-auth', kind: 'integration', ok: false, detail: adm.message, fix: 'set k8s.admission.token_file (or client_ca_file) and give the API server that credential in its --admission-control-config-file kubeconfig' }
      : { name: 'admission-auth', kind: 'integration', ok: true, detail: adm.message });
  }
  return { chosen, asked: opts.driver, trial: opts.trial, checks };
}
