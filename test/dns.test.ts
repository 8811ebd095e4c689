import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyscallEvent } from '../src/events.js';
import { DnsCache, canonicalIp, parseHosts } from '../src/enrich/dns.js';
import { FieldRegistry } from '../src/fields/registry.js';
import { syscallFields } from '../src/fields/syscall.js';

const HOSTS = [
  '# /etc/hosts: static table lookup for hostnames',
  '127.0.0.1\tlocalhost',
  '127.0.1.1   node-7.cluster.local node-7   # this host',
  '',
  '   # an indented comment',
  '::1     localhost ip6-localhost ip6-loopback',
  'fe00::0 ip6-localnet',
  'fe80::1%eth0 link-local-router',
  '2001:DB8:0:0::10 Pool.Example.Net pool',
  '45.9.148.21 pool.example.net',
  '45.9.148.21 POOL.EXAMPLE.NET stratum.example.net',
  '10.0.0.5',
  'not-an-ip some-name',
  '300.1.1.1 bogus',
  '10.0.0.6 db # trailing comment',
].join('\r\n');

test('canonicalIp folds the spellings of one address together', () => {
  assert.equal(canonicalIp('10.1.2.3'), '10.1.2.3');
  assert.equal(canonicalIp(' 2001:DB8:0:0::1 '), '2001:db8::1');
  assert.equal(canonicalIp('[2001:db8::1]'), '2001:db8::1');
  assert.equal(canonicalIp('::ffff:45.9.148.21'), '45.9.148.21', 'IPv4-mapped IPv6 is the IPv4 address');
  assert.equal(canonicalIp('fe80::1%eth0'), 'fe80::1');
  assert.equal(canonicalIp('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(canonicalIp('300.1.1.1'), undefined);
  assert.equal(canonicalIp('pool.example.net'), undefined);
  assert.equal(canonicalIp(''), undefined);
});

test('parseHosts reads comments, tabs, aliases, IPv6 and skips junk', () => {
  const entries = parseHosts(HOSTS);
  assert.deepEqual(entries.map((e) => e.ip), [
    '127.0.0.1', '127.0.1.1', '::1', 'fe00::', 'fe80::1', '2001:db8::10', '45.9.148.21', '45.9.148.21', '10.0.0.6',
  ]);
  assert.deepEqual(entries[1]!.names, ['node-7.cluster.local', 'node-7']);
  assert.deepEqual(entries[2]!.names, ['localhost', 'ip6-localhost', 'ip6-loopback']);
  assert.deepEqual(entries.at(-1)!.names, ['db']);
});

test('DnsCache keeps names in the order they became known, case-insensitively unique', () => {
  const dns = new DnsCache();
  const added = dns.loadHostsText(HOSTS);
  assert.equal(added, 13);
  assert.deepEqual(dns.namesFor('45.9.148.21'), ['pool.example.net', 'stratum.example.net']);
  assert.deepEqual(dns.namesFor('::ffff:45.9.148.21'), ['pool.example.net', 'stratum.example.net']);
  assert.deepEqual(dns.namesFor('2001:db8::10'), ['Pool.Example.Net', 'pool']);
  assert.deepEqual(dns.namesFor('0:0:0:0:0:0:0:1'), ['localhost', 'ip6-localhost', 'ip6-loopback']);
  assert.deepEqual(dns.namesFor('fe80::1'), ['link-local-router']);
  assert.deepEqual(dns.namesFor('10.0.0.5'), [], 'a line without a name adds nothing');
  assert.deepEqual(dns.namesFor('8.8.8.8'), []);
  assert.deepEqual(dns.namesFor('garbage'), []);
  // The returned array is a copy.
  dns.namesFor('45.9.148.21').push('x');
  assert.equal(dns.namesFor('45.9.148.21').length, 2);

  dns.addStatic('xmr.pool.example', ['45.9.148.21', '2001:db8::99']);
  assert.deepEqual(dns.namesFor('45.9.148.21'), ['pool.example.net', 'stratum.example.net', 'xmr.pool.example']);
  assert.deepEqual(dns.namesFor('2001:DB8::99'), ['xmr.pool.example']);
  assert.throws(() => dns.addStatic('x.example', ['999.1.1.1']), /not an IP address/);
  assert.throws(() => dns.addStatic('two words', ['1.1.1.1']), /invalid host name/);
});

test('loadHostsFile reads a file and tolerates a missing one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-dns-'));
  try {
    const path = join(dir, 'hosts');
    writeFileSync(path, HOSTS);
    const dns = new DnsCache();
    assert.equal(dns.loadHostsFile(path), 13);
    assert.equal(dns.size, 8);
    assert.equal(new DnsCache().loadHostsFile(join(dir, 'absent')), 0);
    assert.throws(() => new DnsCache().loadHostsFile(dir), 'a directory is an error, not an empty file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('enrich names both ends of a socket and feeds fd.*.name fields', () => {
  const dns = new DnsCache();
  dns.loadHostsText(HOSTS);
  const ev: SyscallEvent = {
    source: 'syscall', type: 'connect', ts: 1n, res: 0,
    proc: { pid: 10, name: 'xmrig' },
    fd: { num: 5, type: 'ipv4', l4proto: 'tcp', cip: '127.0.1.1', cport: 40000, sip: '45.9.148.21', sport: 3333 },
  };
  assert.equal(dns.enrich(ev), ev);
  assert.equal(ev.fd!.sip_name, 'pool.example.net', 'the first name known for the address');
  assert.equal(ev.fd!.cip_name, 'node-7.cluster.local');

  const reg = new FieldRegistry([{ source: 'syscall', fields: syscallFields }]);
  const val = (f: string) => reg.resolve('syscall', f).extract(ev);
  assert.equal(val('fd.sip.name'), 'pool.example.net');
  assert.equal(val('fd.rip.name'), 'pool.example.net');
  assert.equal(val('fd.lip.name'), 'node-7.cluster.local');

  // A name the source already set is kept; unknown addresses stay unnamed.
  const pre: SyscallEvent = { ...ev, fd: { ...ev.fd!, sip_name: 'from-source', cip_name: undefined, cip: '192.0.2.1' } };
  dns.enrich(pre);
  assert.equal(pre.fd!.sip_name, 'from-source');
  assert.equal(pre.fd!.cip_name, undefined);

  // Events without a socket pass through untouched.
  const file: SyscallEvent = { source: 'syscall', type: 'openat', ts: 1n, proc: { pid: 1, name: 'cat' }, fd: { num: 3, type: 'file', name: '/etc/hosts' } };
  dns.enrich(file);
  assert.deepEqual(file.fd, { num: 3, type: 'file', name: '/etc/hosts' });
  const noFd: SyscallEvent = { source: 'syscall', type: 'execve', ts: 1n, proc: { pid: 1, name: 'sh' } };
  assert.doesNotThrow(() => dns.enrich(noFd));
  assert.doesNotThrow(() => dns.enrich({ source: 'k8s_audit', type: 'pod', ts: 1n, payload: {} }));
});
