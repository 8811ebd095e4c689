/**
 * The WHERE clause of an alert query, shared by the SQLite and PostgreSQL stores (`?`
 * placeholders; the PostgreSQL store numbers them). Only the text search differs between them.
 */
import { priorityRank } from '../engine/types.js';
import type { AlertQuery } from './types.js';
import type { Sql } from './rollup.js';

/** A store's clause for "the output holds this text" (non-empty, trimmed). */
export type TextClause = (text: string) => Sql;

/** `%text%` for LIKE with `\` as its escape: the text's own %, _ and \ match themselves. */
export function likePattern(text: string): string {
  return '%' + text.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
}

export function whereClause(q: AlertQuery, text: TextClause): Sql {
  const parts: string[] = [];
  const params: unknown[] = [];
  const inList = (col: string, vals: readonly string[] | undefined) => {
    if (!vals || vals.length === 0) return;
    parts.push(`${col} IN (${vals.map(() => '?').join(',')})`);
    params.push(...vals);
  };
  if (q.from !== undefined) { parts.push('last_seen >= ?'); params.push(q.from); }
  if (q.to !== undefined) { parts.push('last_seen < ?'); params.push(q.to); }
  inList('rule', q.rule);
  inList('priority', q.priority);
  if (q.minPriority !== undefined) { parts.push('prank <= ?'); params.push(priorityRank(q.minPriority)); }
  inList('source', q.source);
  inList('hostname', q.hostname);
  inList('namespace', q.namespace);
  inList('pod', q.pod);
  if (q.container && q.container.length > 0) {
    // A container is named by its id or its name.
    const marks = q.container.map(() => '?').join(',');
    parts.push(`(container_id IN (${marks}) OR container_name IN (${marks}))`);
    params.push(...q.container, ...q.container);
  }
  const t = q.text?.trim();
  if (t) {
    const c = text(t);
    parts.push(c.sql);
    params.push(...c.params);
  }
  if (q.beforeId !== undefined) { parts.push('id < ?'); params.push(q.beforeId); }
  return { sql: parts.length ? ' WHERE ' + parts.join(' AND ') : '', params };
}
