/**
 * The CI miner check on a fixture set of real-looking pipelines (test/fixtures/github/): every
 * miner found, no clean file flagged, each finding on the right line; compared with Falco's
 * github plugin's substring check on the same set. And `minewatch github scan` on a checkout.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { singleFileKind } from '../src/github/ci-files.js';
import { scanCiText } from '../src/github/miners.js';
import { CLI, FIXTURES } from './helpers/paths.js';
import { pluginSubstringCheck } from './helpers/plugin-miner-check.js';

const run = promisify(execFile);
const DIR = FIXTURES + 'github/';
const miners = readdirSync(DIR + 'miner').sort();
const cleans = readdirSync(DIR + 'clean').sort();

function scanFixture(kind: 'miner' | 'clean', name: string) {
  return scanCiText(readFileSync(`${DIR}${kind}/${name}`, 'utf8'), name, singleFileKind(name));
}

/** A finding each miner fixture must have: [type, line]. */
const EXPECTED: Record<string, Array<[string, number]>> = {
  '01-curl-pipe-setup-script.yml': [['wallet', 14], ['xmrig', 14]],
  '02-base64-payload.yml': [['xmrig', 17], ['pool', 17], ['wallet', 17]],
  '03-container-image.yml': [['xmrig', 10]],
  '04-local-action-inputs.yml': [['miner_flags', 11], ['wallet', 11]],
  '05-composite-action.action.yml': [['stratum', 9], ['cpuminer', 9], ['cpuminer-opt', 14]],
  '06-gitlab-trex.gitlab-ci.yml': [['t-rex', 11], ['stratum', 13], ['t-rex', 13]],
  '07-jenkins-pipe.Jenkinsfile': [['pool', 11], ['miner_flags', 11]],
  '08-circleci-docker-run.circleci.yml': [['xmrig', 12], ['pool', 12]],
  '09-azure-renamed-binary.azure-pipelines.yml': [['miner_flags', 9], ['pool', 9]],
  '10-env-pool-host.yml': [['pool', 4], ['miner_flags', 14]],
  '11-python-b64decode.yml': [['xmrig', 15], ['miner_flags', 15]],
  '12-docker-action-lolminer.yml': [['lolminer', 8], ['pool', 10], ['wallet', 10]],
  '13-gitlab-apk-xmrig.gitlab-ci.yml': [['xmrig', 10], ['pool', 10], ['wallet', 10]],
  '14-service-image.yml': [['miner_image', 8]],
};

test('the fixture set: at least 20 pipelines of six CI kinds, miners and clean ones', () => {
  assert.ok(miners.length + cleans.length >= 20);
  assert.deepEqual(Object.keys(EXPECTED).sort(), miners);
  for (const set of [miners, cleans]) {
    assert.ok(set.some((f) => f.endsWith('Jenkinsfile')) && set.some((f) => f.includes('gitlab-ci')) && set.some((f) => f.includes('circleci'))
      && set.some((f) => f.includes('azure-pipelines')) && set.some((f) => f.endsWith('action.yml')));
  }
});

test('every miner is found, on its line', () => {
  for (const name of miners) {
    const r = scanFixture('miner', name);
    assert.equal(r.parseError, undefined, name);
    const got = r.findings.map((f) => `${f.type}@${f.line}`);
    for (const [type, line] of EXPECTED[name]!) assert.ok(got.includes(`${type}@${line}`), `${name}: expected ${type} on line ${line}, got ${got.join(', ')}`);
  }
});

test('no clean pipeline is flagged: pools, wallets, hashrates, comments and Ethereum addresses in a dapp are not miners', () => {
  for (const name of cleans) {
    const r = scanFixture('clean', name);
    assert.equal(r.parseError, undefined, name);
    assert.deepEqual(r.findings, [], `${name}: ${r.findings.map((f) => `${f.line}: ${f.type}: ${f.detail}`).join('; ')}`);
  }
});

test('compared with the plugin\'s substring check on the same set', () => {
  const score = (flag: (kind: 'miner' | 'clean', name: string) => boolean) => {
    const tp = miners.filter((n) => flag('miner', n)).length;
    const fp = cleans.filter((n) => flag('clean', n)).length;
    return { tp, fn: miners.length - tp, fp, tn: cleans.length - fp, precision: tp / Math.max(1, tp + fp), recall: tp / miners.length };
  };
  const ours = score((k, n) => scanFixture(k, n).findings.length > 0);
  const plugin = score((k, n) => pluginSubstringCheck(readFileSync(`${DIR}${k}/${n}`, 'utf8')).length > 0);
  const fmt = (name: string, s: typeof ours) =>
    `${name}: ${s.tp}/${miners.length} miners found, ${s.fp}/${cleans.length} clean files flagged (precision ${s.precision.toFixed(2)}, recall ${s.recall.toFixed(2)})`;
  console.log(`# ${fmt('minewatch parsed check   ', ours)}`);
  console.log(`# ${fmt('plugin substring check   ', plugin)}`);
  const missed = miners.filter((n) => pluginSubstringCheck(readFileSync(`${DIR}miner/${n}`, 'utf8')).length === 0);
  console.log(`# the substring check misses: ${missed.join(', ') || 'none'}`);
  assert.equal(ours.recall, 1);
  assert.equal(ours.fp, 0);
  // The comparison must measure something: the substring check flags most clean files.
  assert.ok(plugin.fp > cleans.length / 2, `plugin flagged ${plugin.fp}`);
});

test('false-positive traps, one by one', () => {
  const quiet = (yaml: string) => assert.deepEqual(scanCiText(yaml, 'x.yml').findings, [], yaml);
  quiet('env:\n  poolSize: 10\n  POOL: "10"\njobs: {}\n');
  quiet('pool:\n  name: MinerPool\n  vmImage: ubuntu-latest\n');
  quiet('steps:\n  # - run: ./xmrig -o stratum+tcp://pool.supportxmr.com:3333\n  - run: make\n');
  quiet('steps:\n  - name: Run xmrig detector tests\n    run: pytest -k xmrig\n');
  quiet('steps:\n  - run: echo "deploying from 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"\n');
  quiet('steps:\n  - run: docker run --rm ghcr.io/acme/wallet-service:1.2 --threads 4\n');
  quiet('steps:\n  - run: gcc -O2 -o out main.c -u sym\n');
  // …while the same address given to a miner's -u is a finding.
  const r = scanCiText('steps:\n  - run: ./m -o 198.51.100.1:3333 -u 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n', 'x.yml');
  assert.ok(r.findings.some((f) => f.type === 'wallet'), JSON.stringify(r.findings));
});

test('hidden runs: hex, escaped hex, bash -c, eval, wrappers', () => {
  const cmd = './xmrig -o stratum+tcp://198.51.100.3:3333 -u x';
  const hex = Buffer.from(cmd).toString('hex');
  const escaped = [...Buffer.from(cmd)].map((b) => '\\x' + b.toString(16).padStart(2, '0')).join('');
  const found = (run: string) => scanCiText(`steps:\n  - run: |\n      make\n      ${run}\n`, 'x.yml').findings.map((f) => `${f.type}@${f.line}`);
  for (const run of [`echo ${hex} | xxd -r -p | sh`, `printf "${escaped}" | sh`, `bash -c "${cmd}"`, `eval '${cmd}'`, `sudo -E nohup timeout 3600 ${cmd} &`]) {
    const got = found(run);
    assert.ok(got.includes('xmrig@4'), `${run}: ${got.join(', ')}`);
  }
  assert.deepEqual(found('git checkout 3f786850e387550fdab836ed7e6dc881de23001b'), [], 'a git sha is hex, but not text');
  // An image with no slash, after options that take values, is still the image.
  const bare = scanCiText('steps:\n  - run: docker run -d --name svc -e A=1 --cpus 2 xmrig:latest\n', 'x.yml').findings;
  assert.ok(bare.some((f) => f.type === 'xmrig' && f.detail.startsWith('container image')), JSON.stringify(bare));
});

test('a file that is not YAML is still read, line by line, and says so', () => {
  const r = scanCiText('jobs:\n  a: [unclosed\n  run: ./xmrig -o stratum+tcp://198.51.100.2:3333\n', 'broken.yml');
  assert.match(r.parseError!, /line \d+/);
  assert.ok(r.findings.some((f) => f.type === 'stratum' && f.line === 3));
});

test('minewatch github scan: a checkout with miners exits 1 with file:line; a clean one exits 0', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mw-gh-scan-'));
  try {
    const bad = join(root, 'bad');
    const place = (from: string, to: string) => {
      mkdirSync(join(bad, to, '..'), { recursive: true });
      cpSync(from, join(bad, to));
    };
    place(`${DIR}miner/02-base64-payload.yml`, '.github/workflows/codeql.yml');
    place(`${DIR}miner/05-composite-action.action.yml`, '.github/actions/toolchain/action.yml');
    place(`${DIR}miner/06-gitlab-trex.gitlab-ci.yml`, '.gitlab-ci.yml');
    place(`${DIR}miner/07-jenkins-pipe.Jenkinsfile`, 'Jenkinsfile');
    place(`${DIR}miner/08-circleci-docker-run.circleci.yml`, '.circleci/config.yml');
    place(`${DIR}miner/09-azure-renamed-binary.azure-pipelines.yml`, 'azure-pipelines.yml');
    place(`${DIR}clean/01-node-db-pool.yml`, '.github/workflows/ci.yml');
    // Not CI definitions: never scanned.
    mkdirSync(join(bad, 'node_modules/pkg/.github/workflows'), { recursive: true });
    writeFileSync(join(bad, 'node_modules/pkg/.github/workflows/x.yml'), 'steps:\n  - run: ./xmrig\n');
    writeFileSync(join(bad, 'notes.yml'), 'run: ./xmrig\n');

    const text = await run('node', [CLI, 'github', 'scan', bad]).then(() => assert.fail('expected exit 1'), (e: { code: number; stdout: string; stderr: string }) => e);
    assert.equal(text.code, 1);
    for (const want of ['.github/workflows/codeql.yml:17: xmrig:', '.github/actions/toolchain/action.yml:9: stratum:', '.gitlab-ci.yml:13: stratum:',
      'Jenkinsfile:11: miner_flags:', '.circleci/config.yml:12: xmrig:', 'azure-pipelines.yml:9: pool:']) {
      assert.ok(text.stdout.split('\n').some((l) => l.startsWith(want)), `${want}\n${text.stdout}`);
    }
    assert.ok(!text.stdout.includes('.github/workflows/ci.yml:') && !text.stdout.includes('notes.yml') && !text.stdout.includes('node_modules'));
    assert.match(text.stderr, /scanned 7 CI file\(s\)/);

    const json = await run('node', [CLI, 'github', 'scan', '--json', bad]).catch((e: { code: number; stdout: string }) => e);
    const doc = JSON.parse((json as { stdout: string }).stdout) as { files_scanned: string[]; findings: Array<{ file: string; line: number; type: string }> };
    assert.equal(doc.files_scanned.length, 7);
    assert.ok(doc.findings.some((f) => f.file === 'Jenkinsfile' && f.line === 11));

    const good = join(root, 'good');
    mkdirSync(join(good, '.github/workflows'), { recursive: true });
    for (const f of cleans.filter((n) => n.endsWith('.yml') && !n.includes('.'.repeat(2)))) {
      if (/^\d+-[\w-]+\.yml$/.test(f)) cpSync(`${DIR}clean/${f}`, join(good, '.github/workflows', f));
    }
    cpSync(`${DIR}clean/07-gradle-pool.Jenkinsfile`, join(good, 'Jenkinsfile'));
    cpSync(`${DIR}clean/06-gke-node-pool.gitlab-ci.yml`, join(good, '.gitlab-ci.yml'));
    const ok = await run('node', [CLI, 'github', 'scan', good]);
    assert.equal(ok.stdout, '');
    assert.match(ok.stderr, /no miners found/);

    const missing = await run('node', [CLI, 'github', 'scan', join(root, 'nope')]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((missing as { code: number }).code, 2);
    assert.match((missing as { stderr: string }).stderr, /cannot read .*nope \(ENOENT\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
