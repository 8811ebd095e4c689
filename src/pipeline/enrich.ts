/**
 * The enrich stage run on the event path, after the queue: DNS names of socket events and the pod
 * of the event's container. (The process table's own enrichment runs before the queue, where the
 * notices arrive; see settle.ts.) Neither ever waits: both read caches.
 */
import type { DnsCache } from '../enrich/dns.js';
import type { PodWatcher } from '../enrich/pods.js';
import type { Event, SyscallEvent } from '../events.js';

export interface EnrichStage {
  enrich(ev: Event): void;
}

export class SyscallEnricher implements EnrichStage {
  constructor(
    private readonly dns: DnsCache,
    /** The pod watcher, once the cluster client is up (the agent starts it); undefined outside Kubernetes. */
    private readonly pods: () => PodWatcher | undefined = () => undefined,
  ) {}

  enrich(ev: Event): void {
    if (ev.source !== 'syscall') return;
    this.dns.enrich(ev as SyscallEvent);
    this.pods()?.enrich(ev as SyscallEvent);
  }
}
