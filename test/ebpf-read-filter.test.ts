/**
 * Which opens for reading the eBPF driver ships (src/sources/ebpf/read-filter.ts): the path
 * prefixes and process names taken from the rules' own conditions, and the rules named when their
 * condition cannot be narrowed. The derivation must never drop an open a rule would match: over
 * Falco's three files, every rule that fires on a read-only open fires only on opens the kernel
 * ships.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import type { SyscallEvent } from '../src/events.js';
import { deriveReadFilter, readShipped, type ReadFilter } from '../src/sources/ebpf/read-filter.js';
import { FALCO_CORPUS } from './helpers/paths.js';
import { y } from './helpers/rules.js';

const MACROS = y(
  '- macro: open_read',
  '  condition: (evt.type in (open,openat,openat2) and evt.is_open_read=true and fd.typechar=\'f\' and fd.num>=0)',
  '- macro: open_write',
  '  condition: (evt.type in (open,openat,openat2) and evt.is_open_write=true and fd.typechar=\'f\' and fd.num>=0)',
);

function filterOf(rules: string): ReadFilter {
  const e = new Engine([{ path: 'rules.yaml', text: MACROS + rules }]);
  return deriveReadFilter((t) => e.rulesFor('syscall', t));
}

const rule = (name: string, condition: string): string => y(`- rule: ${name}`, `  desc: d`, `  condition: ${condition}`, '  output: o', '  priority: WARNING');

describe('read filter derivation', () => {
  test('an and keeps the narrowest need: a path prefix or the process names', () => {
    const f = filterOf(rule('r1', 'open_read and fd.name startswith /etc and proc.name in (a, b)'));
    assert.deepEqual({ mode: f.mode, prefixes: f.prefixes, comms: f.comms, readers: f.readers }, { mode: 'prefix', prefixes: ['/etc'], comms: [], readers: ['r1'] });
    const g = filterOf(rule('r2', 'open_read and proc.name = sshd and fd.name contains liblzma'));
    assert.deepEqual({ prefixes: g.prefixes, comms: g.comms }, { prefixes: [], comms: ['sshd'] });
  });

  test('an or needs the union; fd.directory is a prefix with its slash; a glob gives its literal head', () => {
    const f = filterOf(rule('r', 'open_read and (fd.directory in (/a, /b/) or fd.name in (/c/d) or fd.name glob /home/*/.ssh/*)'));
    assert.deepEqual(f.prefixes, ['/a/', '/b/', '/c/d', '/home/']);
  });

  test('a prefix under another adds nothing', () => {
    const f = filterOf(rule('r1', 'open_read and fd.name startswith /etc') + rule('r2', 'open_read and fd.name = /etc/shadow'));
    assert.deepEqual(f.prefixes, ['/etc']);
    assert.deepEqual(f.readers.sort(), ['r1', 'r2']);
  });

  test('rules of opens for writing only need no read, and then none is shipped', () => {
    const f = filterOf(rule('w', 'open_write and fd.name startswith /etc') + rule('x', 'evt.type = execve and proc.name = sh'));
    assert.deepEqual({ mode: f.mode, readers: f.readers }, { mode: 'none', readers: [] });
  });

  test('a condition that names no path or process ships every read, and names the rule and why', () => {
    const f = filterOf(rule('narrow', 'open_read and fd.name startswith /etc') + rule('wide', 'open_read and not fd.name startswith /tmp'));
    assert.equal(f.mode, 'all');
    assert.deepEqual(f.unbounded.map((u) => u.rule), ['wide']);
    assert.match(f.unbounded[0]!.why, /negation/);
    const g = filterOf(rule('filename', 'open_read and fd.filename in (.bashrc, .profile)'));
    assert.equal(g.mode, 'all');
    assert.match(g.unbounded[0]!.why, /fd\.filename/);
  });

  test('a traversal test needs only what the kernel ships for being unjudgeable', () => {
    const f = filterOf(rule('trav', "open_read and fd.nameraw contains '../' and fd.name contains id_rsa"));
    assert.deepEqual({ mode: f.mode, prefixes: f.prefixes, comms: f.comms }, { mode: 'prefix', prefixes: [], comms: [] });
    assert.equal(readShipped(f, '/var/www/../../etc/shadow', 'cat'), true);
    assert.equal(readShipped(f, '../etc/shadow', 'cat'), true);
    assert.equal(readShipped(f, '/etc/shadow', 'cat'), false);
  });
});

const FALCO = ['falco_rules.yaml', 'falco-incubating_rules.yaml', 'falco-sandbox_rules.yaml'].map((f) => FALCO_CORPUS + f);
const NO_CORPUS = FALCO.every(existsSync) ? undefined : `Falco's rules are not in ${FALCO_CORPUS}`;

describe('read filter over Falco\'s rules', { skip: NO_CORPUS }, () => {
  test('narrowed to prefixes and process names, no rule ships every read', () => {
    const e = Engine.fromFiles([...FALCO, ...DEFAULT_RULES_FILES]);
    const f = deriveReadFilter((t) => e.rulesFor('syscall', t));
    assert.equal(f.mode, 'prefix', JSON.stringify(f.unbounded));
    for (const p of ['/etc/shadow', '/etc/pam.d/', '/root/.ssh', '/home/', '/proc/']) assert.ok(f.prefixes.includes(p), `${p} missing from ${f.prefixes.join(' ')}`);
    assert.deepEqual(f.comms, ['sshd', 'tar']);
    assert.ok(f.readers.includes('Read sensitive file untrusted'));
  });

  test('every rule that fires on a read-only open fires only on opens the kernel ships', () => {
    const e = Engine.fromFiles([...FALCO, ...DEFAULT_RULES_FILES], { ruleMatching: 'all' });
    const f = deriveReadFilter((t) => e.rulesFor('syscall', t));
    // Paths from the rules' own lists and beyond them, read by programs trusted and not.
    const lists = readFileSync(FALCO[0]!, 'utf8');
    const paths = ['/etc/shadow', '/etc/sudoers', '/etc/pam.d/sshd', '/etc/sudoers.d/x', '/root/.ssh/id_rsa', '/home/u/.ssh/authorized_keys',
      '/proc/1/environ', '/dev/sda', '/dev/mem', '/usr/lib/liblzma.so.5.6.0', '/tmp/x', '/var/log/syslog', '/etc/passwd', '/host/etc/shadow',
      ...[...lists.matchAll(/(\/etc\/[\w./-]+)/g)].map((m) => m[1]!).slice(0, 40)];
    const comms = ['cat', 'sshd', 'tar', 'nginx', 'python3', 'node', 'sudo', 'bash'];
    let fired = 0;
    for (const path of paths) {
      for (const comm of comms) {
        const ev: SyscallEvent = {
          source: 'syscall', type: 'openat', ts: 1n, res: 3,
          args: { fd: 3, dirfd: -100, name: path, flags: 0, mode: 0 },
          proc: { pid: 4242, name: comm, exe: comm, exepath: `/usr/bin/${comm}`, args: [], uid: 0, user: 'root', start_ts: 0n, parent: { pid: 1, name: 'systemd' } },
          fd: { num: 3, type: 'file', name: path },
          container: { id: 'c0ffee123456', name: 'app', image: 'nginx:1', privileged: true },
        };
        const matches = e.process(ev);
        if (matches.length === 0) continue;
        fired += matches.length;
        assert.ok(readShipped(f, path, comm), `${matches.map((m) => m.rule).join(', ')} fired on ${comm} reading ${path}, which the kernel would not ship`);
      }
    }
    assert.ok(fired > 0, 'no rule fired on any read: the check above checked nothing');
  });
});
