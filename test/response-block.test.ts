/**
 * `block_destination` for real, inside network namespaces the test makes (nftables tables are per
 * network namespace, so the host's firewall is never touched): a listener at 198.51.100.7 (and
 * 2001:db8:51::7) in one namespace, the client in another, joined by a veth pair. The first
 * connection succeeds; after the block the second fails; after `unblock` (the API and the CLI) it
 * works again. Plus the nft set listing, TTLs, and what is never blocked.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { BlockDestinationAction, normalizeAddress, parseNftSetJson } from '../src/response/block-destination.js';
import { BlockProtect, outputDestinations, parseProcNetIpv6Route, parseProcNetRoute, parseProtectCidrs } from '../src/response/block-protect.js';
import { responseSection } from '../src/response/config.js';
import { ResponseDispatcher } from '../src/response/dispatcher.js';
import { DEFAULT_RULES_FILES, Engine } from '../src/engine/index.js';
import type { Match } from '../src/engine/types.js';
import type { SyscallEvent } from '../src/events.js';
import { AllowList, Safety } from '../src/response/safety.js';
import type { ActionRequest, Target } from '../src/response/types.js';
import { haveCommand, isRoot, killAll, run, tryRun } from './helpers/live.js';
import { makeNetnsPair, type NetnsPair, probeConnect, removeNetnsPair, startListener } from './helpers/netns.js';

// ---- unit ------------------------------------------------------------------------------------------

describe('block_destination: addresses and nft output', () => {
  test('addresses in nft\'s canonical form', () => {
    assert.deepEqual(normalizeAddress('198.51.100.7'), { ip: '198.51.100.7', v6: false });
    assert.deepEqual(normalizeAddress('::ffff:198.51.100.7'), { ip: '198.51.100.7', v6: false });
    assert.deepEqual(normalizeAddress('2001:DB8:0:0:0:0:0:7'), { ip: '2001:db8::7', v6: true });
    assert.deepEqual(normalizeAddress('2001:db8:0:1:0:0:0:0'), { ip: '2001:db8:0:1::', v6: true });
    assert.equal(normalizeAddress('pool.example.com'), undefined);
    assert.equal(normalizeAddress('198.51.100.7; flush ruleset'), undefined);
  });

  test('the set listing (nft -j)', () => {
    const text = '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "blocked4", "table": "minewatch", "type": "ipv4_addr", "flags": ["timeout"], "elem": [{"elem": {"val": "198.51.100.7", "timeout": 3600, "expires": 3598}}, "203.0.113.9"]}}]}';
    assert.deepEqual(parseNftSetJson(text, 'ipv4'), [
      { ip: '198.51.100.7', family: 'ipv4', timeoutS: 3600, expiresS: 3598 },
      { ip: '203.0.113.9', family: 'ipv4' },
    ]);
    assert.deepEqual(parseNftSetJson('{"nftables": [{"set": {"name": "blocked6"}}]}', 'ipv6'), []);
  });

  test('never blocked: loopback, unspecified, link-local, multicast, and what the user protects; dry runs', async () => {
    const a = new BlockDestinationAction({ protectList: new BlockProtect({ cidrs: ['203.0.113.53/32'] }), nft: ['/nonexistent/nft'] });
    const r = (ip: string, mode: 'dryrun' | 'enforce' = 'enforce') => a.run({ action: 'block_destination', target: { pid: 0x3ffffff0, remote: { ip } }, trigger: 'test', mode });
    for (const ip of ['127.0.0.1', '0.0.0.0', '169.254.169.254', '224.0.0.251', '::1', 'fe80::1', '203.0.113.53']) {
      const x = await r(ip);
      assert.equal(x.outcome, 'spared', ip);
      assert.match(x.reason!, /never blocked/);
    }
    assert.equal((await r('not-an-ip')).outcome, 'failed');
    const none = await a.run({ action: 'block_destination', target: { pid: 5 }, trigger: 'test', mode: 'enforce' });
    assert.equal(none.outcome, 'failed');
    const d = await r('198.51.100.7', 'dryrun');
    assert.equal(d.outcome, 'dryrun');
    assert.match(d.reason!, /would add 198\.51\.100\.7 to nftables set inet minewatch blocked4 for 3600 s/);
    // An allow-listed process's destination is not blocked.
    const allowed = new BlockDestinationAction({ safety: new Safety({ allow: new AllowList({ images: ['registry.example.com/trusted/*'] }) }), nft: ['/nonexistent/nft'] });
    const s = await allowed.run({ action: 'block_destination', target: { pid: 0x3ffffff0, container: { id: 'abcdefabcdef', image: 'registry.example.com/trusted/app:1' }, remote: { ip: '198.51.100.7' } }, trigger: 'test', mode: 'enforce' });
    assert.equal(s.outcome, 'spared');
    // Without nft: a clear failure, not a crash.
    const f = await r('198.51.100.7');
    assert.equal(f.outcome, 'failed');
    assert.match(f.reason!, /command not found \(install nftables\)/);
  });
});

describe('block_destination: what is never blocked, computed (resolvers, gateways, addresses, API, outputs, block_protect)', () => {
  test('default gateways from /proc/net/route and ipv6_route', () => {
    const route = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' +
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
      'wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n';
    assert.deepEqual(parseProcNetRoute(route), ['192.0.2.1'], 'a default route with a gateway; a device route has none');
    const v6 = 'fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n' +
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n' +
      '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n';
    assert.deepEqual(parseProcNetIpv6Route(v6), ['fd00::1']);
  });

  test('the outputs that send somewhere, by name; block_protect entries checked, naming the one at fault', () => {
    assert.deepEqual(outputDestinations({
      stdout: { enabled: true }, webhook: { enabled: true, url: 'https://hooks.example.com/x' }, slack: { enabled: true, webhook_url: 'https://hooks.slack.com/services/T/B/secret', icon_url: 'https://img.example.com/i.png' },
      nats: { enabled: false, url: 'nats://10.0.0.1:4222' },
    }), [{ output: 'webhook', url: 'https://hooks.example.com/x' }, { output: 'slack', url: 'https://hooks.slack.com/services/T/B/secret' }]);
    assert.deepEqual(parseProtectCidrs(['10.96.0.0/12', '192.0.2.10', '2001:db8::/32']).map((p) => p.cidr), ['10.96.0.0/12', '192.0.2.10', '2001:db8::/32']);
    assert.throws(() => parseProtectCidrs(['10.0.0.0/8', 'kube-apiserver']), /response\.block_protect\[1\]: "kube-apiserver" is not a CIDR or an IP address/);
    const bad = responseSection.safeParse({ block_protect: ['10.0.0.0/33'] });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error!.issues.map((i) => [i.path.join('.'), i.message]), [['block_protect.0', '"10.0.0.0/33" is not a CIDR or an IP address (e.g. 10.96.0.0/12, 2001:db8::/32, 192.0.2.10)']]);
    assert.deepEqual(responseSection.parse({ block_protect: ['203.0.113.0/24'] }).block_protect, ['203.0.113.0/24']);
  });

  test('each protected address is spared with its reason; anything else may be blocked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-protect-'));
    try {
      writeFileSync(join(dir, 'resolv.conf'), 'nameserver 198.51.100.53\n');
      writeFileSync(join(dir, 'route'), 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nveth0\t00000000\t016433C6\t0003\t0\t0\t0\t00000000\n');
      writeFileSync(join(dir, 'ipv6_route'), '');
      const failures: string[] = [];
      const protect = new BlockProtect({
        resolvFiles: [join(dir, 'resolv.conf')], procNet: dir,
        cidrs: ['203.0.113.0/24'],
        outputs: [{ output: 'falcosidekick', url: 'http://alerts.example:2801' }, { output: 'slack', url: 'https://198.51.100.78/services/T/B/secret' }],
        env: { KUBERNETES_SERVICE_HOST: '198.51.100.88' },
        kubeApiServer: () => 'https://[2001:db8::6443]:6443',
        kubeEndpoints: async () => ['198.51.100.90'],
        resolveName: async (h) => (h === 'alerts.example' ? ['198.51.100.77'] : []),
        onError: (what) => failures.push(what),
      });
      const act = new BlockDestinationAction({ protectList: protect, nft: ['/nonexistent/nft'] });
      const run = (ip: string) => act.run({ action: 'block_destination', target: { pid: 0x3ffffff0, remote: { ip } }, trigger: 'test', mode: 'enforce' });
      const cases: Array<[string, RegExp]> = [
        ['198.51.100.53', /198\.51\.100\.53 is a DNS resolver \(.*resolv\.conf\): never blocked/],
        ['198.51.100.1', /a default gateway/],
        ['198.51.100.88', /the Kubernetes API \(KUBERNETES_SERVICE_HOST\)/],
        ['2001:db8::6443', /the Kubernetes API \(the kubeconfig's server\)/],
        ['198.51.100.90', /the Kubernetes API \(the kubernetes endpoints\)/],
        ['198.51.100.77', /where the falcosidekick output sends alerts \(alerts\.example\)/],
        ['198.51.100.78', /where the slack output sends alerts: never blocked$/],
        ['203.0.113.200', /in response\.block_protect/],
      ];
      for (const [ip, why] of cases) {
        const r = await run(ip);
        assert.equal(r.outcome, 'spared', ip);
        assert.match(r.reason!, why, ip);
        assert.doesNotMatch(r.reason!, /secret/, 'a URL\'s path is never shown');
      }
      for (const ip of Object.values(networkInterfaces()).flatMap((l) => l ?? []).map((a) => a.address).filter((a) => !a.startsWith('127.') && a !== '::1' && !a.startsWith('fe80'))) {
        assert.match((await run(ip)).reason!, /an address of this node/, ip);
      }
      // Not protected: the block is tried (and fails here only for want of nft).
      const other = await run('198.51.100.200');
      assert.equal(other.outcome, 'failed');
      assert.match(other.reason!, /command not found/);
      await assert.rejects(act.block('198.51.100.53'), /not blocked: 198\.51\.100\.53 is a DNS resolver \(.*\): never blocked/);
      assert.deepEqual(failures, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a source that cannot be read is reported and protects nothing; the rest still holds', async () => {
    const failures: string[] = [];
    const protect = new BlockProtect({ resolvFiles: ['/nonexistent'], procNet: '/nonexistent', cidrs: ['203.0.113.0/24'], kubeEndpoints: async () => { throw new Error('403 forbidden'); }, onError: (what, err) => failures.push(`${what}: ${err}`) });
    assert.match((await protect.refusal('203.0.113.9'))!, /block_protect/);
    assert.equal(await protect.refusal('198.51.100.200'), undefined);
    assert.deepEqual(failures, ['the kubernetes endpoints: 403 forbidden']);
  });
});

// ---- live, in network namespaces --------------------------------------------------------------------

const skip = !isRoot()
  ? 'SKIPPED: block_destination tests need root (ip netns, nft)'
  : !haveCommand('ip')
    ? 'SKIPPED: block_destination tests need iproute2 (`apt-get install iproute2`)'
    : !haveCommand('nft')
      ? 'SKIPPED: block_destination tests need nft (`apt-get install nftables`)'
      : false;

/** Try one TCP connection from inside a namespace; resolves 'ok', 'ETIMEDOUT' or the error code. */
async function connectFrom(ns: string, host: string, port: number, timeoutMs = 1000): Promise<string> {
  const r = await probeConnect(ns, host, port, timeoutMs);
  return r.ok ? 'ok' : r.err === 'timeout' ? 'ETIMEDOUT' : (r.err ?? 'failed');
}

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('block_destination: nftables in a network namespace (root, iproute2, nftables)', { skip }, () => {
  let srv = '';
  let cln = '';
  let net: NetnsPair | undefined;
  const children: ChildProcess[] = [];
  let port = 0;
  let port6 = 0;

  before(async () => {
    // Server in b (198.51.100.7, 2001:db8:51::7), client in a: nothing of this reaches the host's interfaces.
    net = makeNetnsPair('blk', '198.51.100.2', ['198.51.100.7'], 24, { a: '2001:db8:51::2', b: '2001:db8:51::7' });
    ({ a: cln, b: srv } = net);
    const lsn = startListener(srv, [{ port: 0, addr: '198.51.100.7' }, { port: 0, addr: '2001:db8:51::7' }]);
    children.push(lsn.child);
    [port, port6] = (await lsn.ready) as [number, number];
  });

  after(() => {
    killAll(children);
    if (net) removeNetnsPair(net);
  });

  const req = (ip: string, target: Partial<Target> = {}, mode: 'dryrun' | 'enforce' = 'enforce'): ActionRequest => ({
    action: 'block_destination',
    // The process that connected has usually gone by now: a pid that does not exist.
    target: { pid: 0x3ffffff0, remote: { ip, port }, ...target },
    trigger: 'test',
    mode,
  });

  test('connect works; block; connect fails; unblock; connect works again', async () => {
    const act = new BlockDestinationAction({ netns: cln, safety: new Safety({ isSelf: (p) => p === process.pid }) });
    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ok', 'first connection');
    assert.deepEqual(await act.list(), [], 'no table yet: nothing blocked');

    const d = await act.run(req('198.51.100.7', {}, 'dryrun'));
    assert.equal(d.outcome, 'dryrun');
    assert.deepEqual(await act.list(), [], 'a dry run blocks nothing');

    const r = await act.run(req('198.51.100.7'));
    assert.equal(r.outcome, 'done', r.reason);
    assert.match(r.reason!, /added 198\.51\.100\.7 to nftables set inet minewatch blocked4 for 3600 s/);
    const listed = await act.list();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.ip, '198.51.100.7');
    assert.equal(listed[0]!.timeoutS, 3600);
    assert.ok(listed[0]!.expiresS! > 3500 && listed[0]!.expiresS! <= 3600);

    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ETIMEDOUT', 'second connection dropped');

    // Blocking again restarts the TTL (and does not duplicate anything).
    await act.block('198.51.100.7', 120);
    const again = await act.list();
    assert.equal(again.length, 1);
    assert.equal(again[0]!.timeoutS, 120);

    assert.equal(await act.unblock('198.51.100.7'), true);
    assert.equal(await act.unblock('198.51.100.7'), false, 'not blocked any more');
    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ok', 'works again after unblock');
  });

  test('IPv6: blocked6', async () => {
    const act = new BlockDestinationAction({ netns: cln, ttlSeconds: 600 });
    assert.equal(await connectFrom(cln, '2001:db8:51::7', port6), 'ok');
    const r = await act.run(req('2001:DB8:51:0::7', { remote: { ip: '2001:DB8:51:0::7', port: port6 } }));
    assert.equal(r.outcome, 'done', r.reason);
    assert.match(r.reason!, /2001:db8:51::7 to nftables set inet minewatch blocked6 for 600 s/);
    assert.equal(await connectFrom(cln, '2001:db8:51::7', port6), 'ETIMEDOUT');
    assert.deepEqual((await act.list()).map((e) => [e.ip, e.family]), [['2001:db8:51::7', 'ipv6']]);
    assert.equal(await act.unblock('2001:db8:51::7'), true);
    assert.equal(await connectFrom(cln, '2001:db8:51::7', port6), 'ok');
  });

  test('the table is made again when it vanished (a ruleset flush), and repaired when its rules are gone', async () => {
    const act = new BlockDestinationAction({ netns: cln });
    await act.block('198.51.100.7');
    run('ip', ['netns', 'exec', cln, 'nft', 'delete', 'table', 'inet', 'minewatch']);
    await act.block('198.51.100.7');
    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ETIMEDOUT');
    // Someone flushed our output chain: ensure() puts the rules back, keeping the set.
    run('ip', ['netns', 'exec', cln, 'nft', 'flush', 'chain', 'inet', 'minewatch', 'output']);
    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ok');
    await new BlockDestinationAction({ netns: cln }).ensure();
    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ETIMEDOUT');
    const rules = run('ip', ['netns', 'exec', cln, 'nft', 'list', 'chain', 'inet', 'minewatch', 'output']);
    assert.equal(rules.split('\n').filter((l) => l.includes('@blocked4')).length, 1, 'one rule, not duplicated');
    assert.equal(await act.unblock('198.51.100.7'), true);
  });

  test('a stratum login sent to the namespace\'s resolver does not get the resolver blocked; nor its gateway or own address', async () => {
    // The client namespace's resolv.conf (what `ip netns exec` gives it) names the listener as its
    // resolver, and its default route goes through 198.51.100.9.
    const etc = `/etc/netns/${cln}`;
    mkdirSync(etc, { recursive: true });
    try {
      writeFileSync(`${etc}/resolv.conf`, 'nameserver 198.51.100.7\n');
      run('ip', ['-n', cln, 'route', 'add', 'default', 'via', '198.51.100.9']);
      const act = new BlockDestinationAction({ netns: cln });
      const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
      const login = JSON.stringify({ id: 1, method: 'login', params: { login: '47G3GoGjMfaPvUEh9DmeZ8WmxrAsZ5uxc2jCSi4dHJTUMbz2VBYaXVkTQVwbRBLv9QZPfqsnEVfSaWzDDuiitAwSGsamcTK', agent: 'XMRig/6.21.0' } }) + '\n';
      const write: SyscallEvent = {
        source: 'syscall', type: 'sendto', ts: BigInt(Date.now()) * 1_000_000n, res: login.length, buffer: login,
        args: { res: login.length, fd: 3, size: login.length, data: login },
        proc: { pid: 0x3ffffff0, name: 'xmrig', args: [], start_ts: 1n },
        fd: { num: 3, type: 'ipv4', l4proto: 'tcp', cip: '198.51.100.2', cport: 40000, sip: '198.51.100.7', sport: port, connected: true },
      };
      const matches = engine.process(write);
      assert.deepEqual(matches.map((m) => m.rule), ['Stratum Mining Protocol on the Wire']);
      const outcomes: Match[] = [];
      const cfg = responseSection.parse({ mode: 'enforce', actions: [{ rules: ['Stratum Mining Protocol on the Wire'], do: ['block_destination'] }] });
      const d = new ResponseDispatcher(cfg, { block_destination: act }, (m) => outcomes.push(m), 'test');
      d.onMatch(matches[0]!);
      const deadline = Date.now() + 10_000;
      while (outcomes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(outcomes.length, 1);
      assert.equal(outcomes[0]!.outputFields['mw.response.outcome'], 'spared');
      assert.match(String(outcomes[0]!.outputFields['mw.response.reason']), new RegExp(`198\\.51\\.100\\.7 is a DNS resolver \\(/etc/netns/${cln}/resolv\\.conf\\): never blocked`));
      assert.match(outcomes[0]!.output, /block_destination of pid \d+ spared \(198\.51\.100\.7 is a DNS resolver/);
      assert.deepEqual(await act.list(), [], 'nothing blocked');
      assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ok', 'the resolver is still reachable');
      // The gateway and the namespace's own address are spared the same way.
      const gw = await act.run(req('198.51.100.9'));
      assert.equal(gw.outcome, 'spared');
      assert.match(gw.reason!, /198\.51\.100\.9 is a default gateway: never blocked/);
      const own = await act.run(req('198.51.100.2'));
      assert.equal(own.outcome, 'spared');
      assert.match(own.reason!, /an address of this node/);
    } finally {
      rmSync(etc, { recursive: true, force: true });
      tryRun('ip', ['-n', cln, 'route', 'del', 'default']);
    }
  });

  test('CLI: minewatch response block / blocked / unblock', async () => {
    const b = await cli(['response', 'block', '198.51.100.7', '--ttl', '300', '--netns', cln]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /blocked 198\.51\.100\.7 for 300 s/);
    const text = await cli(['response', 'blocked', '--netns', cln]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /198\.51\.100\.7\s+5m00s\s+[45]m\d\ds/);
    const json = await cli(['response', 'blocked', '--json', '--netns', cln]);
    const list = JSON.parse(json.stdout) as Array<{ ip: string; family: string; ttl_s: number; expires_in_s: number }>;
    assert.deepEqual(list.map((e) => [e.ip, e.family, e.ttl_s]), [['198.51.100.7', 'ipv4', 300]]);
    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ETIMEDOUT');
    const u = await cli(['response', 'unblock', '198.51.100.7', '--netns', cln]);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stdout, /unblocked 198\.51\.100\.7/);
    const u2 = await cli(['response', 'unblock', '198.51.100.7', '--netns', cln]);
    assert.equal(u2.code, 1);
    assert.match(u2.stderr, /is not blocked/);
    assert.equal(await connectFrom(cln, '198.51.100.7', port), 'ok');
    const empty = await cli(['response', 'blocked', '--netns', cln]);
    assert.match(empty.stdout, /no blocked addresses/);
  });
});
