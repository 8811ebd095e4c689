/**
 * The alert pipeline end to end, with real processes: `minewatch server` taking Falco alerts on
 * POST /, storing them in SQLite and forwarding them to a loopback webhook; a SIGKILL mid-stream;
 * a webhook that is down and comes back; and an agent forwarding to a server that restarts.
 */
import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentRun, runScope, compileC, Marker, MARKER_RULE, markerRules, randomToken, writeConfig } from './helpers/agent-run.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { FIXTURES } from './helpers/paths.js';
import { until } from './helpers/wait.js';

const { tmp, start } = runScope('mw-alerts-e2e-');


/** A loopback webhook target that records every JSON body it accepts. */
class Receiver {
  readonly got: Record<string, any>[] = [];
  private server: Server | undefined;
  port = 0;
  async listen(port = 0): Promise<this> {
    this.server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        try {
          this.got.push(JSON.parse(body));
          res.writeHead(200).end('{}');
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = undefined;
  }
}

function falcoAlert(seq: number, container: string, rule = 'Outbound connection to a mining pool'): Record<string, unknown> {
  return {
    hostname: 'node-a',
    output: `20:16:35.000000000: Critical Miner connected (seq=${seq} container.id=${container})`,
    output_fields: { 'container.id': container, 'k8s.ns.name': 'prod', seq },
    priority: 'Critical',
    rule,
    source: 'syscall',
    tags: ['mitre_impact'],
    time: new Date().toISOString(),
  };
}

async function post(url: string, body: unknown, token?: string): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

async function getJson(url: string, token?: string): Promise<any> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  assert.equal(res.status, 200, `${url}: HTTP ${res.status}`);
  return res.json();
}

/** Every stored alert, newest first, through the API's paging. */
async function allAlerts(base: string, token?: string): Promise<any[]> {
  const out: any[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await getJson(`${base}/api/alerts?limit=1000${before ? `&beforeId=${before}` : ''}`, token);
    const items: any[] = page.alerts;
    out.push(...items);
    if (items.length < 1000) return out;
    before = items[items.length - 1].id;
  }
}

function serverConfig(dir: string, over: Record<string, unknown>): string {
  return writeConfig(join(dir, 'server.yaml'), {
    alerts: { store: { path: join(dir, 'alerts.db') }, delivery: { retry_initial_ms: 50, retry_max_ms: 500 }, ...(over.alerts as object) },
    outputs: { stdout: { enabled: false }, ...(over.outputs as object) },
    ...(over.web ? { web: over.web } : {}),
  });
}

describe('minewatch server: store, throttle, forward', () => {
  it('10,000 repeats for one container are one group of 10,000 and two webhook messages; a second container is a second group', async () => {
    const dir = tmp();
    const hook = await new Receiver().listen();
    const server = start(serverConfig(dir, { alerts: { throttle: { window_s: 8 } }, outputs: { webhook: { enabled: true, url: hook.url } } }), { command: 'server' });
    const base = await server.webUrl();
    const token = server.apiToken();
    for (let b = 0; b < 20; b++) {
      const batch = Array.from({ length: 500 }, (_, i) => falcoAlert(b * 500 + i, 'aaaaaaaaaaaa'));
      assert.equal(await post(`${base}/`, batch, token), 200);
    }
    for (let i = 0; i < 10; i++) assert.equal(await post(`${base}/falco`, falcoAlert(i, 'bbbbbbbbbbbb'), token), 200);
    // Both firsts arrive at once; the summaries when the windows close.
    await until(() => hook.got.length >= 4);
    const groups = await allAlerts(base, token);
    assert.equal(groups.length, 2);
    const byContainer = Object.fromEntries(groups.map((g) => [g.container_id, g]));
    assert.equal(byContainer.aaaaaaaaaaaa.count, 10_000);
    assert.equal(byContainer.bbbbbbbbbbbb.count, 10);
    const forA = hook.got.filter((m) => m.output_fields['container.id'] === 'aaaaaaaaaaaa');
    assert.deepEqual(forA.map((m) => [m.minewatch.kind, m.minewatch.count]), [['first', 1], ['summary', 10_000]]);
    // Nothing else is on its way: the webhook's queue is empty and it got exactly four.
    await until(async () => /minewatch_output_queue_depth\{output="webhook"\} 0\b/.test(await (await fetch(`${base}/metrics`)).text()));
    assert.equal(hook.got.length, 4);
    await server.stop();
    await hook.close();
  });

  it('SIGKILL mid-stream: every acknowledged alert is stored after the restart, and the webhook that was down gets them all', async () => {
    const dir = tmp();
    const state = tmp();
    const hook = new Receiver();
    await hook.listen();
    const port = hook.port;
    await hook.close(); // down for now: deliveries stay pending
    const cfg = serverConfig(dir, { alerts: { throttle: { window_s: 0 } }, outputs: { webhook: { enabled: true, url: `http://127.0.0.1:${port}/hook` } } });
    const s1 = start(cfg, { command: 'server', stateDir: state });
    const base1 = await s1.webUrl();
    const token = s1.apiToken();
    const acked = new Set<number>();
    let seq = 0;
    const sender = (async () => {
      for (;;) {
        const batch = Array.from({ length: 20 }, () => falcoAlert(seq++, `c${String(seq % 5).padStart(11, '0')}`));
        try {
          if ((await post(`${base1}/`, batch, token)) === 200) for (const a of batch) acked.add((a.output_fields as { seq: number }).seq);
        } catch {
          return; // the server is gone
        }
      }
    })();
    await until(() => acked.size >= 1000);
    s1.child.kill('SIGKILL');
    await sender;
    await s1.exited;
    const s2 = start(cfg, { command: 'server', stateDir: state });
    const base2 = await s2.webUrl();
    assert.equal(s2.apiToken(), token, 'the token survives the restart');
    const stored = new Set((await allAlerts(base2, token)).map((a) => a.output_fields.seq));
    for (const s of acked) assert.ok(stored.has(s), `acknowledged alert seq=${s} is not in the store after the restart`);
    await hook.listen(port);
    await until(() => new Set(hook.got.map((m) => m.output_fields.seq)).size >= stored.size);
    const delivered = new Set(hook.got.map((m) => m.output_fields.seq));
    for (const s of stored) assert.ok(delivered.has(s), `stored alert seq=${s} was never delivered`);
    await s2.stop();
    await hook.close();
  });

  it('malformed and oversized input is refused and the server keeps going', async () => {
    const dir = tmp();
    const server = start(serverConfig(dir, { web: { max_body_bytes: 4096 } }), { command: 'server' });
    const base = await server.webUrl();
    const token = server.apiToken();
    const raw = (body: string) => fetch(`${base}/`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body }).then((r) => r.status);
    assert.equal(await raw('{"rule": '), 400);
    assert.equal(await raw('{"rule": "x"}'), 400);
    assert.equal(await raw(JSON.stringify(Array.from({ length: 100 }, (_, i) => falcoAlert(i, 'c')))), 413);
    assert.equal(await post(`${base}/`, falcoAlert(1, 'cccccccccccc'), token), 200);
    assert.equal((await allAlerts(base, token)).length, 1);
    await server.stop();
  });
});

describe('an agent forwarding to a central server', () => {
  const skip = !isRoot() ? 'needs root: the agent reads the kernel proc connector' : !haveCommand('cc') ? 'needs a C compiler (`cc`) for the marker program' : undefined;

  it("the agent's alerts appear on the server's API with their hostname, and survive the server's restart (the agent holds them meanwhile)", { skip }, async () => {
    const dir = tmp();
    chmodSync(dir, 0o755);
    const miner = join(dir, 'fake-miner');
    compileC(join(FIXTURES, 'agent', 'fake-miner.c'), miner);
    const marker = new Marker(dir, miner);
    const token = randomToken(16);
    // The agent's own token: the server stores its alerts under the hostname it gives it.
    const agentToken = randomToken(16);
    // One fixed port for both server runs: the agent's output points at it.
    const probe = await new Receiver().listen();
    const port = probe.port;
    await probe.close();
    const serverState = tmp();
    const serverCfg = writeConfig(join(dir, 'server.yaml'), { alerts: { throttle: { window_s: 0 } }, outputs: { stdout: { enabled: false } }, web: { token, inputs: { agents: [{ hostname: hostname(), token: agentToken }] } } });
    let server = start(serverCfg, { command: 'server', stateDir: serverState, listen: `127.0.0.1:${port}` });
    const base = await server.webUrl();
    writeFileSync(join(dir, 'marker.yaml'), markerRules());
    const agentCfg = writeConfig(join(dir, 'agent.yaml'), {
      rules_files: [join(dir, 'marker.yaml')],
      alerts: { throttle: { window_s: 0 }, delivery: { retry_initial_ms: 100, retry_max_ms: 1000 } },
      outputs: { stdout: { enabled: true, format: 'json' }, falcosidekick: { enabled: true, url: base, token: agentToken } },
    });
    const agent = start(agentCfg, {});
    await agent.started();
    const onServer = async (cmdlinePart: string): Promise<any> => {
      let found: any;
      await until(async () => {
        found = (await allAlerts(base, token)).find((a) => String(a.output_fields['proc.cmdline'] ?? '').includes(cmdlinePart));
        return found !== undefined;
      });
      return found;
    };
    const first = await marker.fire(agent, 'first, server up');
    const mark1 = String(first.output_fields['proc.cmdline']).split(' ').pop()!;
    const stored1 = await onServer(mark1);
    assert.equal(stored1.hostname, hostname());
    assert.equal(stored1.rule, MARKER_RULE);
    assert.equal(stored1.origin, 'input');
    // Without the token the server refuses to serve its alerts.
    assert.equal((await fetch(`${base}/api/alerts`)).status, 401);

    await server.stop();
    const second = await marker.fire(agent, 'second, server down');
    const mark2 = String(second.output_fields['proc.cmdline']).split(' ').pop()!;
    server = start(serverCfg, { command: 'server', stateDir: serverState, listen: `127.0.0.1:${port}` });
    await server.webUrl();
    await onServer(mark2);
    await onServer(mark1); // the first survived the restart too
    await agent.stop();
    await server.stop();
  });
});
