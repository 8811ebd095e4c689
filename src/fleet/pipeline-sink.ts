/**
 * The fleet consumer's batches into an alert service: every alert ingested (idempotent on the
 * group's uuid), then one commit. The consumer acks only when this resolves, so a batch the store
 * did not commit rejects here and is redelivered.
 */
import type { AlertService, IncomingAlert } from '../alerts/types.js';
import type { BatchSink } from './consumer.js';

/** The SQLite pipeline logs and counts a failed write or commit instead of throwing. */
type Service = AlertService & { counters?: { storeErrors: number } };

export function pipelineSink(service: Service): BatchSink {
  return {
    async storeBatch(alerts: IncomingAlert[]): Promise<void> {
      const before = service.counters?.storeErrors ?? 0;
      try {
        for (const a of alerts) service.ingest(a);
      } finally {
        await service.commit();
      }
      if ((service.counters?.storeErrors ?? 0) > before) throw new Error('the alert store did not commit the batch (see the error above)');
    },
  };
}
