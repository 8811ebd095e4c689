/**
 * `minewatch replay-live FILE`: a recording replayed as a live agent would see it, for load tests
 * and fleet drills. Unlike `minewatch replay` (which prints matches), every match goes through
 * the alert pipeline of `minewatch run`: throttle and groups, the local store, every output and
 * `alerts.forward`. Events come at a steady rate with their times shifted to now, and each pass of
 * the file plays in fresh containers (so each pass opens new groups, as new victims would).
 */
import type { Command } from 'commander';
import { createLogger } from '../platform/logger.js';
import { privateUmask } from '../platform/state.js';
import { FORWARD_OUTPUT } from '../alerts/forward.js';
import type { AlertPipeline } from '../alerts/pipeline.js';
import { Engine } from '../engine/index.js';
import { FALCO_DEFAULT_APPEND_OUTPUT } from '../engine/output.js';
import type { Event } from '../events.js';
import { readEventsFile } from '../sources/replay.js';
import { startAlerting } from '../app/alerting.js';
import { collect, loadConfigWithFlags, printLoadError, resolveRulesPaths } from './common.js';

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
    .description('replay a JSON-lines recording as a live agent: at a steady rate, times shifted to now, through the alert pipeline (store, outputs, alerts.forward)')
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
  let engine: Engine;
  try {
    engine = Engine.fromFiles(resolveRulesPaths(config.rules_files), { ruleMatching: 'first', appendOutput: FALCO_DEFAULT_APPEND_OUTPUT });
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
  const log = createLogger();
  const alerting = await startAlerting(config, log, { webRequired: false, inputs: false });
  // An agent's pipeline is always the SQLite one (alerts.store.url is refused off the server).
  const pipeline = alerting.pipeline as AlertPipeline;
  let stop = false;
  process.once('SIGTERM', () => (stop = true));
  process.once('SIGINT', () => (stop = true));
  const started = Date.now();
  const endAt = duration !== undefined ? started + duration * 1000 : Number.POSITIVE_INFINITY;
  const maxPasses = passes ?? (duration !== undefined ? Number.POSITIVE_INFINITY : 1);
  let events = 0;
  let matches = 0;
  const progress = process.stderr.isTTY;
  // Steady pacing: event n is due at started + n/rate; a late loop catches up without bursts
  // beyond one timer tick.
  for (let pass = 0; pass < maxPasses && !stop && Date.now() < endAt; pass++) {
    for (const ev of recording) {
      if (stop || Date.now() >= endAt) break;
      const due = started + (events * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      for (const m of engine.process(livened(ev, pass, BigInt(Date.now()) * 1_000_000n))) {
        matches++;
        pipeline.accept(m);
      }
      events++;
    }
    if (progress) process.stderr.write(`\rpass ${pass + 1}: ${events} events, ${matches} matches`);
  }
  if (progress) process.stderr.write('\n');
  // What is counted now is written, then the outputs get up to --drain-timeout to send it all.
  pipeline.flush();
  const drainEnd = Date.now() + drain * 1000;
  const pendingNow = () => pipeline.outputStats().reduce((n, o) => n + o.pending, 0);
  // Groups still open get their summaries when their windows close (alerts.throttle.window_s).
  while ((pendingNow() > 0 || pipeline.openGroups > 0) && Date.now() < drainEnd) await new Promise((r) => setTimeout(r, 100));
  const outputs = pipeline.outputStats();
  const summary = {
    events, matches, groups: pipeline.counters.groups, summaries: pipeline.counters.summaries, seconds: (Date.now() - started) / 1000,
    store: pipeline.store.path, outputs, forwarded: outputs.find((o) => o.name === FORWARD_OUTPUT) ?? null,
  };
  await alerting.stop();
  process.stdout.write(opts.json ? JSON.stringify(summary) + '\n' : `replayed ${events} events (${matches} matches, ${summary.groups} groups) in ${summary.seconds.toFixed(1)} s; pending: ${outputs.map((o) => `${o.name} ${o.pending}`).join(', ') || 'none'}\n`);
  return outputs.some((o) => o.pending > 0) ? 3 : 0;
}
