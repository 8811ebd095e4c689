/**
 * Where a server's fleet consumer stores its batches: on PostgreSQL, straight into the shared
 * store, one transaction per batch (src/fleet/pg-batch-write.ts; the service's NOTIFY listener
 * then tells this replica's dashboard streams, as for every other replica's writes); on SQLite,
 * through the pipeline's ingest and commit.
 */
import type { Logger } from '../platform/logger.js';
import { PgAlertService } from '../alerts/pg/service.js';
import type { AlertService } from '../alerts/types.js';
import type { BatchSink } from './consumer.js';
import { pgBatchSink } from './pg-sink.js';
import { pipelineSink } from './pipeline-sink.js';

export function fleetSink(service: AlertService, log: Logger): BatchSink {
  if (service instanceof PgAlertService) return pgBatchSink(service.store, service.outputStats().map((o) => o.name), log);
  return pipelineSink(service);
}
