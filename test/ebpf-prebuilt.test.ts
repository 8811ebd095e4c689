/**
 * The prebuilt eBPF parts (prebuilds/ebpf-linux-x64, made by scripts/prebuild-ebpf.sh) are what a
 * host with only Node and npm runs: they must match the sources beside them (else a change to the
 * C that was not followed by the script fails here), need no libbpf on the host, and load and
 * report execs on this kernel.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { builtBeforeSources, EBPF_PREBUILT_DIR, loadEbpfAddon, prebuiltMismatch } from '../src/sources/ebpf/addon.js';
import { EbpfSource } from '../src/sources/ebpf/index.js';
import type { ProcNotice } from '../src/sources/types.js';
import { isRoot } from './helpers/live.js';
import { ROOT } from './helpers/paths.js';

test('the prebuilt parts were made from the sources in native/ebpf (else: run scripts/prebuild-ebpf.sh)', () => {
  assert.equal(prebuiltMismatch(), undefined);
});

test('a changed source makes the prebuilt parts refused, naming the file', () => {
  const root = mkdtempSync(join(tmpdir(), 'mw-prebuilt-'));
  try {
    cpSync(join(ROOT, 'prebuilds', 'ebpf-linux-x64'), join(root, 'prebuilds', 'ebpf-linux-x64'), { recursive: true });
    cpSync(join(ROOT, 'native', 'ebpf'), join(root, 'native', 'ebpf'), { recursive: true, filter: (s) => !/\/(build|out)$/.test(s) });
    assert.equal(prebuiltMismatch(root), undefined);
    writeFileSync(join(root, 'native', 'ebpf', 'minewatch.h'), '/* another record layout */\n', { flag: 'a' });
    assert.match(prebuiltMismatch(root) ?? '', /built from another native\/ebpf\/minewatch\.h/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a part built here before its sources changed is named stale (the loader passes it over for matching prebuilt parts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-stale-'));
  try {
    for (const f of ['addon.c', 'minewatch.bpf.c', 'minewatch.h']) writeFileSync(join(dir, f), '/* source */\n');
    const part = join(dir, 'minewatch_ebpf.node');
    writeFileSync(part, 'built');
    const t = Date.now() / 1000;
    for (const f of ['addon.c', 'minewatch.bpf.c', 'minewatch.h']) utimesSync(join(dir, f), t - 100, t - 100);
    utimesSync(part, t - 50, t - 50);
    assert.equal(builtBeforeSources(part, dir), undefined, 'built after every source: not stale');
    utimesSync(join(dir, 'minewatch.h'), t, t);
    assert.equal(builtBeforeSources(part, dir), 'minewatch.h', 'a source changed since the build');
    assert.equal(builtBeforeSources(join(dir, 'absent.node'), dir), undefined, 'no part built here: nothing to call stale');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the prebuilt loader links libbpf in: it needs only libelf, zlib and glibc', () => {
  const out = execFileSync('ldd', [join(EBPF_PREBUILT_DIR, 'minewatch_ebpf.node')], { encoding: 'utf8' });
  const needed = [...out.matchAll(/^\s*(\S+\.so\S*)/gm)].map((m) => m[1]!).filter((l) => !l.startsWith('linux-vdso'));
  assert.deepEqual(needed.filter((l) => !/^(libelf|libz|libc|ld-linux|\/lib64\/ld-linux)/.test(l)), [], out);
  assert.ok(!/libbpf/.test(out), out);
});

test('the prebuilt parts load on this kernel and report an exec', isRoot() && existsSync('/sys/kernel/btf/vmlinux') ? {} : { skip: 'needs root and a kernel with BTF' }, async () => {
  const loaded = loadEbpfAddon({ prefer: 'prebuilt' });
  assert.ok(!('error' in loaded), 'error' in loaded ? loaded.error : '');
  assert.equal(loaded.parts, 'prebuilt');
  const execs: ProcNotice[] = [];
  const src = new EbpfSource({ addon: loaded, lookup: () => undefined, containerOf: () => undefined, wanted: () => false });
  await src.start((n) => {
    if (n.kind === 'exec') execs.push(n);
  });
  try {
    const marker = `mw-prebuilt-${process.pid}`;
    const deadline = Date.now() + 10_000;
    while (!execs.some((n) => n.exec?.argv.includes(marker)) && Date.now() < deadline) {
      spawnSync('/bin/true', [marker]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seen = execs.find((n) => n.exec?.argv.includes(marker));
    assert.ok(seen, 'no exec of /bin/true reported through the prebuilt parts');
    assert.equal(seen.exec?.exepath, '/usr/bin/true');
  } finally {
    await src.stop();
  }
});
