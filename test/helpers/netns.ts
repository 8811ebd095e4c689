/**
 * Network namespaces for live tests, and the processes run inside them: pairs of namespaces
 * joined by a veth pair that never touches the host, a stand-in mining pool reached from the host,
 * containers' namespaces, TCP listeners, and one-shot connection probes. Every name carries
 * uniqueId(tag), so test files running in parallel never collide; cleanup functions ignore what
 * is already gone.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { lines, parseJson } from './json-lines.js';
import { run, tryRun } from './live.js';

// ---- a stand-in mining pool in its own network namespace ----------------------------------------

/**
 * A network namespace holding the pool address (198.51.100.7/24), joined to the host by a veth
 * pair whose host end has 198.51.100.1/32: a /32 adds no route, so nothing on the host is routed
 * into the namespace (another test using the same documentation prefix keeps its routes), and a
 * connection reaches the pool only when its socket is bound to `hostIf` (SO_BINDTODEVICE: the
 * fake miner's FAKE_MINER_BIND_DEV), which the kernel then treats as on-link.
 */
export interface PoolNetns {
  name: string;
  hostIf: string;
  nsIf: string;
  /** Extra veth pairs and namespaces made for containers, removed with the pool. */
  extra: { netns: string[]; links: string[] };
}

/**
 * Run `ip ARGS` inside a named network namespace through nsenter, which joins only the network
 * namespace. `ip -n` and `ip netns exec` also make a short-lived mount namespace each time, and
 * the kernel reuses a dead namespace's inode number at once: the container's mount namespace
 * made right after would share its number with one the agent has just looked at (see the report
 * on ExeIdentity's mount table cache, keyed by that number).
 */
export function ipIn(ns: string, args: string[]): void {
  run('nsenter', [`--net=/run/netns/${ns}`, 'ip', ...args]);
}

/** A name part unique to this process and call, ending in the caller's tag (fits a 15-character interface name with a 5-character prefix). */
export function uniqueId(tag: string): string {
  return `${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}${tag}`.slice(-8);
}

/**
 * Make namespace `name` and a veth pair into it: hostIf on the host with hostCidr, nsIf inside
 * with nsCidr; both ends and the namespace's loopback up.
 */
function linkToHost(name: string, hostIf: string, nsIf: string, hostCidr: string, nsCidr: string): void {
  run('ip', ['netns', 'add', name]);
  run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
  run('ip', ['link', 'set', nsIf, 'netns', name]);
  run('ip', ['addr', 'add', hostCidr, 'dev', hostIf]);
  run('ip', ['link', 'set', hostIf, 'up']);
  ipIn(name, ['addr', 'add', nsCidr, 'dev', nsIf]);
  ipIn(name, ['link', 'set', nsIf, 'up']);
  ipIn(name, ['link', 'set', 'lo', 'up']);
}

export function makePoolNetns(tag: string, poolAddr = '198.51.100.7', hostAddr = '198.51.100.1'): PoolNetns {
  const id = uniqueId(tag);
  const ns: PoolNetns = { name: `mwpool-${id}`, hostIf: `mwph${id}`, nsIf: `mwpn${id}`, extra: { netns: [], links: [] } };
  try {
    linkToHost(ns.name, ns.hostIf, ns.nsIf, `${hostAddr}/32`, `${poolAddr}/24`);
  } catch (e) {
    removePoolNetns(ns);
    throw e;
  }
  return ns;
}

/**
 * A network namespace joined to the host by a veth pair, routed both ways: the host end gets
 * hostAddr/24, the namespace end nsAddr/24. Recorded in `created` (before anything can fail) for
 * removeHostNetns.
 */
export interface HostNetns {
  name: string;
  hostIf: string;
  nsIf: string;
}

export function makeHostNetns(tag: string, hostAddr: string, nsAddr: string, created: HostNetns[]): HostNetns {
  const id = uniqueId(tag);
  const ns: HostNetns = { name: `mwhost-${id}`, hostIf: `mwhh${id}`, nsIf: `mwhn${id}` };
  created.push(ns);
  linkToHost(ns.name, ns.hostIf, ns.nsIf, `${hostAddr}/24`, `${nsAddr}/24`);
  return ns;
}

/** Delete namespaces made by makeHostNetns (which takes their veth ends, and so the pairs, with them). */
export function removeHostNetns(created: HostNetns[]): void {
  for (const ns of created) {
    tryRun('ip', ['netns', 'del', ns.name]);
    tryRun('ip', ['link', 'del', ns.hostIf]);
  }
  created.length = 0;
}

/**
 * A second namespace (a container's network) with a veth straight into the pool's namespace:
 * 203.0.113.1/24 on the pool side, 203.0.113.2/24 inside, and a route to the pool's /24 through it.
 */
export function addContainerNetns(pool: PoolNetns, tag: string): { name: string; addr: string } {
  const id = uniqueId(tag);
  const name = `mwctr-${id}`;
  const a = `mwca${id}`;
  const b = `mwcb${id}`;
  pool.extra.netns.push(name);
  run('ip', ['netns', 'add', name]);
  run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  run('ip', ['link', 'set', a, 'netns', pool.name]);
  run('ip', ['link', 'set', b, 'netns', name]);
  ipIn(pool.name, ['addr', 'add', '203.0.113.1/24', 'dev', a]);
  ipIn(pool.name, ['link', 'set', a, 'up']);
  ipIn(name, ['addr', 'add', '203.0.113.2/24', 'dev', b]);
  ipIn(name, ['link', 'set', b, 'up']);
  ipIn(name, ['link', 'set', 'lo', 'up']);
  ipIn(name, ['route', 'add', '198.51.100.0/24', 'via', '203.0.113.1']);
  return { name, addr: '203.0.113.2' };
}

/**
 * A network namespace of its own for a hand-made container, with nothing in it but loopback (up):
 * the container cannot reach anything, not even the host.
 */
export function makeEmptyNetns(tag: string): string {
  const name = `mwctr-${uniqueId(tag)}`;
  run('ip', ['netns', 'add', name]);
  try {
    ipIn(name, ['link', 'set', 'lo', 'up']);
  } catch (e) {
    tryRun('ip', ['netns', 'del', name]);
    throw e;
  }
  return name;
}

export function removeNetns(name: string): void {
  tryRun('ip', ['netns', 'del', name]);
}

export function removePoolNetns(ns: PoolNetns): void {
  for (const n of ns.extra.netns) tryRun('ip', ['netns', 'del', n]);
  tryRun('ip', ['netns', 'del', ns.name]);
  tryRun('ip', ['link', 'del', ns.hostIf]);
}

/**
 * A stratum listener inside the namespace: prints {"listening":true} when ready, then one JSON line
 * per line a client sends ({"got": "..."}). Runs until killed.
 */
export interface PoolServer {
  child: ChildProcess;
  ready: Promise<void>;
  received: string[];
}

export function startPool(ns: PoolNetns, addr = '198.51.100.7', port = 4444): PoolServer {
  const script = `
const net = require('node:net');
const server = net.createServer((s) => {
  let buf = '';
  s.setEncoding('utf8');
  s.on('error', () => {});
  s.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\\n')) >= 0) {
      console.log(JSON.stringify({ got: buf.slice(0, nl) }));
      buf = buf.slice(nl + 1);
      s.write('{"id":1,"jsonrpc":"2.0","error":null,"result":{"status":"OK"}}\\n');
    }
  });
});
server.listen(${port}, ${JSON.stringify(addr)}, () => console.log(JSON.stringify({ listening: true })));`;
  const child = spawn('nsenter', [`--net=/run/netns/${ns.name}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const received: string[] = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    lines(child.stdout!, (l) => {
      const v = parseJson(l) as { listening?: boolean; got?: string } | undefined;
      if (v?.listening) resolve();
      if (v?.got !== undefined) received.push(v.got);
    });
    child.on('exit', (code, sig) => reject(new Error(`pool listener exited (${code ?? sig}): ${err}`)));
    child.on('error', reject);
  });
  ready.catch(() => {});
  return { child, ready, received };
}

// ---- namespaces that never touch the host, listeners, probes ----------------------------------------

/**
 * Two network namespaces joined by a veth pair, with no leg on the host: nothing on the host is
 * routed into them and their addresses cannot clash with another test's (the same documentation
 * addresses may live in other namespaces). `a` gets aAddr/prefix, `b` gets bAddrs[0]/prefix and
 * the rest of bAddrs as /32s on the same link (answered on it: arp_ignore is 0 by default).
 */
export interface NetnsPair {
  a: string;
  b: string;
}

/** IPv6 addresses for the pair's ends (added without duplicate address detection, so usable at once). */
export interface NetnsPairIpv6 {
  a: string;
  b: string;
  /** Prefix length of both; 64 unless given. */
  prefix?: number;
}

export function makeNetnsPair(tag: string, aAddr: string, bAddrs: string[], prefix = 24, ipv6?: NetnsPairIpv6): NetnsPair {
  const id = uniqueId(tag);
  const pair: NetnsPair = { a: `mwra-${id}`, b: `mwrb-${id}` };
  const ia = `mwra${id}`;
  const ib = `mwrb${id}`;
  try {
    run('ip', ['netns', 'add', pair.a]);
    run('ip', ['netns', 'add', pair.b]);
    // Made inside a, its peer moved to b: the pair never exists on the host.
    ipIn(pair.a, ['link', 'add', ia, 'type', 'veth', 'peer', 'name', ib, 'netns', pair.b]);
    ipIn(pair.a, ['addr', 'add', `${aAddr}/${prefix}`, 'dev', ia]);
    ipIn(pair.a, ['link', 'set', ia, 'up']);
    ipIn(pair.a, ['link', 'set', 'lo', 'up']);
    bAddrs.forEach((addr, i) => ipIn(pair.b, ['addr', 'add', `${addr}/${i === 0 ? prefix : 32}`, 'dev', ib]));
    if (ipv6) {
      ipIn(pair.a, ['addr', 'add', `${ipv6.a}/${ipv6.prefix ?? 64}`, 'dev', ia, 'nodad']);
      ipIn(pair.b, ['addr', 'add', `${ipv6.b}/${ipv6.prefix ?? 64}`, 'dev', ib, 'nodad']);
    }
    ipIn(pair.b, ['link', 'set', ib, 'up']);
    ipIn(pair.b, ['link', 'set', 'lo', 'up']);
  } catch (e) {
    removeNetnsPair(pair);
    throw e;
  }
  return pair;
}

/** Delete both namespaces (the veth pair and any nftables table in them go too). */
export function removeNetnsPair(pair: NetnsPair): void {
  tryRun('ip', ['netns', 'del', pair.a]);
  tryRun('ip', ['netns', 'del', pair.b]);
}

/** Spawn a command inside a named network namespace (nsenter execs it: the child's pid is the command's). */
export function spawnIn(netns: string, cmd: string, args: string[], opts: { env?: Record<string, string>; stdio?: 'ignore' | 'pipe' } = {}): ChildProcess {
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', cmd, ...args], {
    stdio: ['ignore', opts.stdio ?? 'pipe', opts.stdio ?? 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  child.on('error', () => {});
  return child;
}

/**
 * A TCP listener inside a namespace (on the host's network when netns is undefined): one server
 * per bind, each accepting and holding its connections. A bind is a port (on every address of the
 * namespace) or { port, addr }; port 0 takes a free port. `ready` resolves with the ports listened
 * on, in the order of the binds.
 */
export interface ListenBind {
  port: number;
  addr?: string;
}

export interface Listener {
  child: ChildProcess;
  ready: Promise<number[]>;
}

export function startListener(netns: string | undefined, binds: ReadonlyArray<number | ListenBind>): Listener {
  const specs = binds.map((b) => (typeof b === 'number' ? { port: b, addr: '0.0.0.0' } : { port: b.port, addr: b.addr ?? '0.0.0.0' }));
  const script = `
const net = require('node:net');
const held = [];
const specs = ${JSON.stringify(specs)};
const ports = [];
let left = specs.length;
specs.forEach(({ port, addr }, i) => {
  const server = net.createServer((s) => { s.on('error', () => {}); held.push(s); });
  server.listen(port, addr, () => {
    ports[i] = server.address().port;
    if (--left === 0) console.log(JSON.stringify({ listening: true, ports }));
  });
});`;
  const argv = [process.execPath, '-e', script];
  const child = netns === undefined
    ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('nsenter', [`--net=/run/netns/${netns}`, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<number[]>((resolve, reject) => {
    lines(child.stdout!, (l) => {
      const v = parseJson(l) as { listening?: boolean; ports?: number[] } | undefined;
      if (v?.listening) resolve(v.ports ?? []);
    });
    child.on('exit', (code, sig) => reject(new Error(`listener in ${netns ?? 'the host network'} exited (${code ?? sig}): ${err}`)));
    child.on('error', reject);
  });
  ready.catch(() => {});
  return { child, ready };
}

/**
 * One TCP connection attempt from inside a namespace, given up after timeoutMs: whether it
 * connected, and the error otherwise.
 */
export function probeConnect(netns: string, addr: string, port: number, timeoutMs = 1500): Promise<{ ok: boolean; err?: string }> {
  const script = `
const s = require('node:net').connect(${port}, ${JSON.stringify(addr)});
const done = (r) => { console.log(JSON.stringify(r)); s.destroy(); process.exit(0); };
s.setTimeout(${timeoutMs}, () => done({ ok: false, err: 'timeout' }));
s.on('connect', () => done({ ok: true }));
s.on('error', (e) => done({ ok: false, err: e.code || e.message }));`;
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', script], { timeout: timeoutMs + 10_000 }, (err, stdout) => {
      const v = parseJson(stdout.trim()) as { ok: boolean; err?: string } | undefined;
      resolve(v ?? { ok: false, err: `probe failed: ${err?.message ?? stdout}` });
    });
  });
}
