// THROWAWAY: in-memory AlertService for early runs until the lead's store lands. Do not commit.
import type { AlertListener, AlertQuery, AlertRecord, AlertService, AlertStats, IncomingAlert, OutputStats } from '../../src/alerts/types.js';
import { parsePriority, priorityRank } from '../../src/engine/types.js';

export class MemAlerts implements AlertService {
  rows: AlertRecord[] = [];
  listeners = new Set<AlertListener>();
  ingest(a: IncomingAlert): AlertRecord {
    const ns = BigInt(Date.parse(a.time)) * 1_000_000n;
    const f = a.output_fields;
    const rec: AlertRecord = {
      id: this.rows.length + 1, uuid: a.minewatch?.uuid ?? `u${this.rows.length + 1}`, groupKey: a.rule, rule: a.rule,
      priority: parsePriority(a.priority)!, source: a.source, tags: a.tags, hostname: a.hostname, output: a.output,
      outputFields: f, firstSeen: ns, lastSeen: ns, count: a.minewatch?.count ?? 1, changed: {},
      namespace: (f['k8s.ns.name'] as string) ?? null, pod: (f['k8s.pod.name'] as string) ?? null,
      containerId: (f['container.id'] as string) ?? null, containerName: (f['container.name'] as string) ?? null,
      event: null, origin: 'input', windowEnd: null,
    };
    this.rows.push(rec);
    for (const l of this.listeners) l(rec, 'new');
    return rec;
  }
  subscribe(l: AlertListener) { this.listeners.add(l); return () => { this.listeners.delete(l); }; }
  outputStats(): OutputStats[] { return [{ name: 'webhook', pending: 3, delivered: 7, failures: 2, lastError: 'x' }]; }
  private match(q: AlertQuery): AlertRecord[] {
    return this.rows.filter((r) => (q.from === undefined || r.lastSeen >= q.from) && (q.to === undefined || r.lastSeen < q.to)
      && (!q.rule || q.rule.includes(r.rule)) && (!q.priority || q.priority.includes(r.priority))
      && (!q.minPriority || priorityRank(r.priority) <= priorityRank(q.minPriority))
      && (!q.source || q.source.includes(r.source)) && (!q.hostname || q.hostname.includes(r.hostname))
      && (!q.namespace || (r.namespace !== null && q.namespace.includes(r.namespace)))
      && (!q.pod || (r.pod !== null && q.pod.includes(r.pod)))
      && (!q.container || q.container.includes(r.containerId ?? '') || q.container.includes(r.containerName ?? ''))
      && (!q.text || r.output.toLowerCase().includes(q.text.toLowerCase())));
  }
  query(q: AlertQuery): AlertRecord[] {
    return this.match(q).filter((r) => q.beforeId === undefined || r.id < q.beforeId).sort((a, b) => b.id - a.id).slice(0, q.limit ?? 100);
  }
  get(id: number) { return this.rows.find((r) => r.id === id); }
  stats(q: AlertQuery, bucketMs: number): AlertStats {
    const rs = this.match(q);
    const by = (k: (r: AlertRecord) => string | null) => {
      const m = new Map<string, number>();
      for (const r of rs) { const v = k(r); if (v !== null) m.set(v, (m.get(v) ?? 0) + r.count); }
      return [...m].sort((a, b) => b[1] - a[1]).slice(0, 50);
    };
    const tl = new Map<number, number>();
    for (const r of rs) { const t = Math.floor(Number(r.lastSeen / 1_000_000n) / bucketMs) * bucketMs; tl.set(t, (tl.get(t) ?? 0) + r.count); }
    return { groups: rs.length, matches: rs.reduce((s, r) => s + r.count, 0), byPriority: Object.fromEntries(by((r) => r.priority)),
      byRule: by((r) => r.rule), byNamespace: by((r) => r.namespace), byHostname: by((r) => r.hostname),
      timeline: [...tl].sort((a, b) => a[0] - b[0]).map(([t, count]) => ({ t, count })) };
  }
}
