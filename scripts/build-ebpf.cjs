#!/usr/bin/env node
// Builds the eBPF driver's two parts, each only where its tools are, and never fails the install:
// without them the agent uses the prebuilt parts (prebuilds/ebpf-linux-x64, scripts/prebuild-ebpf.sh),
// else the proc connector, and `minewatch run` and `minewatch doctor` say why.
//
//   --object   native/ebpf/out/minewatch.bpf.o: clang -target bpf against a vmlinux.h that bpftool
//              dumps from this host's BTF (CO-RE: the object then loads on any kernel with BTF).
//              Run by `npm run build`; the object ships in the package, so users need no clang.
//   --addon    native/ebpf/build/Release/minewatch_ebpf.node: the libbpf loader (node-gyp), needs
//              libbpf-dev. Run at install, after the proc connector's addon.
//   (neither)  both.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, statSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

const ROOT = join(__dirname, '..');
const SRC = join(ROOT, 'native', 'ebpf');
const OUT = join(SRC, 'out');
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const parts = args.filter((a) => a !== '--quiet');
const wantObject = parts.length === 0 || parts.includes('--object');
const wantAddon = parts.length === 0 || parts.includes('--addon');

function say(msg) {
  if (!quiet) process.stderr.write(`minewatch: ${msg}\n`);
}

function has(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
// The loader (src/sources/ebpf/addon.ts builtBeforeSources) calls a part built here stale when any
// of these is newer than it, the record layout being shared by all three: each part is rebuilt on
// the same terms, else a change to addon.c alone left a "stale" object the agent refused.
const SOURCES = ['addon.c', 'minewatch.bpf.c', 'minewatch.h'].map((f) => join(SRC, f));
const builtAfterSources = (part) => existsSync(part) && SOURCES.every((s) => mtime(s) <= mtime(part));

// scripts/prebuild-ebpf.sh ships both parts prebuilt; the agent takes them where none is built here
// (and checks they were made from these sources), so a missing tool then costs nothing.
const PREBUILT = join(ROOT, 'prebuilds', 'ebpf-linux-x64');
const fallback = (part) => (existsSync(join(PREBUILT, part)) ? `the agent will use the prebuilt one (${join('prebuilds', 'ebpf-linux-x64', part)})` : 'the agent will use the proc connector');

function buildObject() {
  const obj = join(OUT, 'minewatch.bpf.o');
  const vmlinux = join(OUT, 'vmlinux.h');
  if (builtAfterSources(obj)) return;
  const otherwise = fallback('minewatch.bpf.o');
  if (!has('clang')) return say(`eBPF object not built: clang is missing (apt-get install clang); ${otherwise}`);
  mkdirSync(OUT, { recursive: true });
  if (!existsSync(vmlinux)) {
    const btf = process.env.MINEWATCH_BTF ?? '/sys/kernel/btf/vmlinux';
    if (!has('bpftool') || !existsSync(btf)) {
      return say(`eBPF object not built: vmlinux.h needs bpftool and ${btf} (apt-get install bpftool on a kernel with BTF); ${otherwise}`);
    }
    let text;
    try {
      text = execFileSync('bpftool', ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return say(`eBPF object not built: bpftool could not dump ${btf}; ${otherwise}`);
    }
    writeFileSync(vmlinux, text);
  }
  try {
    execFileSync('clang', ['-target', 'bpf', '-D__TARGET_ARCH_x86', '-g', '-O2', '-Wall', '-Wno-unused-function',
      `-I${OUT}`, `-I${SRC}`, '-c', join(SRC, 'minewatch.bpf.c'), '-o', obj], { stdio: ['ignore', 'inherit', 'inherit'] });
    say(`eBPF object built: ${obj}`);
  } catch {
    say(`eBPF object not built: clang failed (see above); ${otherwise}`);
  }
}

/** node-gyp as npm runs it, else npm's own copy, else one on PATH. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return [process.execPath, process.env.npm_config_node_gyp];
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, bundled];
  return has('node-gyp') ? ['node-gyp'] : undefined;
}

function buildAddon() {
  if (process.platform !== 'linux') return;
  const addon = join(SRC, 'build', 'Release', 'minewatch_ebpf.node');
  if (builtAfterSources(addon)) return;
  // MINEWATCH_LIBBPF_H: where libbpf.h is looked for (tests point it at nothing).
  if (!existsSync(process.env.MINEWATCH_LIBBPF_H ?? '/usr/include/bpf/libbpf.h')) {
    return say(`eBPF loader not built: libbpf-dev is missing (apt-get install libbpf-dev, then npm rebuild minewatch); ${fallback('minewatch_ebpf.node')}`);
  }
  const gyp = nodeGyp();
  if (!gyp) return say(`eBPF loader not built: node-gyp not found; ${fallback('minewatch_ebpf.node')}`);
  const extra = existsSync('/usr/include/node/node_api.h') && !process.env.npm_config_nodedir ? ['--nodedir=/usr'] : [];
  try {
    execFileSync(gyp[0], [...gyp.slice(1), 'rebuild', ...extra, ...(quiet ? ['--loglevel=error'] : [])], { cwd: SRC, stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'] });
  } catch {
    say(`eBPF loader not built: node-gyp failed (see above); ${fallback('minewatch_ebpf.node')}`);
  }
}

for (const [want, build] of [[wantObject, buildObject], [wantAddon, buildAddon]]) {
  try {
    if (want) build();
  } catch (e) {
    say(`eBPF build step skipped: ${e && e.message ? e.message.split('\n')[0] : e}`);
  }
}
process.exit(0);
