/**
 * A fake /proc tree in a temp dir, for enrichment tests that need processes the test fully
 * controls (garbage files, vanished entries, odd comms, container cgroups).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FAKE_BTIME = 1_700_000_000;

export interface FakeProcess {
  pid: number;
  ppid: number;
  comm: string;
  /** Command line; [] for a kernel thread. */
  argv?: string[];
  /** Target of the exe symlink (need not exist). */
  exe?: string;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Clock ticks after boot (stat field 22). */
  starttime?: number;
  /** Lines of /proc/PID/cgroup. */
  cgroup?: string[];
  loginuid?: number;
  environ?: string[];
  /** NSpid values (outermost first); default [pid]. */
  nspid?: number[];
  capEff?: string;
  /** Replace the stat file with this text (garbage tests). */
  statText?: string;
  /** Target of the root symlink (default '/'): a fake container root for user names. */
  root?: string;
  /** Leave these files out. */
  omit?: string[];
}

export function statLine(p: { pid: number; comm: string; ppid: number; starttime?: number; pgrp?: number; session?: number }): string {
  const pgrp = p.pgrp ?? p.pid;
  const session = p.session ?? p.pid;
  // Fields 3..52 after "(comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss …
  const rest = ['S', p.ppid, pgrp, session, 0, -1, 4194560, 100, 0, 0, 0, 7, 3, 0, 0, 20, 0, 1, 0, p.starttime ?? 1000, 1000000, 200];
  while (rest.length < 50) rest.push(0);
  return `${p.pid} (${p.comm}) ${rest.join(' ')}\n`;
}

function statusText(p: FakeProcess): string {
  const uid = p.uid ?? 0;
  const gid = p.gid ?? 0;
  const ns = (p.nspid ?? [p.pid]).join('\t');
  return [
    `Name:\t${p.comm}`,
    'Umask:\t0022',
    'State:\tS (sleeping)',
    `Tgid:\t${p.pid}`,
    'Ngid:\t0',
    `Pid:\t${p.pid}`,
    `PPid:\t${p.ppid}`,
    'TracerPid:\t0',
    `Uid:\t${uid}\t${uid}\t${uid}\t${uid}`,
    `Gid:\t${gid}\t${gid}\t${gid}\t${gid}`,
    'FDSize:\t64',
    'Groups:\t',
    `NStgid:\t${ns}`,
    `NSpid:\t${ns}`,
    `NSpgid:\t${ns}`,
    `NSsid:\t${ns}`,
    'VmSize:\t  10000 kB',
    'CapInh:\t0000000000000000',
    `CapPrm:\t${p.capEff ?? '000001ffffffffff'}`,
    `CapEff:\t${p.capEff ?? '000001ffffffffff'}`,
    'CapBnd:\t000001ffffffffff',
    'CapAmb:\t0000000000000000',
    '',
  ].join('\n');
}

export class FakeProc {
  readonly root: string;

  constructor(btime = FAKE_BTIME) {
    this.root = mkdtempSync(join(tmpdir(), 'mw-fakeproc-'));
    writeFileSync(join(this.root, 'stat'), `cpu  1 2 3 4\nintr 0\nctxt 0\nbtime ${btime}\nprocesses 1\n`);
  }

  /** Create or replace a process directory. */
  add(p: FakeProcess): this {
    const dir = join(this.root, String(p.pid));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    mkdirSync(join(dir, 'ns'));
    const omit = new Set(p.omit ?? []);
    const write = (name: string, data: string | Buffer): void => {
      if (!omit.has(name)) writeFileSync(join(dir, name), data);
    };
    const link = (name: string, target: string | undefined): void => {
      if (target !== undefined && !omit.has(name)) symlinkSync(target, join(dir, name));
    };
    write('stat', p.statText ?? statLine(p));
    write('status', statusText(p));
    write('comm', `${p.comm}\n`);
    const argv = p.argv ?? [p.comm];
    write('cmdline', argv.length ? argv.join('\0') + '\0' : '');
    write('environ', (p.environ ?? ['PATH=/usr/bin']).join('\0') + '\0');
    write('cgroup', (p.cgroup ?? ['0::/init.scope']).join('\n') + '\n');
    write('loginuid', String(p.loginuid ?? 4294967295));
    write('mountinfo', '1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n');
    link('exe', p.exe);
    link('cwd', p.cwd ?? '/');
    link('root', p.root ?? '/');
    link('ns/mnt', `mnt:[${4026531840 + p.pid}]`);
    return this;
  }

  remove(pid: number): void {
    rmSync(join(this.root, String(pid)), { recursive: true, force: true });
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
