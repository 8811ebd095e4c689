/**
 * The enrich stage run on the event path, after the queue: the process's fd table (fd.* on reads,
 * writes and connects, as Falco's), names for uid/gid/pid arguments, DNS names of socket events
 * and the pod of the event's container. (The process table's own enrichment runs before the
 * queue, where the notices arrive; see settle.ts.) None ever waits: all read caches.
 */
import { type ArgNameLookups, nameArgs } from '../enrich/arg-names.js';
import type { DnsCache } from '../enrich/dns.js';
import type { FdTable } from '../enrich/fd-table.js';
import type { PodWatcher } from '../enrich/pods.js';
import type { ProcessTable } from '../enrich/process-table.js';
import type { UserDb } from '../enrich/users.js';
import type { Event, SyscallEvent } from '../events.js';

/** What the argument stage reads: each process's fds, user and group names, process names. */
export interface ArgSources {
  fds: FdTable;
  users: UserDb;
  table: ProcessTable;
}

export interface EnrichStage {
  enrich(ev: Event): void;
}

export class SyscallEnricher implements EnrichStage {
  constructor(
    private readonly dns: DnsCache,
    /** The pod watcher, once the cluster client is up (the agent starts it); undefined outside Kubernetes. */
    private readonly pods: () => PodWatcher | undefined = () => undefined,
    private readonly args?: ArgSources,
  ) {
    // Built once: the lookups read the live table and user database, so they need no per-event copy.
    this.lookups = args && {
      user: (uid) => args.users.user(uid)?.name,
      group: (gid) => args.users.group(gid),
      comm: (pid) => args.table.get(pid)?.name,
    };
  }

  private readonly lookups: ArgNameLookups | undefined;

  enrich(ev: Event): void {
    if (ev.source !== 'syscall') return;
    if (this.args && this.lookups) {
      this.args.fds.apply(ev as SyscallEvent);
      nameArgs(ev as SyscallEvent, this.lookups);
    }
    this.dns.enrich(ev as SyscallEvent);
    this.pods()?.enrich(ev as SyscallEvent);
  }
}
