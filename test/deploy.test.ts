/** What deploy/ ships is accepted by the tools that will read it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { CLI, ROOT } from './helpers/paths.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- YAML documents checked field by field */

test('systemd-analyze verify accepts the unit file', (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    t.skip('systemd-analyze is not installed here (Debian package systemd)');
    return;
  }
  // Run from / so relative lookups cannot hide a problem; the unit names /usr/bin/env, which exists.
  const r = spawnSync('systemd-analyze', ['verify', `${ROOT}deploy/minewatch.service`], { encoding: 'utf8', cwd: '/' });
  assert.equal(r.status, 0, `systemd-analyze verify failed:\n${r.stdout}${r.stderr}`);
  assert.equal(r.stderr.trim(), '', r.stderr);
});

// ---- deploy/Dockerfile -------------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerfile(): Instruction[] {
  const out: Instruction[] = [];
  const lines = readFileSync(`${ROOT}deploy/Dockerfile`, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let text = lines[i]!;
    if (/^\s*(#|$)/.test(text)) continue;
    while (text.endsWith('\\')) text = text.slice(0, -1) + ' ' + (lines[++i] ?? '').replace(/^\s*#.*$/, '');
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(text);
    assert.ok(m, `Dockerfile:${start + 1}: not an instruction: ${text}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

/** .dockerignore patterns (plain names and globs with *), as Docker matches them from the context root. */
function dockerIgnored(path: string): boolean {
  const patterns = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return patterns.some((p) => {
    const re = new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    return re.test(path.replace(/^\.\//, '').replace(/\/$/, ''));
  });
}

test('Dockerfile: a build stage with the native toolchain, a slim runtime stage, every COPY source in the context', () => {
  const ins = dockerfile();
  const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
  assert.deepEqual(froms, ['node:20-bookworm-slim AS build', 'node:20-bookworm-slim']);
  const buildEnd = ins.findIndex((i, n) => n > 0 && i.op === 'FROM');
  const buildRuns = ins.slice(0, buildEnd).filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
  for (const pkg of ['python3', 'make', 'g++', 'clang', 'libbpf-dev']) assert.match(buildRuns, new RegExp(`\\s${pkg.replace('+', '\\+')}\\s`), `build stage installs ${pkg}`);
  assert.match(buildRuns, /npm ci/);
  assert.match(buildRuns, /npm run build/);
  assert.match(buildRuns, /npm prune --omit=dev/);
  const runtime = ins.slice(buildEnd);
  assert.ok(!runtime.some((i) => i.op === 'RUN' && /\b(g\+\+|clang|make|python3|libbpf-dev)\b/.test(i.args)), 'no compilers in the runtime stage');

  for (const copy of ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
    const parts = copy.args.split(/\s+/);
    for (const src of parts.slice(0, -1)) {
      assert.ok(existsSync(`${ROOT}${src}`), `Dockerfile:${copy.line}: COPY source ${src} is not in the repository`);
      if (src !== '.') assert.ok(!dockerIgnored(src), `Dockerfile:${copy.line}: COPY source ${src} is excluded by .dockerignore`);
    }
  }
  // `COPY . .` must bring what `npm run build` and the runtime read.
  for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'binding.gyp', 'native', 'src', 'rules', 'samples', 'scripts']) {
    assert.ok(!dockerIgnored(needed), `.dockerignore must not exclude ${needed}`);
  }
  for (const built of ['node_modules', 'dist', 'build', '.git']) assert.ok(dockerIgnored(built), `.dockerignore keeps the host's ${built} out of the build`);
});

test('Dockerfile: the runtime tree holds what the package ships, the addon binding.gyp builds, and the entry point the build makes', () => {
  const ins = dockerfile();
  const gather = ins.find((i) => i.op === 'RUN' && i.args.includes('mkdir -p /out'));
  assert.ok(gather, 'a RUN gathers the runtime tree in /out');
  // Every path it copies unconditionally exists in a built checkout (this one: tests run after the build).
  const always = /cp -a --parents (.*?) \/out\//.exec(gather.args)![1]!.split(/\s+/);
  for (const p of always) assert.ok(existsSync(`${ROOT}${p}`), `${p} exists after npm run build`);
  // The package's own `files` (what npm publishes) are all there, built or copied.
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { files: string[]; bin: Record<string, string> };
  const optional = /for p in (.*?); do/.exec(gather.args)![1]!.split(/\s+/);
  const shipped = [...always, ...optional];
  for (const f of pkg.files.filter((f) => !['binding.gyp', 'native', 'scripts/native-fallback.cjs'].includes(f))) {
    assert.ok(shipped.some((s) => f === s || f.startsWith(`${s}/`)), `the image ships ${f} (package.json files)`);
  }
  const gyp = JSON.parse(readFileSync(`${ROOT}binding.gyp`, 'utf8')) as { targets: { target_name: string }[] };
  assert.ok(optional.includes(`build/Release/${gyp.targets[0]!.target_name}.node`), 'the addon binding.gyp builds is copied');

  const entry = JSON.parse(ins.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
  assert.equal(entry[0], 'node');
  assert.equal(entry[1], `/opt/minewatch/${pkg.bin.minewatch}`, 'the entry point is the package bin');
  assert.ok(existsSync(`${ROOT}${pkg.bin.minewatch}`));
  assert.ok(ins.some((i) => i.op === 'COPY' && i.args === '--from=build /out /opt/minewatch'));

  // The image's default user is the server's (non-root, numeric so runAsNonRoot can check it).
  const user = ins.filter((i) => i.op === 'USER').at(-1)!.args;
  const server = readFileSync(`${ROOT}deploy/helm/minewatch/templates/server-deployment.yaml`, 'utf8');
  assert.equal(user, `${/runAsUser: (\d+)/.exec(server)![1]}:${/runAsGroup: (\d+)/.exec(server)![1]}`);
  const runtimeRuns = ins.slice(ins.findIndex((i, n) => n > 0 && i.op === 'FROM')).filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
  assert.match(runtimeRuns, /\snftables\s/, 'block_destination runs nft');
});

test('the commands the image and the chart run exist in the CLI', (t) => {
  const ins = dockerfile();
  const cmd = JSON.parse(ins.find((i) => i.op === 'CMD')!.args) as string[];
  const chart = [cmd[0]!, 'run', 'server'];
  const missing: string[] = [];
  for (const c of new Set(chart)) {
    const r = spawnSync(process.execPath, [CLI, c, '--help'], { encoding: 'utf8' });
    // commander answers `--help` of an unknown command with the top-level help.
    if (!r.stdout.startsWith(`Usage: minewatch ${c} `)) {
      missing.push(c);
      continue;
    }
    assert.equal(r.status, 0, `minewatch ${c} --help:\n${r.stderr}`);
    assert.match(r.stdout, /--config/, `minewatch ${c} takes --config`);
  }
  if (missing.length) t.skip(`not in this build yet: minewatch ${missing.join(', ')} (issue 4: central mode)`);
});

// ---- deploy/k8s-audit-webhook.yaml and deploy/k8s-audit-policy.yaml ----------------------------------

test('the audit webhook kubeconfig points at the server\'s /k8s-audit over TLS with a bearer token', () => {
  const kc = parse(readFileSync(`${ROOT}deploy/k8s-audit-webhook.yaml`, 'utf8')) as Record<string, any>;
  assert.equal(kc.apiVersion, 'v1');
  assert.equal(kc.kind, 'Config');
  const ctx = kc.contexts.find((c: any) => c.name === kc['current-context']);
  assert.ok(ctx, 'current-context names a context');
  const cluster = kc.clusters.find((c: any) => c.name === ctx.context.cluster)?.cluster;
  const user = kc.users.find((u: any) => u.name === ctx.context.user)?.user;
  assert.ok(cluster && user, 'the context names a cluster and a user');
  const url = new URL(cluster.server.replace('<ClusterIP>', '192.0.2.1'));
  assert.equal(url.protocol, 'https:');
  assert.equal(url.pathname, '/k8s-audit');
  const values = parse(readFileSync(`${ROOT}deploy/helm/minewatch/values.yaml`, 'utf8')) as Record<string, any>;
  assert.equal(Number(url.port), values.server.service.port, "the chart's Service port");
  assert.match(cluster['tls-server-name'], /-minewatch-server\.[A-Z]+\.svc$/, "the name the chart's certificate carries");
  assert.ok(cluster['certificate-authority-data']);
  assert.ok(user.token, 'a bearer token');
});

type PolicyRule = { level: string; verbs?: string[]; resources?: { group: string; resources?: string[] }[] };

/** The level the audit policy gives a request: its first matching rule, as the kube-apiserver decides. */
function auditLevel(rules: PolicyRule[], verb: string, group: string, resource: string): string {
  for (const r of rules) {
    if (r.verbs && !r.verbs.includes(verb)) continue;
    if (r.resources && !r.resources.some((g) => g.group === group && (!g.resources || g.resources.includes(resource)))) continue;
    return r.level;
  }
  return 'None';
}

test('the audit policy logs workloads with their objects, secrets never beyond metadata, reads not at all', () => {
  const policy = parse(readFileSync(`${ROOT}deploy/k8s-audit-policy.yaml`, 'utf8')) as { apiVersion: string; kind: string; omitStages: string[]; rules: PolicyRule[] };
  assert.equal(policy.apiVersion, 'audit.k8s.io/v1');
  assert.equal(policy.kind, 'Policy');
  assert.deepEqual(policy.omitStages, ['RequestReceived']);
  for (const r of policy.rules) assert.ok(['None', 'Metadata', 'Request', 'RequestResponse'].includes(r.level), `level ${r.level}`);
  const level = (verb: string, group: string, resource: string) => auditLevel(policy.rules, verb, group, resource);
  // The kinds the rules and the admission webhook look at: bodies included (ka.req.*, ka.resp.name).
  for (const [group, resource] of [['', 'pods'], ['apps', 'deployments'], ['apps', 'daemonsets'], ['apps', 'statefulsets'], ['apps', 'replicasets'], ['batch', 'jobs'], ['batch', 'cronjobs']] as const) {
    for (const verb of ['create', 'update', 'patch']) assert.equal(level(verb, group, resource), 'RequestResponse', `${verb} ${resource}`);
    assert.equal(level('get', group, resource), 'None', `get ${resource}`);
  }
  for (const verb of ['create', 'update', 'patch', 'delete', 'get']) assert.ok(['None', 'Metadata'].includes(level(verb, '', 'secrets')), `${verb} secrets never logs the secret`);
  assert.equal(level('create', '', 'pods/exec'), 'Metadata');
  assert.equal(level('create', 'rbac.authorization.k8s.io', 'clusterrolebindings'), 'Metadata');
  assert.equal(level('create', '', 'configmaps'), 'Request');
  assert.equal(level('create', 'storage.k8s.io', 'storageclasses'), 'None');
});
