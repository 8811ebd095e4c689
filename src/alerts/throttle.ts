/**
 * Throttling and grouping: repeats of one rule with one group key inside a window count into one
 * group instead of becoming alerts of their own. The key is made of *where* (host, container,
 * namespace) and *what* (the executable that ran, the object a request names): a second, different
 * program is a group of its own, a respawning one is not. One rule in one place may open up to
 * `max_new_groups` groups in a window; past that, the rest fold into one overflow group of that
 * place, so a miner that renames itself at every respawn cannot flood the outputs. At most
 * `max_open_groups` groups stay open; past that the oldest closes early (its summary goes out
 * then), so memory is bounded and no count is lost.
 *
 * Pure bookkeeping: the pipeline decides what to store and forward.
 */
import type { Event } from '../events.js';
import type { OutputValue } from '../engine/output.js';
import { defaultRegistry } from '../fields/index.js';
import type { FieldRegistry } from '../fields/registry.js';
import type { Extractor } from '../fields/types.js';
import { COLUMN_KEYS, isPlaceKey, type GroupKey, type ThrottleConfig } from './config.js';
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
  /** The matched event, for key fields that are not columns; absent for alerts received over HTTP (their output fields stand in). */
  raw?: Event;
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
  /** The overflow group of its place (matches past max_new_groups fold into it). */
  overflow: boolean;
}

/** The "what" part of a candidate's key: the keys (the plan's own list, shared) and their values. */
export interface WhatValues {
  names: readonly GroupKey[];
  values: (string | null)[];
}

/** Where a candidate goes: into an open group, or into a new group under `key`. */
export interface Placement {
  /** The open group to count it into; absent when a new group starts. */
  group?: OpenGroup;
  key: string;
  /** The new group (or the group counted into) is its place's overflow group. */
  overflow: boolean;
  what: WhatValues;
}

/**
 * Keys are "<place>\u0001<what>", each part JSON (which escapes every control character, so a
 * value, whoever chose it, cannot forge a separator); a place's overflow group is "<place>\u0001*".
 */
const SEP = '\u0001';
const OVERFLOW = `${SEP}*`;

/** The place part of a group key (the whole key for keys stored by older versions). */
function placeOfKey(key: string): string {
  const i = key.indexOf(SEP);
  return i < 0 ? key : key.slice(0, i);
}

/** Whether a stored group key is a place's overflow group. */
const isOverflowKey = (key: string): boolean => key.endsWith(OVERFLOW);

/** How one key's value is read from a candidate. */
type Getter = (c: Candidate) => string | null;

interface KeyPlan {
  place: Getter[];
  what: Getter[];
  whatNames: GroupKey[];
}

/** A place's new groups in its current window. */
interface Place {
  windowEnd: bigint;
  started: number;
}

function text(v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (Array.isArray(v)) return v.map(String).join(',');
  return String(v);
}

function columnGetter(k: (typeof COLUMN_KEYS)[number]): Getter {
  switch (k) {
    case 'hostname': return (c) => c.hostname;
    case 'container.id': return (c) => c.containerId;
    case 'k8s.ns.name': return (c) => c.namespace;
    case 'k8s.pod.name': return (c) => c.pod;
    case 'source': return (c) => c.source;
  }
}

/** Counts for /metrics and the log. */
export interface ThrottleStats {
  /** Groups open now. */
  open: number;
  /** Groups closed before their window ended because max_open_groups were open. */
  closedEarly: number;
  /** Matches counted into an overflow group (past max_new_groups). */
  folded: number;
  /** Overflow groups opened. */
  overflowGroups: number;
}

export class Throttle {
  private readonly open = new Map<string, OpenGroup>();
  private readonly places = new Map<string, Place>();
  private readonly plans = new Map<string, KeyPlan>();
  private readonly windowNs: bigint;
  private registry: FieldRegistry | undefined;
  private closedEarly = 0;
  private folded = 0;
  private overflowGroups = 0;

  constructor(private readonly cfg: ThrottleConfig) {
    this.windowNs = BigInt(Math.round(cfg.window_s * 1e9));
  }

  get enabled(): boolean {
    return this.windowNs > 0n;
  }

  /** The keys that split one place into groups for this source (proc.exepath by default). */
  whatKeys(source: string): GroupKey[] {
    return this.plan(source).whatNames;
  }

  /**
   * How a source's keys are read. Only sources with a field catalog get a plan of their own
   * (alerts received over HTTP may name any source; their keys are read from output fields).
   */
  private plan(source: string): KeyPlan {
    this.registry ??= defaultRegistry();
    const known = this.registry.hasSource(source);
    // One plan for all the sources that have neither a catalog nor keys of their own: a sender
    // choosing new source names cannot grow this map.
    const own = Object.hasOwn(this.cfg.keys, source);
    const id = known || own ? source : '\u0000other';
    let p = this.plans.get(id);
    if (p) return p;
    const keys = (own ? this.cfg.keys[source] : this.cfg.keys.default) ?? [];
    p = { place: [], what: [], whatNames: [] };
    for (const k of keys) {
      const g = (COLUMN_KEYS as readonly string[]).includes(k) ? columnGetter(k as (typeof COLUMN_KEYS)[number]) : this.fieldGetter(known ? source : undefined, k);
      if (isPlaceKey(k)) p.place.push(g);
      else {
        p.what.push(g);
        p.whatNames.push(k);
      }
    }
    this.plans.set(id, p);
    return p;
  }

  /** A field of the event (through the source's catalog), else the output field of that name. */
  private fieldGetter(source: string | undefined, k: GroupKey): Getter {
    let extract: Extractor | undefined;
    if (source !== undefined) {
      const b = k.indexOf('[');
      try {
        extract = this.registry!.resolve(source, b < 0 ? k : k.slice(0, b), b < 0 ? undefined : k.slice(b + 1, -1)).extract;
      } catch {
        // Not a field of this source: only an output field can give it.
      }
    }
    if (!extract) return (c) => text(c.outputFields[k]);
    const ex = extract;
    return (c) => {
      if (c.raw) {
        try {
          const v = text(ex(c.raw));
          if (v !== null) return v;
        } catch {
          // An extractor that fails on an odd event leaves the key empty, never the match lost.
        }
      }
      return text(c.outputFields[k]);
    };
  }

  /** Where a candidate goes at `nowNs`: its open group, its place's overflow group, or a new group. */
  place(c: Candidate, nowNs: bigint): Placement {
    const plan = this.plan(c.source);
    // Per match: one array per part, each serialized once (this runs for every repeat).
    const placeValues: (string | null)[] = [c.source, c.rule];
    for (const get of plan.place) placeValues.push(get(c));
    const values: (string | null)[] = [];
    for (const get of plan.what) values.push(get(c));
    const place = JSON.stringify(placeValues);
    const key = place + SEP + JSON.stringify(values);
    const what: WhatValues = { names: plan.whatNames, values };
    const g = this.find(key, nowNs);
    if (g) return { group: g, key, overflow: g.overflow, what };
    const max = this.cfg.max_new_groups;
    if (!this.enabled || max === 0 || values.length === 0) return { key, overflow: false, what };
    const p = this.places.get(place);
    if (!p || p.windowEnd <= nowNs || p.started < max) return { key, overflow: false, what };
    // This place has opened its share of groups in this window: fold into its overflow group.
    this.folded++;
    const okey = place + OVERFLOW;
    const og = this.find(okey, nowNs);
    return og ? { group: og, key: okey, overflow: true, what } : { key: okey, overflow: true, what };
  }

  /** The group under `key` whose window has ended but that the timer has not swept yet, taken out. */
  takeEnded(key: string, nowNs: bigint): OpenGroup | undefined {
    const g = this.open.get(key);
    if (!g || g.windowEnd > nowNs) return undefined;
    this.open.delete(key);
    return g;
  }

  /** The open group under `key`, if its window has not closed. */
  find(key: string, nowNs: bigint): OpenGroup | undefined {
    const g = this.open.get(key);
    return g && g.windowEnd > nowNs ? g : undefined;
  }

  /**
   * Start tracking a new group (its window ends at windowEnd). Returns the groups closed early to
   * keep max_open_groups: the pipeline writes their counts and sends their summaries now.
   */
  start(key: string, rec: Pick<AlertRecord, 'id' | 'uuid' | 'rule' | 'count' | 'firstSeen' | 'lastSeen' | 'outputFields' | 'changed'>, windowEnd: bigint, nowNs = windowEnd - this.windowNs): OpenGroup[] {
    if (!this.enabled) return [];
    const overflow = isOverflowKey(key);
    const g: OpenGroup = {
      id: rec.id, uuid: rec.uuid, rule: rec.rule, windowEnd, count: rec.count, firstSeen: rec.firstSeen, lastSeen: rec.lastSeen,
      firstFields: rec.outputFields, changed: rec.changed, dirty: false, overflow,
    };
    if (overflow) this.overflowGroups++;
    else this.countPlace(placeOfKey(key), windowEnd);
    const early: OpenGroup[] = [];
    // A stale entry under the same key (its window closed, not yet swept) is replaced; moved to the end, it is the newest.
    const stale = this.open.get(key);
    if (stale) {
      this.open.delete(key);
      early.push(stale);
    }
    while (this.open.size >= this.cfg.max_open_groups) {
      // Map order is start order: the first entry is the oldest group.
      const [k, old] = this.open.entries().next().value as [string, OpenGroup];
      this.open.delete(k);
      early.push(old);
      if (old.windowEnd > nowNs) this.closedEarly++;
    }
    this.open.set(key, g);
    return early;
  }

  /** One more group started in a place; its window starts with its first group. */
  private countPlace(place: string, groupEnd: bigint): void {
    const p = this.places.get(place);
    const startNs = groupEnd - this.windowNs;
    if (p && p.windowEnd > startNs) {
      p.started++;
      return;
    }
    if (p) this.places.delete(place);
    // Places are bounded like groups: the oldest is forgotten (its count starts again).
    while (this.places.size >= this.cfg.max_open_groups) this.places.delete(this.places.keys().next().value as string);
    this.places.set(place, { windowEnd: groupEnd, started: 1 });
  }

  windowEndFrom(nowNs: bigint): bigint {
    return nowNs + this.windowNs;
  }

  /** Count a repeat into its group: time, and the output fields (and, for an overflow group, the key values) that differ. */
  count(g: OpenGroup, c: Candidate, what?: WhatValues): void {
    g.count++;
    if (c.time > g.lastSeen) g.lastSeen = c.time;
    for (const name in c.outputFields) this.note(g, name, c.outputFields[name]!);
    if (g.overflow && what) {
      for (let i = 0; i < what.names.length; i++) {
        const v = what.values[i]!;
        if (v !== null) this.note(g, what.names[i]!, v);
      }
    }
    g.dirty = true;
  }

  /** Keep a distinct value of a field that differs from the group's first (up to max_changed_values). */
  private note(g: OpenGroup, name: string, v: OutputValue): void {
    const first = g.firstFields[name];
    if (sameValue(v, first)) return;
    let seen = g.changed[name];
    if (!seen) seen = g.changed[name] = first === undefined ? [] : [first];
    if (seen.length < this.cfg.max_changed_values && !seen.some((x) => sameValue(x, v))) seen.push(v);
  }

  /** Groups whose window has closed by `nowNs`, removed from tracking; places whose window closed are forgotten. */
  closeDue(nowNs: bigint): OpenGroup[] {
    const out: OpenGroup[] = [];
    for (const [k, g] of this.open) {
      if (g.windowEnd <= nowNs) {
        out.push(g);
        this.open.delete(k);
      }
    }
    for (const [k, p] of this.places) if (p.windowEnd <= nowNs) this.places.delete(k);
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

  /** Nothing open and no place counted: no window will ever end until something is started. */
  get idle(): boolean {
    return this.open.size === 0 && this.places.size === 0;
  }

  stats(): ThrottleStats {
    return { open: this.open.size, closedEarly: this.closedEarly, folded: this.folded, overflowGroups: this.overflowGroups };
  }
}

/** Output values compared by value: list fields are arrays. */
function sameValue(a: OutputValue | undefined, b: OutputValue | undefined): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
