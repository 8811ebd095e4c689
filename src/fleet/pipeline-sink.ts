/**
 * The fleet consumer's batches into an alert pipeline: every alert ingested (idempotent on the
 * group's uuid), then one commit. The consumer acks only when this resolves, so a batch the store
 * did not commit rejects here and is redelivered.
 */
import type { AlertPipeline } from '../alerts/pipeline.js';
import type { IncomingAlert } from '../alerts/types.js';
import type { BatchSink } from './consumer.js';

export function pipelineSink(pipeline: AlertPipeline): BatchSink {
  return {
    async storeBatch(alerts: IncomingAlert[]): Promise<void> {
      // The pipeline logs and counts a failed write or commit instead of throwing: its error count
      // says whether this batch is durable.
      const before = pipeline.counters.storeErrors;
      try {
        for (const a of alerts) pipeline.ingest(a);
      } finally {
        pipeline.commit();
      }
      if (pipeline.counters.storeErrors > before) throw new Error('the alert store did not commit the batch (see the error above)');
    },
  };
}
