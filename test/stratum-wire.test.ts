/**
 * The stratum detector's parser and the rule on top of it: real message shapes from XMRig and from
 * Bitcoin stratum v1 clients alert, cut short or whole; TLS, Ethereum node JSON-RPC and LSP do not.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Engine, DEFAULT_RULES_FILES } from '../src/engine/index.js';
import type { SyscallEvent } from '../src/events.js';
import { parseStratumPayload } from '../src/knowledge/stratum-wire.js';
import { WALLET } from './helpers/miner.js';


// XMRig 6.x's first line to a pool (src/base/net/stratum/Client.cpp's login request, as sent).
const XMRIG_LOGIN =
  `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"${WALLET}","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0",` +
  `"rigid":"","algo":["cn/1","cn/2","cn/r","cn/fast","cn/half","cn/xao","cn/rto","cn/rwz","cn/zls","cn/double","cn/ccx","cn-lite/1","cn-heavy/0",` +
  `"cn-heavy/tube","cn-heavy/xhv","cn-pico","cn-pico/tlo","cn/upx2","rx/0","rx/wow","rx/arq","rx/graft","rx/sfx","rx/keva","argon2/chukwa",` +
  `"argon2/chukwav2","argon2/ninja","astrobwt","astrobwt/v2","ghostrider"]}}\n`;

// cpuminer / cgminer style stratum v1: subscribe then authorize, often in one write.
const BTC_SUBSCRIBE = '{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.12.1"]}\n';
const BTC_AUTHORIZE = '{"id": 2, "method": "mining.authorize", "params": ["bc1qexampleworker.rig1", "x"]}\n';
// A pool's notify (what a proxy relays on, server to client).
const BTC_NOTIFY =
  '{"params":["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008",' +
  '"072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",[],"00000002","1c2ac4af","504e86b9",false],"id":null,"method":"mining.notify"}\n';

// A TLS 1.3 ClientHello's first bytes: what a stratum+ssl miner sends (no payload to read).
const TLS_HELLO = Buffer.from('16030100f8010000f40303' + 'a1'.repeat(32) + '20' + 'b2'.repeat(32) + '0008130213031301c02f0100', 'hex').toString('latin1');

// Ethereum node JSON-RPC (what wallets, dapps and indexers send to geth on 8545).
const ETH_CALLS = [
  '{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}',
  '{"jsonrpc":"2.0","method":"eth_getBalance","params":["0x407d73d8a49eeb85d32cf465507dd71d507100c1","latest"],"id":1}',
  '{"jsonrpc":"2.0","method":"eth_getWork","params":[],"id":73}',
  '[{"jsonrpc":"2.0","method":"net_version","params":[],"id":1},{"jsonrpc":"2.0","method":"eth_chainId","params":[],"id":2}]',
];

// Language Server Protocol: a header, then the JSON body; and a body on its own (some transports).
const LSP_BODY = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":4242,"rootUri":"file:///src/app","capabilities":{}}}';
const LSP = `Content-Length: ${LSP_BODY.length}\r\n\r\n${LSP_BODY}`;

describe('stratum on the wire: the parser', () => {
  test('XMRig login: method, agent and wallet', () => {
    assert.deepEqual(parseStratumPayload(XMRIG_LOGIN), { method: 'login', agent: 'XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0', login: WALLET });
  });

  test('XMRig login cut short anywhere after the agent still yields method, agent and login', () => {
    const agentEnd = XMRIG_LOGIN.indexOf('","rigid"');
    for (const cut of [agentEnd, agentEnd + 40, 300, XMRIG_LOGIN.length - 5]) {
      const m = parseStratumPayload(XMRIG_LOGIN.slice(0, cut));
      assert.equal(m?.method, 'login', `cut at ${cut}`);
      assert.equal(m?.login, WALLET, `cut at ${cut}`);
      assert.ok(m?.agent?.startsWith('XMRig/6.21.0'), `cut at ${cut}: ${m?.agent}`);
    }
    // Cut inside the agent: what made it is the agent.
    const inAgent = parseStratumPayload(XMRIG_LOGIN.slice(0, XMRIG_LOGIN.indexOf('libuv')));
    assert.match(String(inAgent?.agent), /^XMRig\/6\.21\.0 \(Linux x86_64\) ?$/);
  });

  test('a login without an agent or a login is not XMRig', () => {
    assert.equal(parseStratumPayload('{"id":1,"method":"login","params":{"username":"alice","password":"x"}}\n'), undefined);
  });

  test('Bitcoin stratum v1: subscribe with its agent, authorize with its worker, in one write', () => {
    assert.deepEqual(parseStratumPayload(BTC_SUBSCRIBE + BTC_AUTHORIZE), { method: 'mining.subscribe', agent: 'cgminer/4.12.1', login: 'bc1qexampleworker.rig1' });
    assert.deepEqual(parseStratumPayload(BTC_AUTHORIZE), { method: 'mining.authorize', login: 'bc1qexampleworker.rig1' });
    assert.deepEqual(parseStratumPayload('{"id": 1, "method": "mining.subscribe", "params": ["cgmin'), { method: 'mining.subscribe', agent: 'cgmin' });
    assert.equal(parseStratumPayload(BTC_NOTIFY)?.method, 'mining.notify');
    assert.equal(parseStratumPayload(BTC_NOTIFY.slice(0, 120)), undefined, 'a notify cut before its method names nothing');
  });

  test('eth-proxy login is mining; Ethereum node calls are not', () => {
    assert.deepEqual(parseStratumPayload('{"worker":"rig1","jsonrpc":"2.0","params":["0x407d73d8a49eeb85d32cf465507dd71d507100c1.rig1","x"],"id":1,"method":"eth_submitLogin"}\n'),
      { method: 'eth_submitLogin', login: '0x407d73d8a49eeb85d32cf465507dd71d507100c1.rig1' });
    for (const c of ETH_CALLS) assert.equal(parseStratumPayload(c), undefined, c);
  });

  test('TLS, LSP, HTTP and empty payloads are not stratum', () => {
    assert.equal(parseStratumPayload(TLS_HELLO), undefined);
    assert.equal(parseStratumPayload(LSP), undefined);
    assert.equal(parseStratumPayload(LSP_BODY), undefined);
    assert.equal(parseStratumPayload('POST /json_rpc HTTP/1.1\r\nHost: pool\r\n\r\n{"method":"mining.subscribe"}'), undefined);
    assert.equal(parseStratumPayload(''), undefined);
    assert.equal(parseStratumPayload(undefined), undefined);
    assert.equal(parseStratumPayload('{"method": "mining'), undefined, 'a method cut before it is one');
  });
});

describe('stratum on the wire: the default rule', () => {
  const engine = Engine.fromFiles(DEFAULT_RULES_FILES);
  const send = (type: string, buffer: string): SyscallEvent => ({
    source: 'syscall', type, ts: 1_700_000_000_000_000_000n, res: buffer.length, buffer,
    proc: { pid: 4242, name: 'kworkerds', exe: '/tmp/.x/kworkerds', args: [] },
    fd: { num: 5, type: 'ipv4', l4proto: 'tcp', cip: '10.1.2.3', cport: 40000, sip: '198.51.100.9', sport: 8443 },
  });
  const rule = 'Stratum Mining Protocol on the Wire';
  const fired = (ev: SyscallEvent) => engine.process(ev).filter((m) => m.rule === rule);

  test('an XMRig login on a non-pool port alerts CRITICAL with method, agent and wallet', () => {
    for (const type of ['write', 'writev', 'sendto', 'sendmsg']) {
      const [m] = fired(send(type, XMRIG_LOGIN));
      assert.ok(m, type);
      assert.equal(m.priority, 'CRITICAL');
      assert.equal(m.outputFields['mw.stratum.method'], 'login');
      assert.equal(m.outputFields['mw.stratum.login'], WALLET);
      assert.match(String(m.outputFields['mw.stratum.agent']), /^XMRig\/6\.21\.0/);
    }
    assert.equal(fired(send('write', BTC_SUBSCRIBE + BTC_AUTHORIZE)).length, 1);
  });

  test('TLS, Ethereum JSON-RPC and LSP sends do not alert', () => {
    for (const b of [TLS_HELLO, LSP, LSP_BODY, ...ETH_CALLS]) assert.equal(fired(send('write', b)).length, 0, b.slice(0, 40));
  });
});
