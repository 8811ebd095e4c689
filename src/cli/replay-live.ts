/**
 * `minewatch replay-live FILE`: a recording replayed as a live agent would see it, for load tests
 * and fleet drills. Unlike `minewatch replay` (which prints matches), events go through the very
 * pipeline `minewatch run` composes (src/app/compose.ts): the bounded queue, enrich (fds, names,
 * DNS) → detectors → engine → response (record only: a recording's pids are not this host's) →
 * alert sink → throttle and groups → the local store → every output and `alerts.forward`. Events
 * come at a steady rate with their times shifted to now, and each pass of the file plays in fresh
 * containers (so each pass opens new groups, as new victims would).
 */
import type { Command } from 'commander';
import { createLogger } from '../platform/logger.js';
import { privateUmask } from '../platform/state.js';
import { FORWARD_OUTPUT } from '../alerts/forward.js';
import type { AlertPipeline } from '../alerts/pipeline.js';
import type { Event } from '../events.js';
import { readEventsFile } from '../sources/replay.js';
import { type AlertIntake, openAlertPipeline, startAlerting } from '../app/alerting.js';
import { composeCore, rulesFromConfig } from '../app/compose.js';
import type { RulesManager } from '../agent/rules-manager.js';
import { collect, loadConfigWithFlags, printLoadError } from './common.js';

interface ReplayLiveOpts {
  config?: string;
  rules?: string[];
  rate: string;
  passes?: string;
  duration?: string;
  drainTimeout: string;
  json?: boolean;
}

export function registerReplayLive(program: Command): void {
  program
    .command('replay-live')
    .description('replay a JSON-lines recording as a live agent: at a steady rate, times shifted to now, through the event pipeline of `run` (enrich, detectors, rules, response recording only) and its alert pipeline (store, outputs, alerts.forward)')
    .argument('<file>', 'events file, one JSON event per line (see README, "Events")')
    .option('-c, --config <file>', 'the config file (alerts, outputs; web is not started)')
    .option('-r, --rules <file>', 'rules file or folder (repeatable; replaces the config\'s rules_files)', collect)
    .option('--rate <events/s>', 'events per second', '100')
    .option('--passes <n>', 'play the file this many times (each pass in fresh container ids)')
    .option('--duration <s>', 'stop after this many seconds (default: one pass, or --passes)')
    .option('--drain-timeout <s>', 'at the end, wait this long for the outputs to send what is pending', '60')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, opts: ReplayLiveOpts) => {
      process.exitCode = await replayLive(file, opts);
    });
}

function positive(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number, got '${v}'`);
  return n;
}

/** A pass's copy of an event: a container id of that pass, and the time now. */
function livened(ev: Event, pass: number, ts: bigint): Event {
  const copy = { ...ev, ts } as Event & { container?: { id?: string; full_id?: string } };
  if (pass > 0 && copy.container?.id) {
    const tag = `p${pass.toString(36)}`;
    copy.container = { ...copy.container, id: copy.container.id.slice(0, 12 - Math.min(12, tag.length)) + tag, full_id: `${copy.container.full_id ?? copy.container.id}${tag}` };
  }
  return copy;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function replayLive(file: string, opts: ReplayLiveOpts): Promise<number> {
  privateUmask();
  let rate: number, passes: number | undefined, duration: number | undefined, drain: number;
  try {
    rate = positive(opts.rate, '--rate')!;
    passes = positive(opts.passes, '--passes');
    duration = positive(opts.duration, '--duration');
    drain = Number(opts.drainTimeout);
    if (!Number.isFinite(drain) || drain < 0) throw new Error(`--drain-timeout: expected seconds ≥ 0, got '${opts.drainTimeout}'`);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  const config = loadConfigWithFlags(opts.config, {}, (c) => {
    if (opts.rules?.length) c.rules_files = opts.rules;
    c.web.enabled = false;
  });
  if (typeof config === 'number') return config;
  const log = createLogger();
  // The rules as `run` loads them: the config's files and engine options.
  let rules: RulesManager;
  try {
    rules = rulesFromConfig(config, log);
  } catch (e) {
    return printLoadError(e);
  }
  const recording: Event[] = [];
  try {
    for await (const ev of readEventsFile(file)) recording.push(ev);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  if (!recording.length) {
    process.stderr.write(`${file}: nothing to replay (no event in it)\n`);
    return 1;
  }
  let alerts: AlertIntake;
  try {
    alerts = await openAlertPipeline(config, log);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  // `replay`: actions only record what they would do (never a kill or block on this host for a
  // recorded pid), no rescans of this host, and no "own process" filter (recorded pids are not ours).
  const core = composeCore(config, log, { sink: (m) => void alerts.accept(m), rules, replay: true });
  const alerting = await startAlerting(config, log, { pipeline: alerts, webRequired: false, inputs: false });
  // An agent's pipeline is always the SQLite one (alerts.store.url is refused off the server).
  const pipeline = alerting.pipeline as AlertPipeline;
  core.pipeline.start();
  let stop = false;
  process.once('SIGTERM', () => (stop = true));
  process.once('SIGINT', () => (stop = true));
  const started = Date.now();
  const endAt = duration !== undefined ? started + duration * 1000 : Number.POSITIVE_INFINITY;
  const maxPasses = passes ?? (duration !== undefined ? Number.POSITIVE_INFINITY : 1);
  let events = 0;
  const progress = process.stderr.isTTY;
  // Steady pacing: event n is due at started + n/rate; a late loop catches up without bursts
  // beyond one timer tick. Each event is stamped with the moment it enters the queue.
  for (let pass = 0; pass < maxPasses && !stop && Date.now() < endAt; pass++) {
    for (const ev of recording) {
      if (stop || Date.now() >= endAt) break;
      const due = started + (events * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 1) await sleep(wait);
      core.pipeline.accept(livened(ev, pass, BigInt(Date.now()) * 1_000_000n));
      events++;
    }
    if (progress) process.stderr.write(`\rpass ${pass + 1}: ${events} events, ${core.sink.count} matches`);
  }
  if (progress) process.stderr.write('\n');
  // Everything queued is evaluated; the response outcomes (recorded only) arrive as alerts once
  // their promises settle; then what is counted is written, and the outputs get up to
  // --drain-timeout to send it all.
  core.pipeline.close();
  await new Promise((r) => setImmediate(r));
  core.detectors.close();
  core.table.close();
  pipeline.flush();
  const drainEnd = Date.now() + drain * 1000;
  const pendingNow = () => pipeline.outputStats().reduce((n, o) => n + o.pending, 0);
  // Groups still open get their summaries when their windows close (alerts.throttle.window_s).
  while ((pendingNow() > 0 || pipeline.openGroups > 0) && Date.now() < drainEnd) await sleep(100);
  const outputs = pipeline.outputStats();
  const counts = core.pipeline.counts();
  const summary = {
    events, matches: core.sink.count, groups: pipeline.counters.groups, summaries: pipeline.counters.summaries, seconds: (Date.now() - started) / 1000,
    pipeline: { processed: counts.processed, queueDrops: counts.queueDrops },
    store: pipeline.store.path, outputs, forwarded: outputs.find((o) => o.name === FORWARD_OUTPUT) ?? null,
  };
  await alerting.stop();
  process.stdout.write(opts.json ? JSON.stringify(summary) + '\n' : `replayed ${events} events (${summary.matches} matches, ${summary.groups} groups${counts.queueDrops ? `, ${counts.queueDrops} dropped: queue full` : ''}) in ${summary.seconds.toFixed(1)} s; pending: ${outputs.map((o) => `${o.name} ${o.pending}`).join(', ') || 'none'}\n`);
  return outputs.some((o) => o.pending > 0) ? 3 : 0;
}
