/** The field catalogs minewatch ships, one per event source. */
import { FieldRegistry } from './registry.js';
import { k8sAuditFields } from './k8s-audit.js';
import { githubFields } from './github.js';
import { mwFields } from './mw.js';
import { syscallFields } from './syscall.js';
import type { FieldCatalog } from './types.js';

export const syscallCatalog: FieldCatalog = { source: 'syscall', fields: [...syscallFields, ...mwFields] };
export const k8sAuditCatalog: FieldCatalog = { source: 'k8s_audit', fields: k8sAuditFields };
export const githubCatalog: FieldCatalog = { source: 'github', fields: githubFields };

/** Every catalog available in this build. */
export function builtinCatalogs(): FieldCatalog[] {
  return [syscallCatalog, k8sAuditCatalog, githubCatalog];
}

export function defaultRegistry(): FieldRegistry {
  return new FieldRegistry(builtinCatalogs());
}
