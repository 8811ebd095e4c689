/**
 * Issue 13, item 3 ("other users' secrets are readable"), each attack reproduced and shown to fail:
 * - another local user (daemon, made by setpriv) reads alerts.db, its WAL and the token: refused
 *   (state folder 0700, files 0600, even when started under umask 000 over an older 0755 state);
 * - the API on loopback without a token: 401 (the server made <state>/token; the CLI reads it);
 * - an alert whose process had GITHUB_TOKEN / PGPASSWORD in its environment: neither is in the
 *   store file, its WAL, the API, nor what the outputs are given; the wallet the rule matched is.
 * And item 5's first half: `minewatch run` mounts no input unless web.inputs.enabled.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RulesEngine } from '../src/engine/engine.js';
import type { SyscallEvent } from '../src/events.js';
import { defaultRegistry } from '../src/fields/index.js';
import { redactEnvText, redactOutput, scrubSecrets } from '../src/alerts/redact.js';
import { toJsonText } from '../src/engine/json.js';
import { AgentRun, runScope, compileC, writeConfig } from './helpers/agent-run.js';
import { haveCommand, isRoot } from './helpers/live.js';
import { CLI, FIXTURES } from './helpers/paths.js';
import { call, falcoAlert, newAlertService, startWeb } from './helpers/web.js';

const { tmp, start } = runScope('mw-harden-');

// Secrets as they look in the wild (made up): a GitHub token the secrets check knows, a password.
const GITHUB_TOKEN = 'ghp_' + 'Zq8kR2mW4xT6vB1nY3pL5sD7fH9jK0aC2eG4';
const PGPASSWORD = 'hunter2-pg-Sup3rS3cret';
const AWS_KEY = 'AKIA' + 'Q7RZ2M4X6T8V0B1N';
const WALLET = '48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD';
const SECRETS = [GITHUB_TOKEN, PGPASSWORD, AWS_KEY];

function assertNoSecret(text: string, where: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${where} holds the secret ${s.slice(0, 8)}…`);
}

/** The store file and its WAL as bytes (latin1: every byte one character). */
function storeBytes(db: string): string {
  return [db, `${db}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f).toString('latin1')).join('\n');
}

const rootSkip = !isRoot() ? 'needs root: the test makes an unprivileged user with setpriv' : !haveCommand('setpriv') ? 'needs setpriv (util-linux)' : undefined;
const DAEMON = { uid: 1, gid: 1 };

/** Run a command as another user (groups cleared), as the attacker would be. */
function asUser(user: { uid: number; gid: number }, cmd: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', cmd, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

describe('item 3: the state folder is private', () => {
  it('daemon cannot read alerts.db, its WAL or the token, even when the server starts under umask 000 over a 0755 state folder', { skip: rootSkip, timeout: 60_000 }, async () => {
    const dir = tmp();
    chmodSync(dir, 0o755);
    const state = join(dir, 'state');
    // What an older version left: a world-readable folder and store.
    mkdirSync(state, { mode: 0o755 });
    chmodSync(state, 0o755);
    writeFileSync(join(state, 'alerts.db'), '');
    chmodSync(join(state, 'alerts.db'), 0o644);
    const cfg = writeConfig(join(dir, 'server.yaml'), { outputs: { stdout: { enabled: false } } });
    const old = process.umask(0);
    let server: AgentRun;
    try {
      server = start(cfg, { command: 'server', stateDir: state });
    } finally {
      process.umask(old);
    }
    const url = await server.webUrl();
    const token = readFileSync(join(state, 'token'), 'utf8').trim();
    const posted = await call(url, '/', { token, body: falcoAlert({ output: `secret-bearing ${PGPASSWORD}` }) });
    assert.equal(posted.status, 200, posted.text);

    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
    assert.equal(mode(state), '700');
    for (const f of ['alerts.db', 'alerts.db-wal', 'alerts.db-shm', 'token']) assert.equal(mode(join(state, f)), '600', f);

    // The attack: another local user reads the files directly.
    for (const f of ['alerts.db', 'alerts.db-wal', 'token']) {
      const r = asUser(DAEMON, 'cat', [join(state, f)]);
      assert.notEqual(r.status, 0, `daemon read ${f}`);
      assert.match(r.stderr, /Permission denied/, f);
    }
    // Nor can it use the CLI to get at them: it cannot read the token.
    const cli = asUser(DAEMON, process.execPath, [CLI, 'alerts', 'list', '--url', url], { MINEWATCH_STATE_DIR: state });
    assert.equal(cli.status, 1, cli.stdout + cli.stderr);
    assert.match(cli.stderr, /cannot read .*token: EACCES/);
    await server.stop();
  });
});

describe('item 3: the API needs a token on loopback too', () => {
  it('without web.token the server makes <state>/token; the API, stream and inputs answer 401 without it; health, metrics and the page stay open; the CLI reads it', { timeout: 60_000 }, async () => {
    const dir = tmp();
    const state = tmp();
    const cfg = writeConfig(join(dir, 'server.yaml'), { outputs: { stdout: { enabled: false } } });
    const server = start(cfg, { command: 'server', stateDir: state });
    const url = await server.webUrl();
    assert.ok(url.startsWith('http://127.0.0.1:'), url);
    const tokenFile = join(server.stateDir, 'token');
    const token = readFileSync(tokenFile, 'utf8').trim();
    assert.ok(token.length >= 32);
    // Not on a terminal: the log names the file, never the token.
    const said = await server.waitLog((l) => l.token_file === tokenFile, 5000, 'the token file named');
    assert.ok(!JSON.stringify(server.logs).includes(token), 'the token is not logged');
    assert.ok(said);

    assert.equal((await call(url, '/', { token, body: falcoAlert({ rule: 'Launch Cryptominer' }) })).status, 200);
    for (const path of ['/api/alerts/1', '/api/alerts', '/api/stats', '/api/stream']) {
      const r = await call(url, path);
      assert.equal(r.status, 401, `${path} without the token`);
      assert.equal((await call(url, path, { token: 'x'.repeat(43) })).status, 401, `${path} with a wrong token`);
    }
    assert.equal((await call(url, '/', { body: falcoAlert() })).status, 401, 'POST / without the token');
    assert.equal((await call(url, '/falco', { body: falcoAlert() })).status, 401, 'POST /falco without the token');
    const one = await call(url, '/api/alerts/1', { token });
    assert.equal(one.status, 200);
    assert.equal(one.json.rule, 'Launch Cryptominer');
    for (const path of ['/healthz', '/metrics', '/']) assert.equal((await call(url, path)).status, 200, `${path} stays open`);

    // The CLI finds the token where the server put it.
    const env = { ...process.env, MINEWATCH_STATE_DIR: server.stateDir };
    const list = spawnSync(process.execPath, [CLI, 'alerts', 'list', '--url', url, '--json'], { encoding: 'utf8', env });
    assert.equal(list.status, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout).alerts[0].rule, 'Launch Cryptominer');
    const show = spawnSync(process.execPath, [CLI, 'alerts', 'show', '1', '--url', url], { encoding: 'utf8', env });
    assert.equal(show.status, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).id, 1);
    const dash = spawnSync(process.execPath, [CLI, 'dashboard', '--url', url], { encoding: 'utf8', env });
    assert.equal(dash.stdout.trim(), `${url}/?token=${encodeURIComponent(token)}`);
    // A wrong token file is refused, and says what to do.
    writeFileSync(join(dir, 'wrong'), 'y'.repeat(40));
    const wrong = spawnSync(process.execPath, [CLI, 'alerts', 'list', '--url', url, '--token-file', join(dir, 'wrong')], { encoding: 'utf8', env });
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /refused the token \(401\)/);

    // A restart keeps the same token (the links and scripts that use it keep working).
    await server.stop();
    const again = start(cfg, { command: 'server', stateDir: state });
    const url2 = await again.webUrl();
    assert.equal((await call(url2, '/api/alerts/1', { token })).status, 200);
    await again.stop();
  });
});

describe('item 3: the link on a terminal', () => {
  const skip = !haveCommand('script') ? 'needs script (util-linux) for a terminal' : undefined;
  it('on a terminal the server prints the dashboard link with its token once, as Jupyter does; the token opens the API', { skip, timeout: 60_000 }, async () => {
    const state = tmp();
    // `script` gives the server a pseudo-terminal as its standard output.
    const child = spawn('script', ['-q', '-e', '-c', `${process.execPath} ${CLI} server --listen 127.0.0.1:0`, '/dev/null'], { env: { ...process.env, MINEWATCH_STATE_DIR: state }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    const exited = new Promise((r) => child.on('exit', r));
    try {
      while (!/\?token=\S+/.test(out)) {
        if (child.exitCode !== null) throw new Error(`the server exited: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const link = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=(\S+)/.exec(out)!;
      const token = readFileSync(join(state, 'token'), 'utf8').trim();
      assert.equal(decodeURIComponent(link[2]!), token);
      assert.equal(out.split('?token=').length - 1, 1, 'printed once');
      assert.equal((await call(link[1]!, '/api/alerts', { token })).status, 200);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('item 3: no environment beyond what a rule matched', () => {
  const rules = `- rule: Miner With Environment
  desc: a miner whose output shows its environment
  condition: evt.type = execve and proc.name = xmrig
  output: miner started (env=%proc.env pg=%proc.env[PGPASSWORD] note=%proc.env[CI_NOTE] lang=%proc.env[LANG] wallet=%mw.wallet.address)
  priority: CRITICAL
`;
  const event = (): SyscallEvent => ({
    source: 'syscall', type: 'execve', ts: BigInt(Date.now()) * 1_000_000n,
    proc: {
      pid: 4242, name: 'xmrig', exepath: '/tmp/xmrig', args: ['-o', 'pool.example:3333'],
      env: ['PATH=/usr/bin:/bin', `GITHUB_TOKEN=${GITHUB_TOKEN}`, `PGPASSWORD=${PGPASSWORD}`, 'LANG=C.UTF-8', `CI_NOTE=pushed with ${GITHUB_TOKEN}`, `XMR_WALLET=${WALLET}`, `MINER_ARGS=--pass ${PGPASSWORD} --user ${WALLET}`],
      parent: { pid: 4000, name: 'bash', env: [`AWS_ACCESS_KEY_ID=${AWS_KEY}`, 'HOME=/home/nobody'] },
    },
  } as SyscallEvent);

  it('a local match: the store file, its WAL, the API and the outputs carry neither GITHUB_TOKEN nor PGPASSWORD, and keep the wallet', async () => {
    const engine = new RulesEngine([{ path: 'env.yaml', text: rules }], { registry: defaultRegistry(), ruleMatching: 'all', hostname: 'node-a' });
    const ev = event();
    const [m] = engine.process(ev);
    assert.ok(m, 'the rule matched');
    // The attack's premise: the rule's own rendering holds the secrets.
    assert.ok(m.output.includes(GITHUB_TOKEN) && m.output.includes(PGPASSWORD));
    const sent: unknown[] = [];
    const alerts = newAlertService([{ name: 'capture', send: async (msg) => void sent.push(msg), close: async () => undefined }]);
    const web = await startWeb({ alerts, token: 'operator-token-0123456789' });
    try {
      const rec = alerts.accept(m)!;
      alerts.flush();
      const db = alerts.store.path;
      assertNoSecret(storeBytes(db), 'alerts.db and its WAL');
      const r = await call(web.url, `/api/alerts/${rec.id}`, { token: 'operator-token-0123456789' });
      assert.equal(r.status, 200);
      assertNoSecret(r.text, 'GET /api/alerts/:id');
      const a = r.json;
      assert.equal(a.output_fields['pg'] ?? a.output_fields['proc.env[PGPASSWORD]'], '[redacted]');
      assert.equal(a.output_fields['proc.env[LANG]'], 'C.UTF-8', 'a variable the output names, not a credential, is kept');
      assert.equal(a.output_fields['proc.env[CI_NOTE]'], 'pushed with [redacted github_personal_access_token]');
      assert.equal(a.output_fields['proc.env'], `XMR_WALLET=${WALLET} MINER_ARGS=${WALLET} [rest of the value not stored] [+5 variables not stored]`);
      assert.equal(a.output_fields['mw.wallet.address'], WALLET);
      assert.ok(a.output.includes(`pg=[redacted]`) && a.output.includes(`XMR_WALLET=${WALLET}`), a.output);
      assert.deepEqual(a.event.proc.env, [`XMR_WALLET=${WALLET}`, `MINER_ARGS=${WALLET} [rest of the value not stored]`]);
      assert.equal(a.event.proc.env_not_stored, 5);
      assert.deepEqual(a.event.proc.parent.env, []);
      assert.equal(a.event.proc.parent.env_not_stored, 2);
      // The engine's event itself is untouched (responses still see the process as it was).
      assert.equal(ev.proc.env!.length, 7);
      await new Promise((res) => setTimeout(res, 300));
      assertNoSecret(toJsonText(sent), 'what the outputs were given');
      assert.ok(sent.length >= 1, 'the output got the alert');
    } finally {
      await web.close();
      await alerts.close();
    }
  });

  it('an alert received on the inputs (Falco with env=%proc.env) is redacted the same way', async () => {
    const web = await startWeb({ token: 'operator-token-0123456789' });
    try {
      const env = `PATH=/bin GITHUB_TOKEN=${GITHUB_TOKEN} PGPASSWORD=${PGPASSWORD} XMR=${WALLET}`;
      const alert = falcoAlert({ output: `Curl with proxy (env=${env} user=nobody)`, fields: { 'proc.env': env, 'proc.env[PGPASSWORD]': PGPASSWORD } });
      const r = await call(web.url, '/', { token: 'operator-token-0123456789', body: alert });
      assert.equal(r.status, 200);
      const got = await call(web.url, `/api/alerts/${r.json.ids[0]}`, { token: 'operator-token-0123456789' });
      assertNoSecret(got.text, 'the stored input alert');
      assert.equal(got.json.output_fields['proc.env'], `XMR=${WALLET} [+3 variables not stored]`);
      assert.equal(got.json.output, `Curl with proxy (env=XMR=${WALLET} [+3 variables not stored] user=nobody)`);
    } finally {
      await web.close();
    }
  });

  it('redaction is stable: redacting twice gives the same text, and known secrets are named, never kept', () => {
    const once = redactEnvText(`A=1 B=${GITHUB_TOKEN} W=${WALLET}`);
    assert.equal(once, `W=${WALLET} [+2 variables not stored]`);
    assert.equal(redactEnvText(once), once);
    assert.equal(redactEnvText('A=1 B=2'), '[environment not stored: 2 variables]');
    assert.equal(redactEnvText(redactEnvText('A=1 B=2')), '[environment not stored: 2 variables]');
    assert.equal(scrubSecrets(`key ${AWS_KEY} and ${GITHUB_TOKEN}`), 'key [redacted aws_access_key] and [redacted github_personal_access_token]');
    // A short value is replaced as a whole word only, not inside other words.
    const r = redactOutput('pass=ab user=abba', { 'proc.env[DB_PASSWORD]': 'ab' });
    assert.equal(r.output, 'pass=[redacted] user=abba');
  });

  it('live: a process of nobody with GITHUB_TOKEN and PGPASSWORD in its environment; the agent\'s alert, store and API keep neither', { skip: rootSkip ?? (!haveCommand('cc') ? 'needs a C compiler (cc) for the miner stand-in' : undefined), timeout: 90_000 }, async () => {
    const dir = tmp();
    chmodSync(dir, 0o755);
    const miner = join(dir, 'xmrig');
    compileC(join(FIXTURES, 'agent', 'fake-miner.c'), join(dir, 'fake-miner'));
    copyFileSync(join(dir, 'fake-miner'), miner);
    chmodSync(miner, 0o755);
    writeFileSync(join(dir, 'env.yaml'), rules.replace('proc.name = xmrig', `proc.name = xmrig and proc.exepath = ${miner}`));
    const cfg = writeConfig(join(dir, 'agent.yaml'), {
      rules_files: [join(dir, 'env.yaml')],
      outputs: { stdout: { enabled: true, format: 'json' } },
      sources: { cpu: { enabled: false } },
    });
    const agent = start(cfg, {});
    await agent.started(30_000);
    const url = await agent.webUrl();
    const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', miner, '--hold-ms', '1500'], {
      stdio: 'ignore',
      env: { PATH: '/usr/bin:/bin', GITHUB_TOKEN, PGPASSWORD, XMR_WALLET: WALLET },
    });
    child.on('error', () => undefined);
    const alert = await agent.waitAlert((a) => a.rule === 'Miner With Environment', 30_000, 'the miner with its environment');
    assertNoSecret(JSON.stringify(alert), "the agent's alert on stdout");
    assert.equal(alert.output_fields['proc.env[PGPASSWORD]'], '[redacted]');
    assert.match(String(alert.output_fields['proc.env']), new RegExp(`^XMR_WALLET=${WALLET} \\[\\+\\d+ variables? not stored\\]$`));
    const token = readFileSync(join(agent.stateDir, 'token'), 'utf8').trim();
    const list = await call(url, '/api/alerts?rule=Miner+With+Environment', { token });
    const id = list.json.alerts[0].id;
    assert.equal((await call(url, `/api/alerts/${id}`)).status, 401, 'no token, no alert');
    const one = await call(url, `/api/alerts/${id}`, { token });
    assertNoSecret(one.text, 'GET /api/alerts/:id');
    assertNoSecret(storeBytes(join(agent.stateDir, 'alerts.db')), 'alerts.db and its WAL');
    // As daemon, the store is not even readable.
    assert.notEqual(asUser(DAEMON, 'cat', [join(agent.stateDir, 'alerts.db')]).status, 0);
    await agent.stop();
  });
});

describe('item 5: the agent takes no input unless web.inputs.enabled', () => {
  it('POST /falco, /k8s-audit and /github are not mounted by default, even with the token and the webhooks configured; with web.inputs.enabled they are, behind the token', { timeout: 90_000 }, async () => {
    const dir = tmp();
    const base = { sources: { driver: 'procfs', cpu: { enabled: false }, connections: { enabled: false } }, outputs: { stdout: { enabled: false } }, k8s: { audit: { enabled: true, token: 'audit-token-0123456789' } }, github: { enabled: true, secret: 'github-secret-0123456789' } };
    const closed = start(writeConfig(join(dir, 'closed.yaml'), base), {});
    const url = await closed.webUrl();
    const token = readFileSync(join(closed.stateDir, 'token'), 'utf8').trim();
    for (const path of ['/', '/falco', '/k8s-audit', '/github']) {
      assert.equal((await call(url, path, { token, body: falcoAlert() })).status, 404, `${path} on an agent without inputs`);
    }
    await closed.waitLog((l) => /web\.inputs\.enabled is false/.test(l.msg), 5000, 'the log says which inputs are off and why');
    assert.equal((await call(url, '/api/alerts', { token })).status, 200, 'the API is there');
    await closed.stop();

    const open = start(writeConfig(join(dir, 'open.yaml'), { ...base, web: { inputs: { enabled: true } } }), {});
    const url2 = await open.webUrl();
    const token2 = readFileSync(join(open.stateDir, 'token'), 'utf8').trim();
    assert.equal((await call(url2, '/falco', { body: falcoAlert() })).status, 401, 'no token');
    assert.equal((await call(url2, '/falco', { token: token2, body: falcoAlert() })).status, 200);
    assert.equal((await call(url2, '/k8s-audit', { body: {} })).status, 401, '/k8s-audit is mounted, with its token');
    await open.stop();
  });
});
