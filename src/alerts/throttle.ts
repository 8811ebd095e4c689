/**
 * Throttling and grouping: repeats of one rule for one key (host, container, namespace by default)
 * inside a window count into one group instead of becoming alerts of their own. Pure bookkeeping:
 * the pipeline decides what to store and forward.
 */
import type { OutputValue } from '../engine/output.js';
import type { GroupKey, ThrottleConfig } from './config.js';
import type { AlertRecord } from './types.js';

/** A match (or a received alert) on its way into a group. */
export type Candidate = Pick<
  AlertRecord,
  'rule' | 'priority' | 'source' | 'tags' | 'hostname' | 'output' | 'outputFields' | 'namespace' | 'pod' | 'containerId' | 'containerName' | 'origin'
> & {
  /** Event time, ns. */
  time: bigint;
  /** The event as JSON, stored with a new group only. */
  event: () => string | null;
  /** Values of the optional group keys that are not columns (proc.name, …). */
  extra: (key: GroupKey) => string | null;
};

/** An open group: what the pipeline needs to count repeats without reading the store. */
export interface OpenGroup {
  id: number;
  uuid: string;
  rule: string;
  /** Wall-clock ns when the window closes. */
  windowEnd: bigint;
  count: number;
  firstSeen: bigint;
  lastSeen: bigint;
  firstFields: Record<string, OutputValue>;
  changed: Record<string, OutputValue[]>;
  /** Counted since last written to the store. */
  dirty: boolean;
}

function keyValue(c: Candidate, k: GroupKey): string | null {
  switch (k) {
    case 'hostname': return c.hostname;
    case 'container.id': return c.containerId;
    case 'k8s.ns.name': return c.namespace;
    case 'k8s.pod.name': return c.pod;
    case 'source': return c.source;
    default: return c.extra(k);
  }
}

export class Throttle {
  private readonly open = new Map<string, OpenGroup>();
  private readonly windowNs: bigint;

  constructor(private readonly cfg: ThrottleConfig) {
    this.windowNs = BigInt(Math.round(cfg.window_s * 1e9));
  }

  get enabled(): boolean {
    return this.windowNs > 0n;
  }

  get windowSeconds(): number {
    return this.cfg.window_s;
  }

  /** The group key: the rule, then each configured key's value. */
  keyOf(c: Candidate): string {
    let k = c.rule;
    for (const key of this.cfg.keys) k += '\u0000' + (keyValue(c, key) ?? '');
    return k;
  }

  /** The open group a candidate falls in, if its window has not closed. */
  find(key: string, nowNs: bigint): OpenGroup | undefined {
    const g = this.open.get(key);
    return g && g.windowEnd > nowNs ? g : undefined;
  }

  /** Start tracking a new group (its window starts now). */
  start(key: string, rec: Pick<AlertRecord, 'id' | 'uuid' | 'rule' | 'count' | 'firstSeen' | 'lastSeen' | 'outputFields' | 'changed'>, windowEnd: bigint): OpenGroup {
    const g: OpenGroup = {
      id: rec.id, uuid: rec.uuid, rule: rec.rule, windowEnd, count: rec.count, firstSeen: rec.firstSeen, lastSeen: rec.lastSeen,
      firstFields: rec.outputFields, changed: rec.changed, dirty: false,
    };
    if (this.enabled) this.open.set(key, g);
    return g;
  }

  windowEndFrom(nowNs: bigint): bigint {
    return nowNs + this.windowNs;
  }

  /** Count a repeat into its group: time, and the output fields whose values differ. */
  count(g: OpenGroup, c: Candidate): void {
    g.count++;
    if (c.time > g.lastSeen) g.lastSeen = c.time;
    const cap = this.cfg.max_changed_values;
    for (const name in c.outputFields) {
      const v = c.outputFields[name];
      const first = g.firstFields[name];
      if (sameValue(v, first)) continue;
      let seen = g.changed[name];
      if (!seen) seen = g.changed[name] = first === undefined ? [] : [first];
      if (seen.length < cap && !seen.some((x) => sameValue(x, v))) seen.push(v);
    }
    g.dirty = true;
  }

  /** Groups whose window has closed by `nowNs`, removed from tracking. */
  closeDue(nowNs: bigint): OpenGroup[] {
    const out: OpenGroup[] = [];
    for (const [k, g] of this.open) {
      if (g.windowEnd <= nowNs) {
        out.push(g);
        this.open.delete(k);
      }
    }
    return out;
  }

  /** Groups counted since last written. */
  takeDirty(): OpenGroup[] {
    const out: OpenGroup[] = [];
    for (const g of this.open.values()) {
      if (g.dirty) {
        g.dirty = false;
        out.push(g);
      }
    }
    return out;
  }

  get size(): number {
    return this.open.size;
  }
}

/** Output values compared by value: list fields are arrays. */
function sameValue(a: OutputValue | undefined, b: OutputValue | undefined): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
