/**
 * The fleet consumer's batches into PostgreSQL: one transaction per batch (the store's upserts on
 * the group's uuid and host, its messages unique on group, kind and count), so a batch costs one
 * commit and a redelivered message changes nothing. The consumer acks only after this resolves.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../platform/logger.js';
import { forwardedGroup, loneGroup, readIncoming } from '../alerts/intake.js';
import type { GroupWrite, PgAlertStore, WriteResult } from '../alerts/pg/store.js';
import type { IncomingAlert } from '../alerts/types.js';
import type { BatchSink } from './consumer.js';
import { writeGroupBatch } from './pg-batch-write.js';

const nowNs = () => BigInt(Date.now()) * 1_000_000n;

/**
 * PostgreSQL text cannot hold a NUL byte, and an agent's message is the agent's to shape: a NUL
 * anywhere in it would fail its whole batch again at every redelivery. NULs become U+FFFD (the
 * pipeline's own group keys join values with NUL too).
 */
function noNul<T>(v: T): T {
  if (typeof v === 'string') return (v.includes('\u0000') ? v.replaceAll('\u0000', '\uFFFD') : v) as T;
  if (Array.isArray(v)) return v.map(noNul) as T;
  if (v && typeof v === 'object' && typeof v !== 'bigint') return Object.fromEntries(Object.entries(v).map(([k, x]) => [noNul(k), noNul(x)])) as T;
  return v;
}

/**
 * Whether a failed write may succeed later as it is (PostgreSQL away, restarting, overloaded, a
 * deadlock), as opposed to a message it will refuse every time (a data or constraint error).
 */
export function transientPgError(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true; // a socket error: ECONNREFUSED, ETIMEDOUT…
  return /^(08|40|53|57|58)/.test(code);
}

/** Told of each batch once it is committed: every write, with what it changed (undefined: nothing, a redelivery). */
export type CommittedBatch = (writes: readonly GroupWrite[], results: readonly (WriteResult | undefined)[]) => void;

export function pgBatchSink(store: PgAlertStore, outputs: readonly string[], log: Logger, onCommitted?: CommittedBatch): BatchSink {
  return {
    async storeBatch(alerts: IncomingAlert[]): Promise<void> {
      const writes: GroupWrite[] = alerts.map(noNul).map((received) => {
        const x = readIncoming(received, nowNs);
        if (x.group) {
          const { group, kind, payload } = forwardedGroup(x, x.group);
          return { group: { ...group, groupKey: noNul(group.groupKey) }, kind, payload };
        }
        // A plain Falco alert (no minewatch group data): a group of its own, under a uuid made from
        // its text, so a redelivery of it lands on the same row.
        const uuid = `falco-${createHash('sha256').update(JSON.stringify(received)).digest('hex').slice(0, 32)}`;
        const group = loneGroup(x.candidate, uuid);
        return { group: { ...group, groupKey: noNul(group.groupKey) }, kind: 'first', payload: JSON.stringify(received) };
      });
      const results = await store.tx((c) => writeGroupBatch(c, writes, outputs));
      onCommitted?.(writes, results);
      const fresh = results.filter((r) => r?.change === 'new').length;
      log.debug({ alerts: alerts.length, new: fresh }, 'fleet batch committed');
    },
    transient: transientPgError,
  };
}
