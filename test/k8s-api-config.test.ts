/**
 * The `k8s.api` config part (in the `k8s` section beside audit and admission) and what the agent builds from it: a pod watcher on this node, taken
 * from NODE_NAME, talking to the configured server, and the four cluster response actions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { defaultSections } from '../src/config/sections.js';
import { enrichEnabled, k8sApiSchema, nodeName } from '../src/k8s-api/api-config.js';
import { agentK8s, apiConfigOf } from '../src/k8s/agent-k8s.js';
import { scanClientOptions } from '../src/k8s/cluster-scan.js';
import { AllowList } from '../src/response/safety.js';
import { K8sApiStandin, listObject, requestLine, sendJson } from './helpers/k8s-api-standin.js';

const registry = () => defaultSections();
const quietLog = () => {
  const lines: string[] = [];
  const log = { info: () => undefined, warn: (_o: object, m: string) => lines.push(m), error: (o: object, m: string) => lines.push(`${m} ${JSON.stringify(o)}`), debug: () => undefined };
  return { lines, log: log as unknown as Parameters<typeof agentK8s>[1] };
};

describe('k8s.api config', () => {
  test('defaults, and a wrong key is reported with its path and line', () => {
    const { config } = parseConfig('k8s:\n  api:\n    kubeconfig: /etc/kube.conf\n', 'c.yaml', registry());
    assert.deepEqual(apiConfigOf(config), { kubeconfig: '/etc/kube.conf', node_name: '', enrich: { enabled: 'auto', resync_interval_s: 300 } });
    assert.throws(() => parseConfig('k8s:\n  api:\n    enrich:\n      enabled: maybe\n', 'c.yaml', registry()), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^c\.yaml:4:\d+: k8s\.api\.enrich\.enabled: /);
      return true;
    });
    assert.throws(() => parseConfig('k8s:\n  api:\n    resync: 5\n', 'c.yaml', registry()), /^ConfigError: c\.yaml:3:5: k8s\.api\.resync: unknown key/);
    assert.throws(() => k8sApiSchema.parse({ server: 'https://a:6443', kubeconfig: '/x' }), /server or kubeconfig, not both/);
  });

  test('auto enrichment is on in a pod or with a kubeconfig/server; the node name falls back to NODE_NAME', () => {
    const base = k8sApiSchema.parse({});
    assert.equal(enrichEnabled(base, {}), false);
    assert.equal(enrichEnabled(base, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }), true);
    assert.equal(enrichEnabled({ ...base, kubeconfig: '/k' }, {}), true);
    assert.equal(enrichEnabled({ ...base, enrich: { enabled: false, resync_interval_s: 300 } }, { KUBERNETES_SERVICE_HOST: 'x' }), false);
    assert.equal(nodeName(base, { NODE_NAME: 'node-7' }), 'node-7');
    assert.equal(nodeName({ ...base, node_name: 'node-1' }, { NODE_NAME: 'node-7' }), 'node-1');
  });

  test('scan finds the cluster as kubectl does, or says what to pass', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-k8sapi-'));
    try {
      const kc = join(dir, 'config');
      writeFileSync(kc, 'apiVersion: v1\nkind: Config\n');
      assert.deepEqual(scanClientOptions('/given', {}), { kubeconfig: '/given' });
      assert.deepEqual(scanClientOptions(undefined, { KUBECONFIG: `/nope:${kc}` }), { kubeconfig: kc });
      assert.deepEqual(scanClientOptions(undefined, { KUBERNETES_SERVICE_HOST: 'x', HOME: dir }), { inCluster: true });
      assert.throws(() => scanClientOptions(undefined, { HOME: dir }), /no cluster to scan: give --kubeconfig PATH/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the agent\'s Kubernetes parts', () => {
  test('outside Kubernetes: nothing is built, and enrich: true without a server is logged', async () => {
    const { log, lines } = quietLog();
    const k = await agentK8s({}, log, new AllowList(), {});
    assert.equal(k.pods, undefined);
    assert.deepEqual(k.actions, {});
    assert.deepEqual(lines, []);
    const on = await agentK8s({ k8s: { api: { enrich: { enabled: true } } } }, log, new AllowList(), {});
    assert.equal(on.pods, undefined);
    assert.match(lines[0] ?? '', /enrich.enabled is true but no API server is configured/);
  });

  test('with a server: a watcher on NODE_NAME\'s pods, with the token from token_file, and the four actions', async () => {
    const s = await K8sApiStandin.start();
    const dir = mkdtempSync(join(tmpdir(), 'mw-k8sapi-'));
    try {
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, `${s.token}\n`);
      s.serveWatches('/api/v1/pods', (_r, res) => sendJson(res, 200, listObject('PodList', 'v1', '5', [])));
      const { log } = quietLog();
      const k = await agentK8s({ k8s: { api: { server: s.url, token_file: tokenFile } } }, log, new AllowList(), { NODE_NAME: 'node-7' });
      assert.deepEqual(Object.keys(k.actions).sort(), ['delete_pod', 'isolate_pod', 'quarantine_workload', 'suggest_revoke']);
      assert.ok(k.pods);
      const synced = k.pods.whenSynced();
      k.pods.start();
      await synced;
      await s.nextWatch();
      await k.pods.stop();
      assert.deepEqual(s.requests.map(requestLine), [
        'GET /api/v1/pods?fieldSelector=spec.nodeName=node-7&limit=500',
        'GET /api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName=node-7&resourceVersion=5&timeoutSeconds=' + s.requests[1]!.query.timeoutSeconds + '&watch=true',
      ]);
      assert.ok(s.requests.every((r) => r.authorization === `Bearer ${s.token}`));
      const t = Number(s.requests[1]!.query.timeoutSeconds);
      assert.ok(t >= 300 && t <= 360, `jittered watch timeout ${t}`);

      const { log: log2, lines } = quietLog();
      const noNode = await agentK8s({ k8s: { api: { server: s.url, token_file: tokenFile } } }, log2, new AllowList(), {});
      assert.equal(noNode.pods, undefined);
      assert.match(lines[0] ?? '', /needs the node name: set k8s.api.node_name or the NODE_NAME env/);
      assert.equal(Object.keys(noNode.actions).length, 4, 'responses work without enrichment');

      const { log: log3, lines: lines3 } = quietLog();
      const badToken = await agentK8s({ k8s: { api: { server: s.url, token_file: join(dir, 'missing') } } }, log3, new AllowList(), { NODE_NAME: 'n' });
      assert.deepEqual(badToken.actions, {});
      assert.match(lines3[0] ?? '', /k8s\.api\.token_file: cannot read .*missing \(ENOENT\)/);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
