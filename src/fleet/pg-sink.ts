/**
 * The fleet consumer's batches into PostgreSQL: one transaction per batch (the store's upserts on
 * the group's uuid and host, its messages unique on group, kind and count), so a batch costs one
 * commit and a redelivered message changes nothing. The consumer acks only after this resolves.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../agent/logger.js';
import { forwardedGroup, loneGroup, readIncoming } from '../alerts/intake.js';
import type { GroupWrite, PgAlertStore } from '../alerts/pg/store.js';
import type { IncomingAlert } from '../alerts/types.js';
import type { BatchSink } from './consumer.js';

const nowNs = () => BigInt(Date.now()) * 1_000_000n;

export function pgBatchSink(store: PgAlertStore, outputs: readonly string[], log: Logger): BatchSink {
  return {
    async storeBatch(alerts: IncomingAlert[]): Promise<void> {
      const writes: GroupWrite[] = alerts.map((received) => {
        const x = readIncoming(received, nowNs);
        if (x.group) {
          const { group, kind, payload } = forwardedGroup(x, x.group);
          return { group, kind, payload };
        }
        // A plain Falco alert (no minewatch group data): a group of its own, under a uuid made from
        // its text, so a redelivery of it lands on the same row.
        const uuid = `falco-${createHash('sha256').update(JSON.stringify(received)).digest('hex').slice(0, 32)}`;
        return { group: loneGroup(x.candidate, uuid), kind: 'first', payload: JSON.stringify(received) };
      });
      const results = await store.writeGroups(writes, outputs);
      const fresh = results.filter((r) => r?.change === 'new').length;
      log.debug({ alerts: alerts.length, new: fresh }, 'fleet batch committed');
    },
  };
}
