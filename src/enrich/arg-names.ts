/**
 * Names for the uid, gid and pid arguments of a syscall event (SyscallEvent.argNames), as libs
 * resolves them from its user and thread tables: setuid(65534)'s evt.arg.uid is "nobody",
 * ptrace's evt.arg.pid the traced process's name.
 */
import type { SyscallEvent } from '../events.js';
import { paramsOf } from '../fields/event-params.js';

export interface ArgNameLookups {
  user(uid: number): string | undefined;
  group(gid: number): string | undefined;
  /** The name (comm) of a live process. */
  comm(pid: number): string | undefined;
}

/** Fill ev.argNames for the event's uid, gid and pid arguments that the lookups can name. */
export function nameArgs(ev: SyscallEvent, lookups: ArgNameLookups): void {
  const params = paramsOf(ev.type);
  const args = ev.args;
  if (!params || !args) return;
  for (const p of params) {
    if (p.kind !== 'uid' && p.kind !== 'gid' && p.kind !== 'pid') continue;
    const v = Object.hasOwn(args, p.name) ? args[p.name] : undefined;
    if (typeof v !== 'number' || v < 0 || v === 4294967295) continue;
    const name = p.kind === 'uid' ? lookups.user(v) : p.kind === 'gid' ? lookups.group(v) : v > 0 ? lookups.comm(v) : undefined;
    if (name) (ev.argNames ??= {})[p.name] = name;
  }
}
