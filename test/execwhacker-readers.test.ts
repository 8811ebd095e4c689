/**
 * execwhacker's spare_readers (issue 13, item 10): with it on, the system's own readers and
 * searchers whose banned strings are only what they read or search for live; a miner posing as
 * one (renamed, copied out of a system directory, options that carry the pool) still dies; with it
 * off, cryptnono's behaviour is unchanged and the reader dies too.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { type ExeFile, type ExeProbe, spareReader } from '../src/detectors/execwhacker/readers.js';
import { ExecMatcher } from '../src/detectors/execwhacker/matcher.js';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { CLI } from './helpers/paths.js';
import { haveCommand, isRoot } from './helpers/live.js';

const m = new ExecMatcher([{ name: 't', bannedCommandStrings: ['xmrig', 'pool.minexmr.com', 'stratum+tcp://'], allowedCommandPatterns: [] }]);
const banned = (a: readonly string[], e?: string) => m.bannedIn(a, e);

/** A /proc as the check sees it: every path a root-owned 0755 file unless told otherwise. */
function fakeProbe(over: { files?: Record<string, Partial<ExeFile> | null>; running?: Partial<ExeFile>; container?: boolean } = {}): ExeProbe {
  const file = (path: string): ExeFile | undefined => {
    const o = over.files?.[path];
    if (o === null) return undefined;
    return { regular: true, uid: 0, mode: 0o100755, nlink: 1, dev: 1n, ino: BigInt(path.length), ...o };
  };
  return {
    running: () => (over.running ? { regular: true, uid: 0, mode: 0o100755, nlink: 1, dev: 1n, ino: 0n, ...over.running } : undefined),
    atPath: (_pid, path) => file(path),
    hostMountNs: () => !over.container,
  };
}
const real = (exepath: string): ExeProbe => fakeProbe({ running: { ino: BigInt(exepath.length) } });
const decide = (exepath: string, argv: string[], probe = real(exepath)) => spareReader({ pid: 4242, exepath, argv }, banned, probe);

describe('spare_readers: the decision', () => {
  test('readers whose banned string is only in a file, a pattern or a URL are spared', () => {
    const spared: [string, string[]][] = [
      ['/usr/bin/grep', ['grep', '-ri', 'xmrig', '/var/log/syslog']],
      ['/usr/bin/grep', ['grep', '-e', 'stratum+tcp://', '-r', '.']],
      ['/usr/bin/grep', ['grep', '--include=*xmrig*', '-r', 'pool', '.']],
      ['/usr/bin/less', ['less', 'xmrig.txt']],
      ['/usr/bin/vim.basic', ['vi', 'notes/xmrig.md']],
      ['/usr/bin/git', ['git', 'clone', 'https://example.org/x/xmrig-notes']],
      ['/usr/bin/git', ['git', 'log', '--grep=xmrig']],
      ['/usr/lib/git-core/git-remote-https', ['git-remote-https', 'origin', 'https://example.org/x/xmrig-notes']],
      ['/usr/bin/find', ['find', '/', '-name', '*xmrig*', '-type', 'f']],
      ['/usr/bin/tail', ['tail', '-n', '50', '-f', '/var/log/xmrig.log']],
      ['/usr/bin/man', ['man', 'xmrig']],
    ];
    for (const [exe, argv] of spared) assert.deepEqual(decide(exe, argv), { spared: true, tool: argv[0] }, argv.join(' '));
    // egrep is a shell script on Debian: the kernel runs `sh /usr/bin/egrep …`.
    assert.deepEqual(decide('/usr/bin/dash', ['/bin/sh', '/usr/bin/egrep', '-ri', 'xmrig', '/var/log']), { spared: true, tool: 'egrep' });
  });

  test('a miner posing as a reader is not spared', () => {
    const cases: [string, string[], ExeProbe | undefined, RegExp][] = [
      // The pool in an option value (less -o is its log file; xmrig's -o is its pool).
      ['/usr/bin/less', ['less', '-o', 'pool.minexmr.com:4444', '-u', 'WALLET'], undefined, /outside the operands/],
      ['/usr/bin/grep', ['grep', '--color=xmrig', 'x', 'f'], undefined, /outside the operands/],
      ['/usr/bin/git', ['git', '-c', 'core.sshCommand=xmrig', 'clone', 'u'], undefined, /outside the operands/],
      ['/usr/bin/find', ['find', '.', '-name', 'x', '-exec', 'xmrig', '-o', 'pool', ';'], undefined, /outside the operands/],
      // The banned string in argv[0] or the executable's path.
      ['/usr/bin/grep', ['/opt/xmrig/grep', 'x', 'f'], undefined, /outside the operands/],
      // Named grep, but not a system file: a miner dropped anywhere else, or renamed.
      ['/tmp/grep', ['grep', 'xmrig', 'f'], undefined, /not in a system directory/],
      ['/usr/local/bin/grep', ['grep', 'xmrig', 'f'], undefined, /not in a system directory/],
      ['/usr/bin/xmrig', ['grep', 'xmrig', 'f'], undefined, /argv\[0\] says grep but the executable is \/usr\/bin\/xmrig/],
      ['/usr/bin/grep', ['grep', 'xmrig', 'f'], fakeProbe({ running: { uid: 1000, ino: 13n } }), /not owned by root \(uid 1000\)/],
      ['/usr/bin/grep', ['grep', 'xmrig', 'f'], fakeProbe({ running: { mode: 0o100777, ino: 13n } }), /writable by group or others \(mode 777\)/],
      ['/usr/bin/grep', ['grep', 'xmrig', 'f'], fakeProbe({ running: { nlink: 0, ino: 13n } }), /was deleted/],
      // Replaced on disk after it started (or /proc lies about the path): not the file at that path.
      ['/usr/bin/grep', ['grep', 'xmrig', 'f'], fakeProbe({ running: { ino: 999n } }), /not the file at \/usr\/bin\/grep now/],
      // In a container the image decides what /usr/bin/grep is.
      ['/usr/bin/grep', ['grep', 'xmrig', 'f'], fakeProbe({ running: { ino: 13n }, container: true }), /container's mount namespace/],
      // Not a reader at all, and git subcommands outside the list.
      ['/usr/bin/python3.11', ['python3', 'xmrig.py'], undefined, /not a reader/],
      ['/usr/bin/git', ['git', 'config', 'alias.x', '!xmrig'], undefined, /'config' is not one of the subcommands spared/],
      // A fake egrep script.
      ['/usr/bin/dash', ['/bin/sh', '/tmp/egrep', 'xmrig', 'f'], undefined, /\/tmp\/egrep is not in a system directory/],
    ];
    for (const [exe, argv, probe, why] of cases) {
      const d = decide(exe, argv, probe ?? real(exe));
      assert.equal(d.spared, false, argv.join(' '));
      assert.match((d as { reason: string }).reason, why, argv.join(' '));
    }
  });

  test('config: spare_readers is off by default (cryptnono-compatible) and takes a boolean', () => {
    assert.equal(parseConfig('{}', 'mw.yaml').config.detectors.execwhacker.spare_readers, false);
    assert.equal(parseConfig('detectors:\n  execwhacker:\n    spare_readers: true\n', 'mw.yaml').config.detectors.execwhacker.spare_readers, true);
    assert.throws(() => parseConfig('detectors:\n  execwhacker:\n    spare_readers: yes please\n', 'mw.yaml'), /mw\.yaml:3:\d+: detectors\.execwhacker\.spare_readers/);
  });
});

describe('spare_readers: minewatch whack test', () => {
  const whack = (args: string[]): { code: number; out: string } => {
    try {
      return { code: 0, out: execFileSync(process.execPath, [CLI, 'whack', 'test', ...args], { encoding: 'utf8' }) };
    } catch (e) {
      const err = e as { status: number; stdout: string };
      return { code: err.status, out: err.stdout };
    }
  };
  const grep = existsSync('/usr/bin/grep') ? undefined : 'needs /usr/bin/grep';

  test('grep -ri xmrig /var/log/syslog: killed without spare_readers, spared with it', { skip: grep }, () => {
    const off = whack(['--argv', '--', 'grep', '-ri', 'xmrig', '/var/log/syslog']);
    assert.equal(off.code, 1, off.out);
    assert.match(off.out, /^kill: banned string 'xmrig'/);
    const on = whack(['--spare-readers', '--argv', '--', 'grep', '-ri', 'xmrig', '/var/log/syslog']);
    assert.equal(on.code, 0, on.out);
    assert.match(on.out, /^spared: spare_readers: grep is the system's own and banned string 'xmrig'/);
    const json = JSON.parse(whack(['--spare-readers', '--json', '--argv', '--', 'grep', 'xmrig', '/var/log/syslog']).out);
    assert.equal(json.kill, false);
    assert.equal(json.spared, 'reader');
    assert.deepEqual(json.reader, { spared: true, tool: 'grep' });
  });

  test('a miner called less with pool options still dies, and the reason is printed', () => {
    const r = whack(['--spare-readers', '--argv', '--', 'less', '-o', 'pool.minexmr.com:4444', '-u', 'x']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /not spared as a reader \(spare_readers\): a banned string is outside the operands/);
  });
});

// ---- live: the agent kills or spares real processes -----------------------------------------------

const NO_ROOT = isRoot() ? undefined : 'SKIPPED: needs root (the execwhacker kills other processes; /proc/PID/exe of any user)';
const NO_TAIL = existsSync('/usr/bin/tail') && haveCommand('tail') ? undefined : 'SKIPPED: needs /usr/bin/tail (coreutils)';

describe('spare_readers: live, in the agent', { skip: NO_ROOT ?? NO_TAIL }, () => {
  const work = mkdtempSync(join(tmpdir(), 'mw-msc-readers-'));
  const tok = `xmrig-msc-${process.pid}`;
  const log = join(work, `${tok}.log`);
  writeFileSync(log, 'nothing\n');
  // A copy of tail outside the system directories: a "miner" that calls itself tail.
  const fakeTail = join(work, 'tail');
  copyFileSync('/usr/bin/tail', fakeTail);
  execFileSync('chmod', ['755', fakeTail]);
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  const config = (spare: boolean) => writeConfig(join(work, `agent-${spare}.yaml`), {
    rules_files: [join(work, 'none.yaml')],
    web: { enabled: false },
    sources: { cpu: { enabled: false }, connections: { enabled: false }, dns: { hosts_files: [], static: {} } },
    detectors: { execwhacker: { enabled: true, default_list: false, rescan_interval_s: 1, spare_readers: spare, configs: { t: { bannedCommandStrings: ['xmrig'] } } } },
  });
  writeFileSync(join(work, 'none.yaml'), '[]\n');

  const outcome = (agent: AgentRun, pid: number) => agent.waitAlert((a) => a.rule === 'minewatch response: kill' && a.output_fields['proc.pid'] === pid, 15_000, `kill outcome for pid ${pid}`);
  const exited = (c: ChildProcess) => new Promise<NodeJS.Signals | number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.signalCode ?? c.exitCode) : c.once('exit', (code, sig) => r(sig ?? code))));

  test('on: /usr/bin/tail -f …xmrig….log lives through rescans (outcome spared, once); the same tail copied to a temp folder dies', async (t) => {
    const agent = new AgentRun(config(true));
    try {
      t.diagnostic(`driver: ${String((await agent.started()).driver)}`);
      const reader = spawn('/usr/bin/tail', ['-f', log], { stdio: 'ignore' });
      children.push(reader);
      const a = await outcome(agent, reader.pid!);
      assert.equal(a.output_fields['mw.response.outcome'], 'spared', a.output);
      assert.match(String(a.output_fields['mw.response.reason']), /^spare_readers: tail is the system's own/);
      // Rescans (every second) look at it again: it lives on, and the spare is reported once.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(reader.exitCode, null, 'the reader still runs');
      assert.equal(reader.signalCode, null);
      assert.equal(agent.alerts.filter((x) => x.rule === 'minewatch response: kill' && x.output_fields['proc.pid'] === reader.pid).length, 1);
      const fake = spawn(fakeTail, ['-f', log], { stdio: 'ignore', argv0: 'tail' });
      children.push(fake);
      assert.equal(await exited(fake), 'SIGKILL');
      const b = await outcome(agent, fake.pid!);
      assert.equal(b.output_fields['mw.response.outcome'], 'done', b.output);
    } finally {
      await agent.stop();
    }
  });

  test('off (the default): cryptnono\'s behaviour, the system tail reading …xmrig….log is killed', async () => {
    const agent = new AgentRun(config(false));
    try {
      await agent.started();
      const reader = spawn('/usr/bin/tail', ['-f', log], { stdio: 'ignore' });
      children.push(reader);
      assert.equal(await exited(reader), 'SIGKILL');
      const a = await outcome(agent, reader.pid!);
      assert.equal(a.output_fields['mw.response.outcome'], 'done', a.output);
    } finally {
      await agent.stop();
    }
  });
});
