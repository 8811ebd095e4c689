/**
 * The field catalog's fast paths answer as the plain extractors do: list fields walked without
 * arrays (FieldDef.bindAny) on every kind of event, broken ones and ancestry cycles included;
 * bare fields that run without a try/catch around them; table lookups with keys from data.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProcessInfo, SyscallEvent } from '../src/events.js';
import { FieldRegistry } from '../src/fields/registry.js';
import { BARE_FIELDS, syscallFields } from '../src/fields/syscall.js';
import type { FieldValue } from '../src/fields/types.js';

const registry = new FieldRegistry([{ source: 'syscall', fields: syscallFields }]);
const T0 = 1_700_000_000_000_000_000n;

const proc = (name: string, extra: Partial<ProcessInfo> = {}): ProcessInfo => ({ pid: name.length, name, exe: `/x/${name}`, exepath: `/usr/bin/${name}`, ...extra });

/** Events of every shape the walks must agree on. */
function events(): SyscallEvent[] {
  const base = (extra: Partial<SyscallEvent>): SyscallEvent => ({ source: 'syscall', type: 'connect', ts: T0, proc: proc('curl'), ...extra });
  // Ancestries: a plain chain, one that loops back to the process, one that loops further up,
  // one whose parent is the process itself, and one deeper than MAX_DEPTH.
  const chain = proc('c', { parent: proc('b', { parent: proc('a', { parent: proc('init') }) }) });
  const selfLoop = proc('s');
  selfLoop.parent = proc('p', { parent: selfLoop });
  const upLoop = proc('u', { parent: proc('v', { parent: proc('w') }) });
  upLoop.parent!.parent!.parent = upLoop.parent;
  const ownParent = proc('o');
  ownParent.parent = ownParent;
  let deep = proc('leaf');
  const top = deep;
  for (let i = 0; i < 300; i++) {
    const p = proc(`d${i}`, { pid: i });
    deep.parent = p;
    deep = p;
  }
  const odd = proc('odd', { parent: { pid: 1, name: undefined as unknown as string, exe: 5 as unknown as string, parent: 'text' as unknown as ProcessInfo } });
  const procs = [chain, selfLoop, upLoop, ownParent, top, odd, proc('alone')];
  const fds = [
    undefined,
    { type: 'ipv4', cip: '10.0.0.2', cport: 40000, sip: '10.1.2.3', sport: 443 },
    { type: 'ipv6', cip: '::1', sip: 'fd00::7', sport: 53 },
    { cip: '10.0.0.2', sip: '198.51.100.7', cport: 1, sport: 2 }, // type inferred from the address
    { type: 'ipv4', sip: '127.0.0.1' }, // one end only
    { type: 'file', name: '/etc/shadow' },
    { sip: 5 }, // no type, an address that is no text: deciding the type throws
    {},
  ] as unknown as SyscallEvent['fd'][];
  const out: SyscallEvent[] = [];
  for (const p of procs) for (const fd of fds) out.push(base({ proc: p, ...(fd ? { fd } : {}) }));
  out.push({ source: 'syscall', type: 'openat', ts: T0 } as unknown as SyscallEvent); // no process at all
  out.push(base({ proc: 'text' as unknown as ProcessInfo, fd: 'text' as unknown as SyscallEvent['fd'] }));
  return out;
}

describe('FieldDef.bindAny walks the same values as the extractor', () => {
  const walked = syscallFields.filter((f) => f.bindAny);

  test('the fields that have one', () => {
    assert.deepEqual(walked.map((f) => f.name).sort(), ['fd.ip', 'fd.net', 'fd.port', 'proc.aexe', 'proc.aexepath', 'proc.aname', 'proc.apid']);
  });

  test('for any test, on every event', () => {
    const evs = events();
    const wrong: string[] = [];
    for (const def of walked) {
      const r = registry.resolve('syscall', def.name);
      assert.ok(r.any && r.anyOf && r.multi);
      // Every value the extractor gives, each as the single value a test accepts, and none.
      const seen = new Set<FieldValue>();
      for (const e of evs) {
        const v = r.extract(e);
        for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) seen.add(x);
      }
      const tests: Array<[string, (v: FieldValue) => boolean]> = [['none', () => false], ['all', () => true], ...[...seen].map((s): [string, (v: FieldValue) => boolean] => [`= ${String(s)}`, (v) => v === s])];
      for (const e of evs) {
        const v = r.extract(e);
        for (const [name, t] of tests) {
          const want = v !== undefined && (Array.isArray(v) ? v.some(t) : t(v));
          let got: boolean;
          try {
            got = r.any(e, t);
          } catch (err) {
            wrong.push(`${def.name} ${name}: threw ${String(err)}`);
            continue;
          }
          if (got !== want) wrong.push(`${def.name} ${name} on ${(e.proc as ProcessInfo | undefined)?.name}/${JSON.stringify(e.fd)}: walk ${got}, extractor ${want}`);
        }
      }
    }
    assert.deepEqual(wrong.slice(0, 10), []);
  });

  test('the walk stops at the first match, at a cycle and at MAX_DEPTH', () => {
    const r = registry.resolve('syscall', 'proc.aname');
    const seen: FieldValue[] = [];
    const upLoop = proc('u', { parent: proc('v', { parent: proc('w') }) });
    upLoop.parent!.parent!.parent = upLoop.parent;
    const e = { source: 'syscall', type: 'execve', ts: T0, proc: upLoop } as SyscallEvent;
    assert.equal(r.any!(e, (v) => (seen.push(v), false)), false);
    assert.deepEqual(seen, ['v', 'w'], 'v, w, then v again: a cycle');
    const first: FieldValue[] = [];
    assert.equal(r.any!(e, (v) => (first.push(v), v === 'v')), true);
    assert.deepEqual(first, ['v']);
    assert.deepEqual(r.extract(e), ['v', 'w']);
  });
});

describe('bare fields', () => {
  test('give what a plain read gives, on whole and broken events', () => {
    const bare = syscallFields.filter((f) => BARE_FIELDS.has(f.name));
    assert.ok(bare.length >= 30, `${bare.length} bare fields`);
    assert.ok(bare.every((f) => (f.arg ?? 'none') === 'none' && !f.isList));
    const full: SyscallEvent = {
      source: 'syscall', type: 'openat', ts: T0, num: 9, res: -2,
      proc: proc('bash', { pid: 10, vpid: 1, sid: 3, vpgid: 4, tty: 0, cwd: '/root', uid: 0, user: 'root', loginuid: 4294967295, gid: 5, group: 'g', parent: proc('sshd') }),
      fd: { type: 'ipv4', l4proto: 'udp', connected: false },
      container: { id: 'abc', name: 'web', image: 'i:1', image_repository: 'i', privileged: false },
      k8s: { ns_name: 'ns', pod_name: 'pod' },
    };
    const get = (name: string, e: SyscallEvent) => registry.resolve('syscall', name).extract(e);
    assert.equal(get('proc.name', full), 'bash');
    assert.equal(get('proc.pname', full), 'sshd');
    assert.equal(get('user.loginuid', full), -1);
    assert.equal(get('evt.rawres', full), -2);
    assert.equal(get('fd.connected', full), false);
    assert.equal(get('container.id', full), 'abc');
    assert.equal(get('container.image.repository', full), 'i');
    assert.equal(get('container.privileged', full), false);
    // A container whose id says "host" is the host: no container fields.
    const hostish = { ...full, container: { id: 'host', name: 'x', image_repository: 'i' } };
    assert.equal(get('container.id', hostish), 'host');
    assert.equal(get('container.name', hostish), 'host');
    assert.equal(get('container.image.repository', hostish), undefined);
    const broken = [
      { source: 'syscall', type: 'x', ts: T0 },
      { source: 'syscall', type: 'x', ts: T0, proc: null, fd: null, container: null, k8s: null },
      { source: 'syscall', type: 'x', ts: T0, proc: 'p', fd: 7, container: 'c', k8s: true },
      { source: 'syscall', type: 'x', ts: T0, proc: { parent: null }, container: { id: '' } },
    ] as unknown as SyscallEvent[];
    for (const f of bare) {
      const x = f.bind(undefined);
      for (const e of broken) {
        const v = x(e);
        if (f.name === 'container.id' || f.name === 'container.name') assert.equal(v, 'host', f.name);
        else if (f.name === 'evt.type' || f.name === 'evt.source') assert.equal(typeof v, 'string', f.name);
        else if (f.name !== 'evt.num') assert.equal(v, undefined, `${f.name} on ${JSON.stringify(e, (_k, y) => (typeof y === 'bigint' ? 0 : y))}`);
      }
    }
  });
});

describe('table lookups with keys from data', () => {
  const get = (name: string, e: SyscallEvent) => registry.resolve('syscall', name).extract(e);
  const e = (type: string, fd?: unknown) => ({ source: 'syscall', type, ts: T0, proc: proc('x'), ...(fd === undefined ? {} : { fd }) }) as SyscallEvent;

  test('fd.typechar and fd.num', () => {
    assert.equal(get('fd.typechar', e('read', { type: 'ipv6' })), '6');
    assert.equal(get('fd.typechar', e('read', { type: 'weird' })), 'o');
    assert.equal(get('fd.typechar', e('read', { type: 'constructor' })), 'o');
    assert.equal(get('fd.typechar', e('read', { type: 'toString' })), 'o');
    // Not text: looked up as its text, as a property key is.
    assert.equal(get('fd.typechar', e('read', { type: ['file'] })), 'f');
    assert.equal(get('fd.typechar', e('socket')), '4');
    assert.equal(get('fd.typechar', e('__proto__')), undefined);
    assert.equal(get('fd.typechar', e('read', {})), 'o');
    assert.equal(get('fd.num', { ...e('openat'), res: 7 }), 7);
    assert.equal(get('fd.num', { ...e('openat'), res: -2 }), -1);
    assert.equal(get('fd.num', { ...e('valueOf'), res: 7 }), undefined);
  });

  test('evt.arg: text as it is, numbers rendered', () => {
    const args = (a: Record<string, unknown>, type = 'openat') => ({ ...e(type), args: a }) as SyscallEvent;
    assert.equal(get('evt.arg.flags', args({ flags: 'O_RDONLY|O_CLOEXEC' })), 'O_RDONLY|O_CLOEXEC');
    assert.equal(get('evt.arg.flags', args({ flags: 65 })), 'O_CREAT|O_WRONLY');
    assert.equal(get('evt.arg.uid', args({ uid: -1 }, 'setuid')), '<NONE>');
    assert.equal(get('evt.arg.ruid', args({ ruid: -1 }, 'setresuid')), '<NONE>');
    assert.equal(get('evt.arg.xuid', args({ xuid: -1 }, 'setresuid')), '-1');
    assert.equal(get('evt.arg.egid', args({ egid: 4294967295 }, 'setresgid')), '<NONE>');
    assert.equal(get('evt.arg.name', args({ name: true })), 'true');
    assert.equal(get('evt.arg.name', args({})), undefined);
  });
});
