/**
 * The offline half of `minewatch k8s scan`: Kubernetes objects (from YAML manifests, or listed
 * from a cluster by the API client) judged by the same rules as the audit and admission webhooks
 * (the k8s_audit rules tagged `manifest`), each object presented as the admission request that
 * would create it; plus namespaces without a ResourceQuota or a LimitRange. It never changes
 * anything.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import { Engine, resolveRulesPaths } from '../engine/index.js';
import type { Match } from '../engine/types.js';
import { admissionAuditEvent } from './admission.js';
import { type Obj, WORKLOAD_KINDS, dig, isObj } from '../k8s-api/workload.js';

export interface Finding {
  /** The rule that matched, or "Namespace Without ResourceQuota" / "Namespace Without LimitRange". */
  rule: string;
  priority: string;
  kind: string;
  name: string;
  namespace?: string;
  output: string;
  /** Where the object came from ("file.yaml#3", the document number), when known. */
  origin?: string;
}

export interface ScanObject {
  object: unknown;
  origin?: string;
}

/** The scan's engine: the object rules (tagged `manifest`) of these rules files (default: minewatch's). */
export function scanEngine(rules?: string[]): Engine {
  return Engine.fromFiles(resolveRulesPaths(rules), { enabledTags: ['manifest'], sources: ['k8s_audit'], ruleMatching: 'all' });
}

/** List kinds (v1 List, PodList, …) give their items; anything else is itself. */
export function flattenLists(objects: ScanObject[]): ScanObject[] {
  const out: ScanObject[] = [];
  for (const o of objects) {
    const v = o.object;
    if (isObj(v) && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items)) {
      out.push(...flattenLists((v.items as unknown[]).map((item, i) => ({ object: item, origin: o.origin ? `${o.origin}.items[${i}]` : undefined }))));
    } else out.push(o);
  }
  return out;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The admission request that would create `obj`, by a user the scan names. */
function createRequest(obj: Obj, i: number): Obj {
  const kind = obj.kind as string;
  const [group, version] = typeof obj.apiVersion === 'string' && obj.apiVersion.includes('/') ? obj.apiVersion.split('/', 2) : ['', obj.apiVersion];
  return {
    uid: `scan-${i}`,
    operation: 'CREATE',
    kind: { group, version, kind },
    resource: { group, version, resource: `${kind.toLowerCase()}s` },
    namespace: str(dig(obj, 'metadata', 'namespace')),
    name: str(dig(obj, 'metadata', 'name')),
    object: obj,
    userInfo: { username: 'minewatch:scan' },
  };
}

function finding(m: Match, obj: Obj, origin: string | undefined): Finding {
  return {
    rule: m.rule, priority: m.priority, kind: obj.kind as string,
    name: str(dig(obj, 'metadata', 'name')) ?? str(dig(obj, 'metadata', 'generateName')) ?? '',
    namespace: str(dig(obj, 'metadata', 'namespace')), output: m.output, origin,
  };
}

/**
 * Namespaces that the objects declare or use, and that no ResourceQuota or LimitRange among them
 * covers: nothing there stops one pod from taking a node.
 */
export function namespaceFindings(objects: ScanObject[]): Finding[] {
  const seen = new Map<string, string | undefined>();
  const quota = new Set<string>();
  const limits = new Set<string>();
  for (const { object: o, origin } of objects) {
    if (!isObj(o) || typeof o.kind !== 'string') continue;
    const ns = o.kind === 'Namespace' ? str(dig(o, 'metadata', 'name')) : str(dig(o, 'metadata', 'namespace'));
    if (ns === undefined) continue;
    if (!seen.has(ns)) seen.set(ns, origin);
    if (o.kind === 'ResourceQuota') quota.add(ns);
    if (o.kind === 'LimitRange') limits.add(ns);
  }
  const out: Finding[] = [];
  for (const [ns, origin] of seen) {
    if (!quota.has(ns)) out.push({ rule: 'Namespace Without ResourceQuota', priority: 'NOTICE', kind: 'Namespace', name: ns, output: `namespace ${ns} has no ResourceQuota: nothing caps what its pods request together`, origin });
    if (!limits.has(ns)) out.push({ rule: 'Namespace Without LimitRange', priority: 'NOTICE', kind: 'Namespace', name: ns, output: `namespace ${ns} has no LimitRange: a container without limits gets none`, origin });
  }
  return out;
}

/** Every finding for these objects (a cluster listing's items, parsed manifests): the rules on each workload, then the namespaces. */
export function scanObjects(objects: unknown[], engine: Engine = scanEngine()): Finding[] {
  return scanItems(objects.map((object) => ({ object })), engine);
}

/** scanObjects for objects that know where they came from. */
export function scanItems(objects: ScanObject[], engine: Engine = scanEngine()): Finding[] {
  const items = flattenLists(objects);
  const out: Finding[] = [];
  items.forEach(({ object: o, origin }, i) => {
    if (!isObj(o) || typeof o.kind !== 'string' || !WORKLOAD_KINDS.has(o.kind)) return;
    for (const m of engine.process(admissionAuditEvent(createRequest(o, i)))) out.push(finding(m, o, origin));
  });
  return [...out, ...namespaceFindings(items)];
}

export class ManifestError extends Error {}

/** The objects of a YAML (or JSON) text with several documents; throws ManifestError naming file:line:col. */
export function parseManifests(text: string, file: string): ScanObject[] {
  const out: ScanObject[] = [];
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines });
  if (!Array.isArray(docs)) return out;
  docs.forEach((doc, i) => {
    const err = doc.errors[0];
    if (err) {
      const pos = lines.linePos(err.pos[0]);
      throw new ManifestError(`${file}:${pos.line}:${pos.col}: not valid YAML (${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}); fix the manifest or the template that printed it`);
    }
    const v = doc.toJS({ maxAliasCount: 1000 }) as unknown;
    if (v === null || v === undefined) return;
    out.push({ object: v, origin: `${file}#${i + 1}` });
  });
  return out;
}
