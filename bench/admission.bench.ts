/**
 * The admission webhook under the flood of issue 13 item 6: twenty clients posting 10 MB reviews
 * (test/helpers/admission-flood.ts: a worker thread, each client from its own loopback address,
 * with and without the token, with and without a Content-Length, more at once than the per-client
 * cap). Reported: the p99 latency of the API server's normal review (one at a time, from its own
 * address) under the flood, beside the p99 of the same reviews without the flood, in the same run;
 * target < 1 s (the chart's webhook timeout is 5 s; past it failurePolicy Ignore admits unseen).
 *
 * The server is the real route (token and per-client cap checked before the body is read, 3 MiB
 * body limit, the default cap of 16), over plain HTTP on loopback in this process; the flood has
 * its own thread. For contrast, one round of the route as it was before (no token, 12 MiB bodies,
 * no cap), with few reviews, each cut at 10 s, since each can take tens of seconds.
 */
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { admissionEngine, admissionRoutes } from '../src/k8s/admission.js';
import { DEFAULT_MAX_BODY_BYTES } from '../src/config/k8s.js';
import { postReview, startFlood } from '../test/helpers/admission-flood.js';
import { fmt, median } from './lib.js';

const REVIEW = readFileSync(fileURLToPath(new URL('../../test/fixtures/k8s/admission/deployment-nginx-with-limits.json', import.meta.url)), 'utf8');
const TOKEN = 'admission-bench-token';
const CLIENTS = 20;
const BODY = 10_000_000;

const p99 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!;
};

async function reviews(url: string, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await postReview(url, REVIEW, TOKEN);
    if (r.status !== 200 || r.json.response?.allowed !== true) throw new Error(`normal review answered ${r.status}`);
    ms.push(r.ms);
  }
  return ms;
}

async function server(hardened: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const engine = admissionEngine();
  const app = Fastify({ logger: false });
  await app.register(admissionRoutes(hardened
    ? { mode: 'enforce', evaluate: (ev) => engine.process(ev), credential: { token: TOKEN, key: 'k8s.admission.token' } }
    : { mode: 'enforce', evaluate: (ev) => engine.process(ev), credential: { token: undefined, key: 'k8s.admission.allow_unauthenticated' }, maxBodyBytes: DEFAULT_MAX_BODY_BYTES, maxInFlightPerClient: 1_000_000 }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

export async function admissionFloodBench(): Promise<void> {
  const N = 200;
  const s = await server(true);
  const quiet: number[] = [];
  const flooded: number[] = [];
  const statuses: Record<number, number> = {};
  try {
    await reviews(s.url, 50); // warm-up: the rules' plans, the JIT
    for (let round = 0; round < 3; round++) {
      quiet.push(p99(await reviews(s.url, N)));
      const flood = startFlood({ url: s.url, token: TOKEN, clients: CLIENTS, concurrency: 20, bodyBytes: BODY });
      await flood.started(200);
      flooded.push(p99(await reviews(s.url, N)));
      const st = await flood.stop();
      for (const [k, v] of Object.entries(st.statuses)) statuses[Number(k)] = (statuses[Number(k)] ?? 0) + v;
    }
  } finally {
    await s.close();
  }
  const q = median(quiet);
  const f = median(flooded);
  const spread = (xs: number[]) => `${fmt(Math.min(...xs), 1)}–${fmt(Math.max(...xs), 1)} ms over ${xs.length} rounds`;
  console.log(`admission.p99_quiet     ${fmt(q, 1)} ms  (baseline: ${N} normal reviews one at a time, no flood; ${spread(quiet)})`);
  console.log(`admission.p99_flood     ${fmt(f, 1)} ms  (${fmt(f / q, 2)}x the baseline; ${spread(flooded)}; target < 1000 ms: ${f < 1000 ? 'met' : 'MISSED'})  ${CLIENTS} clients × 20 in flight posting 10 MB reviews`);
  console.log(`admission.flood_answers ${JSON.stringify(statuses)}`);

  // Before the fix: no token, 12 MiB bodies read and parsed, no cap (the Content-Length rule stays:
  // it is part of the route now). Each review can wait tens of seconds here, so few, each cut at 10 s.
  const old = await server(false);
  try {
    const before = p99(await reviews(old.url, 8));
    const flood = startFlood({ url: old.url, token: TOKEN, clients: CLIENTS, concurrency: 20, bodyBytes: BODY });
    await flood.started(20);
    const CUT = 10_000;
    const under: number[] = [];
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      await Promise.race([postReview(old.url, REVIEW, TOKEN).catch(() => undefined), new Promise((r) => setTimeout(r, CUT))]);
      under.push(performance.now() - t0);
    }
    await flood.stop();
    const worst = Math.max(...under);
    console.log(`admission.unhardened    ${worst >= CUT ? `>= ${fmt(CUT)}` : fmt(worst, 1)} ms under the same flood (the slowest of 4 reviews, each cut at ${fmt(CUT)} ms; ${fmt(before, 1)} ms without, one round): the route before issue 13`);
  } finally {
    await old.close();
  }
}
