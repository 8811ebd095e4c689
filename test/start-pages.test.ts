/**
 * Letting go of the start-only program pages (src/platform/start-pages.ts,
 * native/resident_pages.c), in a child node process: the node binary's resident pages drop, the
 * process goes on running (its code and read-only data fault back in), no other file's pages are
 * dropped, and no mapping with written private pages (the RELRO segments that hold relocated
 * pointers) loses them; the agent lets them go after its start.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { loadNativeAddon } from '../src/platform/native-addon.js';
import { AgentRun, writeConfig } from './helpers/agent-run.js';
import { mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MODULE = new URL('../src/platform/start-pages.js', import.meta.url).href;
/** The node binary as /proc/self/smaps names it. */
const NODE = realpathSync(process.execPath);

const addon = loadNativeAddon();
const skip =
  'error' in addon
    ? `SKIPPED: the native addon is not built here (${addon.error})`
    : typeof addon.addon.dropCleanFilePages !== 'function'
      ? 'SKIPPED: the native addon predates dropCleanFilePages: rebuild it (npm rebuild)'
      : false;

interface Mapping {
  range: string;
  path: string;
  rss: number;
  anon: number;
}

interface ChildReport {
  drop: { applied: boolean; mappings?: number; bytes?: number; reason?: string };
  before: Mapping[];
  after: Mapping[];
  /** Work done after the drop, checked against the same work done before it. */
  same: boolean;
}

function inChild(): ChildReport {
  const program = `
    import { dropStartPages } from ${JSON.stringify(MODULE)};
    import { readFileSync } from 'node:fs';
    import { createHash } from 'node:crypto';
    const maps = () => {
      const out = [];
      let cur;
      for (const line of readFileSync('/proc/self/smaps', 'latin1').split('\\n')) {
        const head = /^([0-9a-f]+-[0-9a-f]+) (\\S+) \\S+ \\S+ \\d+\\s*(.*)$/.exec(line);
        if (head) { cur = { range: head[1], perms: head[2], path: head[3], rss: 0, anon: 0 }; out.push(cur); continue; }
        const kv = /^(Rss|Anonymous):\\s+(\\d+) kB/.exec(line);
        if (kv && cur) cur[kv[1] === 'Rss' ? 'rss' : 'anon'] = Number(kv[2]);
      }
      return out;
    };
    const work = () => JSON.stringify([createHash('sha256').update('minewatch').digest('hex'), new Intl.NumberFormat('en-US').format(1234567.5), /\\p{L}+/u.exec('42 mining')[0], structuredClone({ a: [1, 2n] }).a.length]);
    const first = work();
    const before = maps();
    const drop = dropStartPages();
    const after = maps();
    const same = work() === first;
    console.log(JSON.stringify({ drop, before, after, same }));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8' })) as ChildReport;
}

test('the node binary\'s clean pages are let go, the process runs on, written private pages are kept', { skip }, () => {
  const r = inChild();
  assert.equal(r.drop.applied, true, JSON.stringify(r.drop));
  assert.ok((r.drop.mappings ?? 0) > 0 && (r.drop.bytes ?? 0) > 0, JSON.stringify(r.drop));
  const node = (ms: Mapping[]): number => ms.filter((m) => m.path === NODE).reduce((a, m) => a + m.rss, 0);
  assert.ok(node(r.after) < node(r.before) / 2, `the node binary's resident kB: ${node(r.before)} before, ${node(r.after)} after`);
  assert.ok(r.same, 'the same work gives the same answer after the drop');
  // Only the node binary's: every other file's mappings keep what they had (the SQLite addon's
  // pages are the first alert's insert).
  const others = r.before.filter((m) => m.path.startsWith('/') && m.path !== NODE && m.rss > 0);
  assert.ok(others.some((m) => m.path.includes('libc')), 'the C library is mapped');
  for (const m of others) {
    const a = r.after.find((x) => x.range === m.range);
    assert.ok(a && a.rss >= m.rss, `${m.path} ${m.range}: ${m.rss} kB resident before, ${a?.rss ?? 0} kB after`);
  }
  // Every mapping with written private pages before still has them all after.
  const written = r.before.filter((m) => m.anon > 0 && m.path.startsWith('/'));
  assert.ok(written.length > 0, 'the node binary\'s RELRO segment, at least');
  for (const m of written) {
    const a = r.after.find((x) => x.range === m.range);
    assert.ok(a, `${m.path} ${m.range} still mapped`);
    assert.ok(a.anon >= m.anon, `${m.path} ${m.range}: ${m.anon} kB written before, ${a.anon} kB after`);
  }
});

test('a path that is not absolute is refused before anything is dropped', { skip }, () => {
  const a = (addon as { addon: { dropCleanFilePages: (p: string) => unknown } }).addon;
  assert.throws(() => a.dropCleanFilePages('node'), /absolute path/);
  assert.throws(() => a.dropCleanFilePages(''), /absolute path/);
});

test('the agent lets them go a few seconds after its start', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-startpages-'));
  const config = writeConfig(join(dir, 'c.yaml'), { rules_files: ['default'] });
  const agent = new AgentRun(config, { args: ['--driver', 'procfs'], env: { MINEWATCH_LOG_LEVEL: 'debug' } });
  try {
    await agent.started(60_000);
    const line = await agent.waitLog((l) => l.msg === 'start-only program pages let go', 15_000, 'the start pages let go');
    assert.ok(Number(line.mappings) > 0 && Number(line.mb) > 1, JSON.stringify(line));
  } finally {
    await agent.stop();
  }
});
