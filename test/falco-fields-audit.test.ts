/**
 * The field audit (issue 17): every field Falco's stable, incubating and sandbox rules read on
 * syscall events is in the catalogue, has a row in docs/falco-fields.md saying where its value
 * comes from, and — unless the row says it cannot be filled — gives a value on the events the
 * eBPF driver and the enrichment make (built here in the driver's shape, through the real fd
 * table and argument namer).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ProcessInfo, SyscallEvent } from '../src/events.js';
import { FdTable } from '../src/enrich/fd-table.js';
import { nameArgs } from '../src/enrich/arg-names.js';
import { defaultRegistry } from '../src/fields/index.js';
import { fieldsReadBy } from './helpers/falco-fields.js';
import { FALCO_CORPUS, ROOT } from './helpers/paths.js';

const FILES = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => join(FALCO_CORPUS, f));
const registry = defaultRegistry();
const uses = fieldsReadBy(FILES);
const base = (field: string): string => field.replace(/\[.*\]$/, '');

/** docs/falco-fields.md: field → "filled by" column. */
function docRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(join(ROOT, 'docs/falco-fields.md'), 'utf8').split('\n')) {
    const m = /^\| `([^`]+)` \| ([^|]+) \|/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

function resolve(field: string) {
  const m = /^([^[]+)(?:\[(.*)\])?$/.exec(field)!;
  return registry.resolve('syscall', m[1]!, m[2]);
}

const T0 = 1_764_000_000_000_000_000n;

/** The events of one made-up session, in the shape the eBPF driver gives them, then enriched. */
function sessionEvents(): SyscallEvent[] {
  // systemd → containerd → shim → runc → bash → sh → xmrig, and above: ancestors up to aname[7].
  let top: ProcessInfo | undefined;
  for (const [i, name] of ['init', 'systemd', 'containerd'].entries()) top = { pid: 10 + i, name, exe: name, exepath: `/usr/bin/${name}`, parent: top, start_ts: T0 - 90_000_000_000_000n };
  const shim: ProcessInfo = { pid: 900, name: 'containerd-shim', exe: '/usr/bin/containerd-shim-runc-v2', exepath: '/usr/bin/containerd-shim-runc-v2', args: ['-namespace', 'k8s.io'], start_ts: T0 - 86_400_000_000_000n, vpid: 900, parent: top };
  const runc: ProcessInfo = { pid: 950, name: 'runc', exe: 'runc', exepath: '/usr/bin/runc', parent: shim, start_ts: T0 - 70_000_000_000n };
  const bash: ProcessInfo = { pid: 4100, name: 'bash', exe: '/bin/bash', exepath: '/usr/bin/bash', parent: runc, start_ts: T0 - 60_000_000_000n };
  const sh: ProcessInfo = { pid: 4120, vpid: 7, ppid: 900, sid: 7, vpgid: 7, name: 'sh', exe: 'sh', exepath: '/usr/bin/dash', args: ['-c', 'x'], parent: bash, start_ts: T0 - 5_000_000_000n };
  const p: ProcessInfo = {
    pid: 4133, tid: 4133, vpid: 9, vtid: 9, ppid: 4120, sid: 7, vpgid: 9, name: 'xmrig', exe: './xmrig', exepath: '/tmp/.x/xmrig',
    args: ['-o', 'pool:4444'], cwd: '/tmp/.x', env: ['HOME=/root', 'HTTP_PROXY=http://198.51.100.9:3128'], tty: 34816, uid: 0, gid: 0,
    loginuid: 1000, user: 'root', group: 'root', loginname: 'bob', homedir: '/root', shell: '/bin/bash', start_ts: T0 - 1_000_000n,
    exe_upper_layer: true, exe_from_memfd: false, exe_ino: 1234567, exe_ino_ctime: T0 - 3_000_000_000n, exe_ino_mtime: T0 - 3_000_000_000n,
    cap_effective: 'CAP_CHOWN CAP_SYS_ADMIN', cap_permitted: 'CAP_CHOWN CAP_SYS_ADMIN', is_vpgid_leader: true, parent: sh,
  };
  const container = {
    id: '3ad7b26ded6d', name: 'web', image: 'docker.io/library/nginx:1.25', image_repository: 'docker.io/library/nginx', image_tag: '1.25',
    type: 'docker', privileged: true, start_ts: T0 - 60_000_000_000n,
    mounts: [{ source: '/var/run/docker.sock', dest: '/var/run/docker.sock', mode: '', rw: true, propagation: 'rprivate' }],
  };
  const k8s = { ns_name: 'shop', pod_name: 'web-7d9c' };
  let num = 0;
  const ev = (type: string, res: number, args: Record<string, string | number>, extra: Partial<SyscallEvent> = {}): SyscallEvent =>
    ({ source: 'syscall', type, ts: T0, num: ++num, res, args, proc: p, container, k8s, ...extra });
  const tcp = { type: 'ipv4' as const, l4proto: 'tcp' as const, cip: '10.0.0.5', cport: 40000, sip: '198.51.100.7', sport: 4444, connected: true, sip_name: 'pool.example', cip_name: 'web.local' };
  const events = [
    ev('execve', 0, { res: 0 }),
    ev('openat', 3, { fd: 3, dirfd: -100, name: '../../etc/shadow', flags: 0o1101, mode: 0o755 }, { fd: { num: 3, type: 'file', name: '/etc/shadow', nameraw: '../../etc/shadow' } }),
    ev('read', 10, { res: 10, fd: 3, size: 4096 }),
    ev('socket', 4, { fd: 4, domain: 17, type: 3, proto: 768 }),
    ev('connect', 0, { res: 0, tuple: '10.0.0.5:40000->198.51.100.7:4444', fd: 5 }, { fd: { num: 5, ...tcp } }),
    ev('sendto', 9, { res: 9, data: '{"login"}', fd: 5, size: 9 }, { fd: { num: 5, ...tcp }, buffer: '{"login"}' }),
    ev('socket', 6, { fd: 6, domain: 2, type: 2, proto: 0 }),
    ev('sendto', 1, { res: 1, fd: 6, size: 1 }, { fd: { num: 6, ...tcp, l4proto: 'udp', sport: 53 } }),
    ev('ptrace', 0, { res: 0, addr: '0x0', data: '0x0', request: 16, pid: 4120 }),
    ev('setuid', 0, { res: 0, uid: 65534 }),
    ev('symlinkat', 0, { res: 0, target: '/etc/shadow', linkdirfd: -100, linkpath: 'sh' }),
    ev('linkat', 0, { res: 0, olddir: -100, oldpath: '/etc/shadow', newdir: -100, newpath: 'hl', flags: 0 }),
    ev('renameat2', 0, { res: 0, olddirfd: -100, oldpath: '.bash_history', newdirfd: -100, newpath: '/usr/bin/.x', flags: 0 }),
    ev('mkdirat', 0, { res: 0, dirfd: -100, path: '/usr/bin/.d', mode: 0o755 }),
    ev('fchmodat', 0, { res: 0, dirfd: -100, filename: 'xmrig', mode: 0o4755 }),
    ev('bpf', 7, { fd: 7, cmd: 5 }),
    ev('dup2', 1, { res: 1, oldfd: 5, newfd: 1 }),
  ];
  const fds = new FdTable();
  for (const e of events) {
    fds.apply(e);
    nameArgs(e, { user: (uid) => (uid === 65534 ? 'nobody' : uid === 0 ? 'root' : undefined), group: () => undefined, comm: (pid) => (pid === 4120 ? 'sh' : undefined) });
  }
  return events;
}

test('every field the three rules files read on syscall events is in the catalogue', () => {
  assert.ok(uses.size > 80, `the files read ${uses.size} fields`);
  const unknown: string[] = [];
  for (const f of uses.keys()) {
    try {
      resolve(f);
    } catch (e) {
      unknown.push(`${f}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual(unknown, []);
});

test('docs/falco-fields.md has a row for each, and no row for a field they do not read', (t) => {
  const rows = docRows();
  const read = new Set([...uses.keys()].map(base));
  assert.deepEqual([...read].filter((f) => !rows.has(f)).sort(), [], 'fields without a row');
  assert.deepEqual([...rows.keys()].filter((f) => !read.has(f)).sort(), [], 'rows for fields the files do not read');
  for (const [f, by] of rows) assert.match(by, /^(driver|process table|users|dns|container|kubernetes|fd table|unfillable)/, `${f}: "${by}"`);
  t.diagnostic(`${uses.size} fields as written (${read.size} without their index) read by ${FILES.length} files`);
});

test('each field not marked unfillable gives a value on the driver\'s events after enrichment', () => {
  const events = sessionEvents();
  const rows = docRows();
  const empty: string[] = [];
  for (const f of uses.keys()) {
    if (rows.get(base(f))?.startsWith('unfillable')) continue;
    const r = resolve(f);
    const filled = events.some((e) => {
      const v = r.extract(e);
      return v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0);
    });
    if (!filled) empty.push(f);
  }
  assert.deepEqual(empty, []);
});

test('the renderings rules compare against come out in libs\' spelling on those events', () => {
  const events = sessionEvents();
  const at = (type: string, n = 0) => events.filter((e) => e.type === type)[n]!;
  const v = (f: string, e: SyscallEvent) => resolve(f).extract(e);
  assert.equal(v('evt.arg.flags', at('openat')), 'O_TRUNC|O_CREAT|O_WRONLY');
  assert.equal(v('evt.arg.request', at('ptrace')), 'PTRACE_ATTACH');
  assert.equal(v('evt.arg.domain', at('socket')), 'AF_PACKET');
  assert.equal(v('evt.arg.uid', at('setuid')), 'nobody');
  assert.equal(v('evt.arg.cmd', at('bpf')), 'BPF_PROG_LOAD');
  assert.equal(v('fd.name', at('read')), '/etc/shadow', 'a read names the file its fd was opened on');
  assert.equal(v('fd.nameraw', at('read')), '../../etc/shadow');
  assert.equal(v('fd.typechar', at('read')), 'f');
  assert.equal(v('evt.arg.newpath', at('linkat')), '/tmp/.x/hl');
  assert.equal(v('evt.arg.oldpath', at('renameat2')), '/tmp/.x/.bash_history');
  assert.equal(v('fd.type', at('dup2')), 'ipv4', 'dup2 of a socket onto stdout: the new fd is the socket');
  assert.equal(v('fd.name_changed', at('sendto', 1)), true);
  assert.equal(v('proc.duration', at('execve')), 1_000_000n);
  assert.equal(v('evt.is_open_exec', at('openat')), true);
});
