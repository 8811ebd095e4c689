/**
 * Where a server's fleet consumer stores its batches: on PostgreSQL, straight into the shared
 * store, one transaction per batch (src/fleet/pg-batch-write.ts; the service's NOTIFY listener
 * then tells this replica's dashboard streams, as for every other replica's writes, and the service
 * counts what each committed batch added for /metrics); on SQLite,
 * through the pipeline's ingest and commit.
 */
import type { Logger } from '../platform/logger.js';
import { PgAlertService } from '../alerts/pg/service.js';
import type { AlertService } from '../alerts/types.js';
import type { BatchSink } from './consumer.js';
import { pgBatchSink } from './pg-sink.js';
import { pipelineSink } from './pipeline-sink.js';

export function fleetSink(service: AlertService, log: Logger): BatchSink {
  // What the consumer commits is counted in this replica's /metrics (minewatch_alerts_total), as
  // the service counts its own writes: once, by what each write added.
  if (service instanceof PgAlertService) return pgBatchSink(service.store, service.outputStats().map((o) => o.name), log, (w, r) => service.countWritten(w, r));
  return pipelineSink(service);
}
