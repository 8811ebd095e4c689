/** A small, fully controlled field catalog for testing the rules language itself. */
import type { Event, SyscallEvent } from '../../src/events.js';
import { FieldRegistry } from '../../src/fields/registry.js';
import type { FieldDef, FieldType } from '../../src/fields/types.js';

const sc = (ev: Event) => ev as SyscallEvent;
const f = (name: string, type: FieldType, get: (e: SyscallEvent) => unknown, extra: Partial<FieldDef> = {}): FieldDef => ({
  name, type, desc: name, ...extra,
  bind: () => (ev) => get(sc(ev)) as never,
});

function ancestors(e: SyscallEvent): string[] {
  const out: string[] = [];
  for (let p = e.proc.parent; p; p = p.parent) out.push(p.name);
  return out;
}

export const testFields: FieldDef[] = [
  f('evt.type', 'charbuf', (e) => e.type),
  f('evt.dir', 'charbuf', () => '<'),
  f('evt.num', 'uint64', (e) => e.num),
  f('evt.rawres', 'int64', (e) => e.res),
  f('evt.is_open_write', 'bool', (e) => e.args?.w === undefined ? undefined : e.args.w === 1),
  f('evt.buffer', 'bytebuf', (e) => e.buffer),
  f('proc.name', 'charbuf', (e) => e.proc.name),
  f('proc.pname', 'charbuf', (e) => e.proc.parent?.name),
  f('proc.cmdline', 'charbuf', (e) => [e.proc.name, ...(e.proc.args ?? [])].join(' ')),
  f('proc.pid', 'int64', (e) => e.proc.pid),
  f('fd.name', 'charbuf', (e) => e.fd?.name),
  f('fd.sip', 'ipaddr', (e) => e.fd?.sip),
  f('fd.net', 'ipnet', (e) => e.fd?.sip),
  f('fd.sport', 'port', (e) => e.fd?.sport),
  f('fd.types', 'charbuf', (e) => (e.fd?.type ? [e.fd.type, 'file'] : undefined), { isList: true }),
  f('container.id', 'charbuf', (e) => e.container?.id ?? 'host'),
  {
    name: 'proc.aname', type: 'charbuf', desc: 'ancestor names', arg: 'index', argOptional: true, anyWhenNoArg: true,
    bind: (arg) => (ev) => {
      const a = ancestors(sc(ev));
      return arg === undefined ? a : a[Number(arg) - 1];
    },
  },
  {
    name: 'evt.arg', type: 'charbuf', desc: 'event args', arg: 'key',
    bind: (arg) => (ev) => {
      const v = sc(ev).args?.[arg!];
      return v === undefined ? undefined : String(v);
    },
  },
];

export function testRegistry(): FieldRegistry {
  return new FieldRegistry([{ source: 'syscall', fields: testFields }]);
}

let n = 0;
/** An execve-like event with sensible defaults. */
export function ev(over: Partial<SyscallEvent> & { proc?: Partial<SyscallEvent['proc']> } = {}): SyscallEvent {
  const { proc, ...rest } = over;
  return {
    source: 'syscall', type: 'execve', ts: 1_764_000_000_000_000_000n + BigInt(++n),
    ...rest,
    proc: { pid: 100, name: 'bash', args: [], ...proc },
  } as SyscallEvent;
}
