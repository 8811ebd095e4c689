/**
 * /metrics in Prometheus' text format. The figures are read from their owners when scraped (the
 * agent's counters, the pipeline's delivery state), so nothing on the hot path touches prom-client.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { OutputStats } from '../alerts/types.js';
import { parsePriority, priorityLabel } from '../engine/types.js';
import { LabelCap } from '../platform/label-cap.js';
import type { RoutePlugin } from './types.js';

/**
 * How often prom-client's event-loop-lag histogram samples the loop. Its default (10 ms) is a timer
 * that wakes the agent 100 times a second with nothing to do: most of its idle CPU (issue 16). A
 * stall still shows as one late sample.
 */
const EVENT_LOOP_SAMPLE_MS = 1000;

/**
 * What /metrics reports, each read at scrape time. Every member is optional: a `minewatch server`
 * has no events, an agent without a store has no outputs. Counts are totals since the start.
 */
export interface MetricsSources {
  /** Alerts (rule matches) by rule and priority. */
  alerts?: () => Iterable<[rule: string, priority: string, count: number]>;
  /** Events taken from the sources, by source and event type. */
  events?: () => Iterable<[source: string, type: string, count: number]>;
  /** Events dropped, by where (e.g. `queue`, `source`). */
  drops?: () => Iterable<[where: string, count: number]>;
  /** Enabled rules currently loaded. */
  rulesLoaded?: () => number;
  /** Delivery state per output (AlertService.outputStats). */
  outputs?: () => OutputStats[];
  /** The throttle's groups (AlertPipeline.groupingStats). */
  grouping?: () => { open: number; closedEarly: number; folded: number };
}

/** What the alert pipeline counts itself (AlertPipeline.matchCountsByRule). */
export interface PipelineMatchCounts {
  matchCountsByRule(): { rule: string; priority: string; count: number }[];
}

/** MetricsSources.alerts from the pipeline's own counts (every match, repeats included). */
export function matchCountsOf(p: PipelineMatchCounts): NonNullable<MetricsSources['alerts']> {
  return function* () {
    for (const c of p.matchCountsByRule()) {
      const canon = parsePriority(c.priority);
      yield [c.rule, canon ? priorityLabel(canon) : c.priority, c.count];
    }
  };
}

export interface MetricsOptions {
  /** Distinct values each label keeps before the rest is counted under `other`. */
  maxLabelValues?: number;
}

/**
 * A prom-client registry whose metrics pull their values from `src` at each scrape. Every label
 * value passes through its own LabelCap, so no source (however its keys are chosen) can make the
 * page or the registry grow without bound.
 */
export function metricsRegistry(src: MetricsSources, opts: MetricsOptions = {}): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'minewatch_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const counterOf = <L extends string>(name: string, help: string, labelNames: L[], fill: (c: Pick<Counter<L>, 'inc'>) => void): void => {
    const caps = new Map(labelNames.map((l) => [l, new LabelCap(opts.maxLabelValues)]));
    new Counter<L>({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        // Folded values add up under `other` (inc on one series accumulates).
        fill({
          inc: (labels: Partial<Record<L, string | number>>, n?: number) => {
            const capped: Partial<Record<L, string>> = {};
            for (const k of Object.keys(labels) as L[]) capped[k] = caps.get(k)!.fold(String(labels[k]));
            this.inc(capped, n);
          },
        } as Pick<Counter<L>, 'inc'>);
      },
    });
  };
  counterOf('minewatch_alerts_total', 'Rule matches, by rule and priority.', ['rule', 'priority'], (c) => {
    for (const [rule, priority, n] of src.alerts?.() ?? []) c.inc({ rule, priority }, n);
  });
  counterOf('minewatch_events_total', 'Events taken from the sources, by source and type.', ['source', 'type'], (c) => {
    for (const [source, type, n] of src.events?.() ?? []) c.inc({ source, type }, n);
  });
  counterOf('minewatch_events_dropped_total', 'Events dropped before the engine saw them, by where.', ['where'], (c) => {
    for (const [where, n] of src.drops?.() ?? []) c.inc({ where }, n);
  });
  counterOf('minewatch_output_delivered_total', 'Messages an output accepted.', ['output'], (c) => {
    for (const o of src.outputs?.() ?? []) c.inc({ output: o.name }, o.delivered);
  });
  counterOf('minewatch_output_failures_total', 'Failed delivery attempts, by output.', ['output'], (c) => {
    for (const o of src.outputs?.() ?? []) c.inc({ output: o.name }, o.failures);
  });
  new Gauge({
    name: 'minewatch_output_queue_depth', help: 'Messages waiting for delivery, by output.', labelNames: ['output'], registers: [registry],
    collect() {
      this.reset();
      for (const o of src.outputs?.() ?? []) this.set({ output: o.name }, o.pending);
    },
  });
  new Gauge({
    name: 'minewatch_alert_groups_open', help: 'Alert groups whose throttle window is open (bounded by alerts.throttle.max_open_groups).', registers: [registry],
    collect() {
      this.set(src.grouping?.().open ?? 0);
    },
  });
  counterOf('minewatch_alert_groups_closed_early_total', 'Alert groups closed before their window ended because max_open_groups were open (their summaries went out early).', [], (c) => {
    c.inc({}, src.grouping?.().closedEarly ?? 0);
  });
  counterOf('minewatch_alert_matches_folded_total', 'Matches counted into an overflow group: past max_new_groups groups of one rule in one place.', [], (c) => {
    c.inc({}, src.grouping?.().folded ?? 0);
  });
  new Gauge({
    name: 'minewatch_rules_loaded', help: 'Enabled rules loaded.', registers: [registry],
    collect() {
      this.set(src.rulesLoaded?.() ?? 0);
    },
  });
  return registry;
}

/** GET /metrics (auth `metrics`: open unless a metrics token is configured). */
export function metricsRoutes(registry: Registry): RoutePlugin {
  return async (app) => {
    app.get('/metrics', { config: { auth: 'metrics' } }, async (_req, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    });
  };
}
