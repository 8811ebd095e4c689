/** The mw.* extractors on events: wallets, stratum URLs, miner flags, CPU figures, caching. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event, SyscallEvent } from '../src/events.js';
import { defaultRegistry } from '../src/fields/index.js';
import { EventMemo } from '../src/fields/memo.js';
import { cmdlineOf, mwFields } from '../src/fields/mw.js';
import { hasMinerFlags } from '../src/knowledge/miner-flags.js';
import { parseStratumUrl } from '../src/knowledge/stratum-url.js';
import type { Extracted } from '../src/fields/types.js';

const XMR = '48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD';
const BTC = 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4';
const ETH = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';

/** The per-event cache an engine would own (one for the whole file, as one engine has one). */
const memo = new EventMemo();

function get(name: string, ev: Event): Extracted {
  const def = mwFields.find((f) => f.name === name);
  assert.ok(def, `field ${name} exists`);
  return def.bind(undefined, memo)(ev);
}

function ev(name: string, args: string[] = [], extra: Partial<SyscallEvent> & { env?: string[] } = {}): SyscallEvent {
  const { env, ...rest } = extra;
  return { source: 'syscall', type: 'execve', ts: 1n, proc: { pid: 42, name, args, ...(env ? { env } : {}) }, ...rest };
}

test('every mw field is registered in the syscall catalog, under mw.', () => {
  const reg = defaultRegistry();
  for (const f of mwFields) {
    assert.ok(f.name.startsWith('mw.'), f.name);
    assert.equal(reg.resolve('syscall', f.name).def, f);
  }
});

test('the command line is built as Falco builds proc.cmdline', () => {
  assert.equal(cmdlineOf(ev('xmrig', ['-o', 'pool:1'])), 'xmrig -o pool:1');
  assert.equal(cmdlineOf(ev('sleep')), 'sleep');
  const plugin = { source: 'k8s_audit', type: 'audit', ts: 1n, payload: {} } as Event;
  assert.equal(cmdlineOf(plugin), undefined);
  assert.equal(get('mw.wallet.found', plugin), undefined);
  assert.equal(get('mw.miner.flags', plugin), undefined);
});

test('mw.wallet.*: command line first, then environment; families once each', () => {
  const e = ev('svc', ['--pay', ETH, '--to', XMR], { env: [`BTC_PAYOUT=${BTC}`, 'HOME=/root', `OTHER=${XMR}`] });
  assert.equal(get('mw.wallet.found', e), true);
  assert.deepEqual(get('mw.wallet.type', e), ['ethereum', 'monero', 'bitcoin']);
  assert.equal(get('mw.wallet.address', e), ETH);

  const envOnly = ev('miner', [], { env: [`WALLET=${XMR}`] });
  assert.equal(get('mw.wallet.found', envOnly), true);
  assert.equal(get('mw.wallet.address', envOnly), XMR);
  assert.deepEqual(get('mw.wallet.type', envOnly), ['monero']);

  const none = ev('git', ['checkout', '3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a']);
  assert.equal(get('mw.wallet.found', none), false);
  assert.equal(get('mw.wallet.type', none), undefined);
  assert.equal(get('mw.wallet.address', none), undefined);
});

test('mw.wallet.*: processes sharing one environment array each find its wallets, beside their own argv', () => {
  const env = ['HOME=/root', `WALLET=${XMR}`];
  const first = ev('a', [], { env });
  const second = ev('b', ['--pay', ETH], { env });
  const third = ev('c', [], { env: ['HOME=/root'] });
  assert.deepEqual(get('mw.wallet.type', first), ['monero']);
  assert.deepEqual(get('mw.wallet.type', second), ['ethereum', 'monero'], 'its argv first, then the shared environment');
  assert.equal(get('mw.wallet.address', second), ETH);
  assert.deepEqual(get('mw.wallet.type', ev('d', [], { env })), ['monero'], 'the shared one again, unchanged by the others');
  assert.equal(get('mw.wallet.found', third), false);
});

test('events sharing one args array (a storm of one command) each get their own name, environment wallets and parses', () => {
  const args = ['-u', XMR, '-o', 'stratum+tcp://pool.example.org:3333'];
  const next = (name: string, env?: string[], a: string[] = args): SyscallEvent => {
    memo.next();
    return ev(name, a, env ? { env } : {});
  };
  assert.equal(cmdlineOf(next('xmrig')), `xmrig ${args.join(' ')}`);
  assert.equal(cmdlineOf(next('other')), `other ${args.join(' ')}`, 'same array, another name: another command line');
  let e = next('xmrig', ['HOME=/root', `B=${BTC}`]);
  assert.deepEqual(get('mw.wallet.type', e), ['monero', 'bitcoin']);
  e = next('xmrig', ['HOME=/root', `E=${ETH}`]);
  assert.deepEqual(get('mw.wallet.type', e), ['monero', 'ethereum'], 'the last event\'s environment wallet is not kept');
  e = next('xmrig');
  assert.deepEqual(get('mw.wallet.type', e), ['monero'], 'the command line\'s wallets, nothing added to them');
  assert.equal(get('mw.stratum.host', e), 'pool.example.org');
  assert.equal(get('mw.miner.flags', e), true);
  // Another array, equal text or not: parsed for what it holds.
  e = next('xmrig', undefined, ['--version']);
  assert.equal(get('mw.wallet.found', e), false);
  assert.equal(get('mw.stratum.url', e), undefined);
  assert.equal(get('mw.miner.flags', e), false);
  e = next('xmrig', undefined, [...args]);
  assert.equal(get('mw.stratum.port', e), 3333);
  assert.equal(get('mw.miner.flags', e), true);
});

test('per-event caching: one parse per event, a new event parses afresh', () => {
  const e = ev('xmrig', ['-u', XMR, '-o', 'stratum+tcp://pool.example.org:3333']);
  assert.equal(get('mw.wallet.address', e), XMR);
  assert.equal(get('mw.stratum.host', e), 'pool.example.org');
  // The cache is keyed on the event object: later reads of the same event reuse the first parse.
  e.proc.args = ['--version'];
  assert.equal(get('mw.wallet.found', e), true);
  assert.equal(get('mw.stratum.url', e), 'stratum+tcp://pool.example.org:3333');
  assert.equal(get('mw.wallet.found', ev('xmrig', ['--version'])), false);
  // The engine's next event (a new generation) parses afresh, even the same object.
  memo.next();
  assert.equal(get('mw.wallet.found', e), false);
  // Without an engine's memo every read parses.
  const url = mwFields.find((f) => f.name === 'mw.stratum.url')!.bind(undefined);
  const e2 = ev('xmrig', ['-o', 'stratum+tcp://a.example:1']);
  assert.equal(url(e2), 'stratum+tcp://a.example:1');
  e2.proc.args = ['-o', 'stratum+tcp://b.example:2'];
  assert.equal(url(e2), 'stratum+tcp://b.example:2');
});

test('mw.stratum.*: every scheme miners accept, with host and port', () => {
  const cases: [string, string, string, number | undefined][] = [
    ['stratum+tcp://pool.supportxmr.com:3333', 'stratum+tcp', 'pool.supportxmr.com', 3333],
    ['stratum+ssl://gulf.moneroocean.stream:20128', 'stratum+ssl', 'gulf.moneroocean.stream', 20128],
    ['stratum+tls://pool.example.org:443', 'stratum+tls', 'pool.example.org', 443],
    ['stratum+tls12://pool.example.org:5555', 'stratum+tls12', 'pool.example.org', 5555],
    ['stratum+tcps://pool.example.org:3334', 'stratum+tcps', 'pool.example.org', 3334],
    ['stratum+udp://pool.example.org:3333', 'stratum+udp', 'pool.example.org', 3333],
    ['stratum1+tcp://0xabc.rig1@eu1.ethermine.org:4444', 'stratum1+tcp', 'eu1.ethermine.org', 4444],
    ['stratum1+ssl://wallet.worker:x@us1.ethermine.org:5555/path', 'stratum1+ssl', 'us1.ethermine.org', 5555],
    ['stratum2+tcp://v2.stratum.example.com/abc', 'stratum2+tcp', 'v2.stratum.example.com', undefined],
    ['stratum2+ssl://pool.example.org:443', 'stratum2+ssl', 'pool.example.org', 443],
    ['stratums://pool.example.org:5555', 'stratums', 'pool.example.org', 5555],
    ['stratum://pool.example.org:4444', 'stratum', 'pool.example.org', 4444],
    ['ethproxy+tcp://eth.example.org:8008', 'ethproxy+tcp', 'eth.example.org', 8008],
    ['ethnh+ssl://eth.example.org:443', 'ethnh+ssl', 'eth.example.org', 443],
    ['STRATUM+TCP://POOL.EXAMPLE.ORG:3333', 'stratum+tcp', 'pool.example.org', 3333],
    ['stratum+tcp://[2001:db8::7]:3333', 'stratum+tcp', '2001:db8::7', 3333],
    ['stratum+tcp://198.51.100.9:99999', 'stratum+tcp', '198.51.100.9', undefined],
  ];
  for (const [url, scheme, host, port] of cases) {
    const e = ev('miner', ['-o', url, '-k']);
    assert.equal(get('mw.stratum.url', e), url, url);
    assert.equal(get('mw.stratum.scheme', e), scheme, url);
    assert.equal(get('mw.stratum.host', e), host, url);
    assert.equal(get('mw.stratum.port', e), port, url);
  }
  // The first of several, and the form glued to an option.
  assert.equal(get('mw.stratum.url', ev('m', ['--url=stratum+ssl://a.example:1', '-o', 'stratum+tcp://b.example:2'])), 'stratum+ssl://a.example:1');
  // Not stratum: plain web URLs, a scheme inside a longer word, mere mentions.
  for (const args of [['https://pool.example.org:3333'], ['mystratum+tcp://x:1'], ['--stratum-port', '3333'], ['stratum+tcp']]) {
    assert.equal(get('mw.stratum.url', ev('tool', args)), undefined, args.join(' '));
  }
  assert.equal(parseStratumUrl('no url here'), undefined);
});

test('mw.miner.flags: miner options are seen', () => {
  const yes: string[][] = [
    ['--donate-level', '1'],
    ['--donate-level=0'],
    ['--randomx-mode=fast'],
    ['--randomx-1gb-pages'],
    ['--cpu-priority', '5'],
    ['--max-cpu-usage=75'],
    ['--nicehash'],
    ['-a', 'rx/0'],
    ['-a', 'randomx'],
    ['--algo=cn/r'],
    ['-acryptonight'],
    ['--algo', 'cryptonight-lite'],
    ['--algorithm', 'kawpow'],
    ['--algo', 'ETHASH'],
    ['-a', 'cn-heavy/xhv'],
    ['--algo', 'autolykos2'],
    ['--coin', 'monero'],
    ['--coin=XMR'],
    ['-o', 'pool.example.org:3333', '-u', 'wallet'],
    ['--url=stratum+tcp://x.example:1', '--user=y'],
    ['-u', 'w', '-p', 'x', '-o', 'xmr.pool.example:14444'],
    ['-o', 'pool.example.org:3333', '-O', 'user:pass'],
  ];
  for (const a of yes) assert.equal(hasMinerFlags(a), true, a.join(' '));
  assert.equal(get('mw.miner.flags', ev('x', ['--donate-level', '1'])), true);
});

test('mw.miner.flags: ordinary tools stay quiet', () => {
  const no: string[][] = [
    [],
    ['-o', 'out', '-u', 'sym', 'main.c'], // gcc
    ['-O2', '-o', 'out', 'main.c'],
    ['-a', '-czf', 'backup.tar.gz', '/srv'], // tar
    ['-a'], // ls
    ['--algo', 'sha256', 'file'],
    ['--algorithm=sha512'],
    ['-a', 'scrypt'],
    ['-o', 'report.csv', '-u', 'admin:secret', 'https://intranet.example.com/report'], // curl
    ['-o', 'pool.example.org:3333'], // a pool, but no user
    ['--server=https://10.0.0.1:6443', '--user=admin', 'get', 'pods'], // kubectl
    ['--url', 'https://vault.example.com:8200', '--user', 'ops'], // a web URL is not a pool
    ['--max-pool-size=20'],
    ['-Dthread.pool=4', '-jar', 'app.jar'],
    ['-o', 'StrictHostKeyChecking=no', 'deploy@203.0.113.5'],
    ['--coin', 'flip'],
  ];
  for (const a of no) assert.equal(hasMinerFlags(a), false, a.join(' '));
  assert.equal(get('mw.miner.flags', ev('gcc', ['-o', 'out', '-u', 'sym', 'main.c'])), false);
});

test('mw.cpu.*: figures from the sampler, numbers as numbers', () => {
  const e = ev('xmrig', [], { cpu: { percent: 97.5, limit_percent: 200, duration: '600000000000', scope: 'container' } });
  assert.equal(get('mw.cpu.percent', e), 97.5);
  assert.equal(get('mw.cpu.limit_percent', e), 200);
  assert.equal(get('mw.cpu.duration', e), 600000000000);
  assert.equal(get('mw.cpu.scope', e), 'container');
  const none = ev('bash');
  for (const f of ['mw.cpu.percent', 'mw.cpu.limit_percent', 'mw.cpu.duration', 'mw.cpu.scope']) assert.equal(get(f, none), undefined, f);
  assert.equal(get('mw.cpu.percent', ev('x', [], { cpu: { percent: 'n/a' } })), undefined);
});
