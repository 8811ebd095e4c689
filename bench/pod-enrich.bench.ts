/**
 * Pod enrichment on the event path: the cost of PodWatcher.enrich (container id → pod, by map
 * lookup) per syscall event, beside the engine's own cost on the same events (minewatch's default
 * rules) measured in the same run, so the ratio says what pod context adds to each event.
 * The watcher is filled the real way: a list from the loopback API stand-in, 110 pods (the
 * kubelet's default maximum per node), 2 containers each.
 */
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import { PodWatcher } from '../src/enrich/pods.js';
import type { SyscallEvent } from '../src/events.js';
import { K8sClient } from '../src/k8s-api/client.js';
import { K8sApiStandin, listObject, podObject, sendJson } from '../test/helpers/k8s-api-standin.js';
import { fmt, median } from './lib.js';

const PODS = 110;
const EVENTS = 20_000;
const ROUNDS = 15;
/** Passes over the events per timing, so each timing spans tens of milliseconds. */
const PASSES = 10;

const hex64 = (i: number, c: number): string => (i * 2 + c).toString(16).padStart(8, '0').repeat(8);

export async function podEnrichBench(): Promise<void> {
  const s = await K8sApiStandin.start();
  const pods = Array.from({ length: PODS }, (_, i) => podObject({
    name: `app-${i}`, namespace: `ns-${i % 7}`, uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, node: 'bench-node',
    labels: { app: `app-${i}`, tier: 'web' },
    containers: [0, 1].map((c) => ({ name: `c${c}`, image: `registry.example/app-${i}:1.${c}`, containerID: `containerd://${hex64(i, c)}` })),
  }));
  s.serveWatches('/api/v1/pods', (_r, res) => sendJson(res, 200, listObject('PodList', 'v1', '100', pods)));
  const w = new PodWatcher(new K8sClient({ server: s.url, token: s.token }), { nodeName: 'bench-node', resolveOwners: false, resyncIntervalMs: 0 });
  const synced = w.whenSynced();
  w.start();
  await synced;

  // Events: 80 % from pod containers, 10 % from containers no pod lists, 10 % from the host.
  const events: SyscallEvent[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const r = i % 10;
    const container = r === 0 ? { id: 'host' } : r === 1 ? { id: 'deadbeefdead', full_id: 'deadbeef'.repeat(8) } : (() => {
      const id = hex64(i % PODS, i % 2);
      return { id: id.slice(0, 12), full_id: id, type: 'containerd' };
    })();
    events.push({ source: 'syscall', type: i % 3 === 0 ? 'execve' : 'connect', ts: BigInt(i), res: 0, proc: { pid: 1000 + (i % 500), name: 'app', exe: '/usr/bin/app', args: ['--serve'] }, container });
  }
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES, { hostname: 'bench-host' });
  const time = (fn: () => void): number => {
    const t = process.hrtime.bigint();
    for (let p = 0; p < PASSES; p++) fn();
    return Number(process.hrtime.bigint() - t) / (EVENTS * PASSES);
  };
  const engineNs: number[] = [];
  const enrichNs: number[] = [];
  const bothNs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    engineNs.push(time(() => {
      for (const ev of events) {
        ev.k8s = undefined;
        engine.process(ev);
      }
    }));
    enrichNs.push(time(() => {
      for (const ev of events) {
        ev.k8s = undefined;
        w.enrich(ev);
      }
    }));
    bothNs.push(time(() => {
      for (const ev of events) {
        ev.k8s = undefined;
        w.enrich(ev);
        engine.process(ev);
      }
    }));
  }
  const enriched = events.filter((e) => e.k8s?.pod_name).length;
  await w.stop();
  await s.close();
  // The fastest round: on a shared machine the others measure the neighbours as much as the code.
  const eng = Math.min(...engineNs);
  const en = Math.min(...enrichNs);
  const both = Math.min(...bothNs);
  console.log(`pods ${PODS} (${w.stats.containers} containers), events ${fmt(EVENTS)} (${fmt(enriched)} enriched), fastest of ${ROUNDS} rounds of ${PASSES} passes (medians: engine ${fmt(median(engineNs), 1)}, enrich ${fmt(median(enrichNs), 1)}, both ${fmt(median(bothNs), 1)} ns/event)`);
  console.log(`baseline engine.process, default rules: ${fmt(eng, 1)} ns/event`);
  console.log(`PodWatcher.enrich alone:               ${fmt(en, 1)} ns/event  = ${fmt(en / eng, 3)} × baseline`);
  console.log(`enrich + engine.process:               ${fmt(both, 1)} ns/event  = ${fmt(both / eng, 3)} × baseline`);
}
