/**
 * The miner check for CI definitions (GitHub workflows and composite actions, GitLab CI,
 * CircleCI, Azure Pipelines, Jenkinsfiles). Falco's github plugin flags a workflow when any line
 * contains one of a few words ("pool", "wallet", "hashrate", "xmrig", …), so a `poolSize` setting
 * or a comment is a miner and a base64-wrapped one is not. This check reads what the pipeline
 * runs instead:
 *
 * - YAML files are parsed; comments vanish with the parser, keys are never read as commands, and
 *   descriptive values (name, description, if, runs-on, …) are skipped. Every other value is read
 *   as shell (run, script, command, with: inputs, env: values, inputs' defaults …), image
 *   references (image:, container:, services, uses: docker://) as images, and uses: as an action
 *   reference. A Jenkinsfile's string literals are read as shell.
 * - Shell is cut into simple commands (shell.ts). A miner is: a known miner program run, or
 *   fetched/unpacked (a URL or path naming it, a versioned archive such as xmrig-6.21.0-linux…);
 *   a known miner image; miner options (mw.miner.flags' test); a stratum URL; a pool host from the
 *   IOC lists; a Monero wallet, or a Bitcoin/Ethereum wallet given as a miner's user or next to
 *   another finding (alone, an Ethereum address in a dapp's tests is not a miner).
 * - `bash -c "…"`, `eval "…"`, base64 and hex blobs (decoded when they decode to text) are read again,
 *   up to MAX_DEPTH levels, so `echo … | base64 -d | sh` hides nothing.
 */
import { LineCounter, type Node, parseDocument, isMap, isPair, isScalar, isSeq, visit, type Pair, type Scalar } from 'yaml';
import { hasMinerFlags } from '../knowledge/miner-flags.js';
import { parseStratumUrl } from '../knowledge/stratum-url.js';
import { findWallets, walletType } from '../knowledge/wallets.js';
import { isPoolHost, type MinerIocs, minerIocs } from '../knowledge/miner-iocs.js';
import { basename, effectiveArgv, inlineScript, splitCommands, type Word } from './shell.js';

export interface MinerFinding {
  /** What was found: the miner's name (xmrig, t-rex, …), stratum, pool, wallet or miner_flags. */
  type: string;
  /** File the finding is in, as given to the scanner. */
  file: string;
  /** 1-based line in that file. */
  line: number;
  /** What was seen, in a few words, e.g. "runs xmrig" or "stratum URL stratum+tcp://…". */
  detail: string;
}

export interface MinerScanResult {
  findings: MinerFinding[];
  /** Local actions the file uses (`uses: ./.github/actions/x`): a caller that can fetch them should scan them too. */
  localActions: string[];
  /** Set when the file is not valid YAML: it was then read line by line as shell. */
  parseError?: string;
}

export type CiFileKind = 'yaml' | 'jenkins';

/** How deep `bash -c`, eval and base64 are unwrapped. */
const MAX_DEPTH = 4;

/** Values that describe rather than run: never read as commands. */
const DESCRIPTIVE_KEYS = new Set([
  'name', 'description', 'desc', 'title', 'displayname', 'display_name', 'summary', 'author', 'branding', 'if',
  'condition', 'on', 'branches', 'branches-ignore', 'paths', 'paths-ignore', 'tags-ignore', 'types', 'permissions',
  'concurrency', 'runs-on', 'id', 'needs', 'dependson', 'stage', 'stages', 'cron', 'timeout-minutes',
  'continue-on-error', 'shell', 'working-directory', 'workingdirectory', 'pool', 'vmimage', 'trigger', 'pr',
  'outputs', 'resource_class', 'coverage', 'when', 'allow_failure', 'retry', 'interruptible', 'artifacts', 'cache',
]);

const ARCHIVE_EXT = /\.(?:git|tar\.gz|tar\.xz|tar\.bz2|tgz|txz|zip|7z|gz|xz|exe|deb|rpm|apk|appimage|sh)$/;
/** What may follow a miner's name in a release file or folder name: xmrig-6.21.0-linux-x64, xmrig_setup. */
const VERSIONED_SUFFIX = /^[-_.](?:v?\d|linux|static|x64|x86|amd64|arm64|aarch64|setup|install|notls|cuda|opencl|proxy|bin|master|main|latest|mo\b|gcc|msvc|focal|jammy|bionic|xenial|freebsd|macos)/;
const DOCKER_CLIS = new Set(['docker', 'podman', 'nerdctl', 'ctr', 'crictl']);
const DOCKER_IMAGE_VERBS = new Set(['run', 'pull', 'create']);
/** docker/podman run options that take a value as the next word (so that word is not the image). */
const DOCKER_VALUE_OPTS = new Set([
  '--name', '-e', '--env', '--env-file', '-v', '--volume', '-p', '--publish', '--network', '--net', '--entrypoint', '-w',
  '--workdir', '-u', '--user', '--cpus', '-c', '--cpu-shares', '-m', '--memory', '--restart', '-l', '--label', '--mount',
  '--platform', '-h', '--hostname', '--add-host', '--log-driver', '--log-opt', '--cap-add', '--cap-drop', '--device',
  '--gpus', '--runtime', '--pull', '--security-opt', '--ulimit', '--shm-size', '--tmpfs', '--dns', '--ipc', '--pid',
  '--cidfile', '--cgroup-parent', '--cpuset-cpus', '--stop-signal', '--health-cmd', '--expose', '--link', '--volumes-from',
]);
/** Options after which a miner expects its payout address. */
const USER_OPTS = new Set(['-u', '--user', '--wallet', '-w', '--address', '--login', '-l', '--userpass', '-O']);
// At most 8 labels: an unbounded repeat backtracks quadratically over a long a.a.a.… run.
const HOST_RE = /\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,8}[a-z]{2,24}\b/gi;
const BASE64_RE = /[A-Za-z0-9+/]{24,}={0,2}/g;
/** Hex text (xxd -p, printf '\\x..' runs, hex strings fed to python's bytes.fromhex). */
const HEX_RE = /(?:\\x[0-9a-fA-F]{2}){12,}|\b[0-9a-fA-F]{24,}\b/g;

interface Hit {
  type: string;
  detail: string;
  /** Text that appears in the source as written, to place the finding on its line. */
  needle: string;
  /** A Bitcoin/Ethereum address alone: a finding only next to a strong one. */
  weak?: boolean;
  /** Offset in the analysed value where the finding starts (for unwrapped text: where the wrapper starts). */
  at: number;
}

/** The name of the miner a file or folder name stands for, if it stands for one. */
export function minerNameOf(iocs: MinerIocs, segment: string): string | undefined {
  let s = segment.toLowerCase().replace(/[?#].*$/, '');
  s = s.replace(ARCHIVE_EXT, '');
  if (iocs.binaries.has(s)) return s;
  let best: string | undefined;
  for (const b of iocs.binaries) {
    if (s.startsWith(b) && VERSIONED_SUFFIX.test(s.slice(b.length)) && (!best || b.length > best.length)) best = b;
  }
  return best;
}

/** The miner an image reference runs: a listed miner image, or an image named after a miner. */
export function minerImageOf(iocs: MinerIocs, ref: string): string | undefined {
  let r = ref.trim().toLowerCase().replace(/^docker:\/\//, '');
  r = r.replace(/@sha256:[0-9a-f]+$/, '');
  const parts = r.split('/');
  // A registry host (has a dot or a port, or is localhost) is not part of the repository name.
  if (parts.length > 1 && (/[.:]/.test(parts[0]!) || parts[0] === 'localhost')) parts.shift();
  const last = parts.at(-1)!.replace(/:[^/]*$/, '');
  const repo = [...parts.slice(0, -1), last].join('/');
  if (iocs.images.has(repo)) return minerNameOf(iocs, last) ?? 'miner_image';
  return minerNameOf(iocs, last) ?? (parts.length > 1 ? minerNameOf(iocs, parts[0]!) : undefined);
}

function short(s: string, n = 80): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? one.slice(0, n - 1) + '…' : one;
}

/** Wallet addresses are public, but a shortened one reads better and is enough to grep for. */
function shortWallet(a: string): string {
  return a.length > 16 ? `${a.slice(0, 8)}…${a.slice(-6)}` : a;
}

class TextAnalyzer {
  constructor(private readonly iocs: MinerIocs) {}

  /** Everything in a value that a pipeline hands to something that runs. */
  analyze(text: string, depth = 0): Hit[] {
    const hits: Hit[] = [];
    if (depth > MAX_DEPTH || text.length === 0) return hits;
    this.textSignals(text, hits, depth);
    for (const cmd of splitCommands(text)) this.command(cmd, hits, depth);
    return hits;
  }

  /** Signals that need no grammar: stratum URLs, pool hosts, wallets, base64 blobs. */
  private textSignals(text: string, hits: Hit[], depth: number): void {
    for (let rest = text, guard = 0; guard < 50; guard++) {
      const s = parseStratumUrl(rest);
      if (!s) break;
      const at = text.length - rest.length + rest.indexOf(s.url);
      hits.push({ type: 'stratum', detail: `stratum URL ${short(s.url)}`, needle: s.url, at });
      rest = text.slice(at + s.url.length);
    }
    // matchAll: each call gets its own iterator, so the recursion below cannot reset a shared lastIndex.
    for (const m of text.matchAll(HOST_RE)) {
      if (isPoolHost(this.iocs, m[0])) hits.push({ type: 'pool', detail: `mining pool host ${m[0].toLowerCase()}`, needle: m[0], at: m.index });
    }
    for (const w of findWallets(text)) {
      hits.push({ type: 'wallet', detail: `${w.type} wallet ${shortWallet(w.address)}`, needle: w.address, weak: w.type !== 'monero', at: text.indexOf(w.address) });
    }
    this.encoded(text, hits, depth);
  }

  /** Text hidden as base64 or hex, decoded and read again. */
  private encoded(text: string, hits: Hit[], depth: number): void {
    const blobs: Array<{ raw: string; at: number; decoded: string; how: string }> = [];
    for (const m of text.matchAll(BASE64_RE)) {
      const decoded = decodeBase64Text(m[0]);
      if (decoded !== undefined) blobs.push({ raw: m[0], at: m.index, decoded, how: 'base64' });
    }
    for (const m of text.matchAll(HEX_RE)) {
      const decoded = decodeHexText(m[0]);
      if (decoded !== undefined) blobs.push({ raw: m[0], at: m.index, decoded, how: 'hex' });
    }
    for (const b of blobs) {
      for (const h of this.analyze(b.decoded, depth + 1)) {
        hits.push({ ...h, detail: `${h.detail} (in ${b.how} ${short(b.raw, 24)})`, needle: b.raw.slice(0, 40), at: b.at });
      }
    }
  }

  private command(cmd: Word[], hits: Hit[], depth: number): void {
    const argv = effectiveArgv(cmd);
    if (argv.length === 0) return;
    const prog = argv[0]!;
    const progName = minerNameOf(this.iocs, basename(prog.text));
    if (progName) hits.push({ type: progName, detail: `runs ${short(prog.text)}`, needle: prog.raw, at: prog.start });
    // Downloads, unpacking, chmod, copies: any URL or path that names a miner.
    for (const w of cmd) {
      if (w === prog && progName) continue;
      if (!w.text.includes('/') && !ARCHIVE_EXT.test(w.text.toLowerCase()) && !/\d/.test(w.text)) continue;
      const segs = w.text.split('/').filter(Boolean);
      for (const seg of segs) {
        const name = minerNameOf(this.iocs, seg);
        if (name) {
          hits.push({ type: name, detail: `fetches or names ${short(w.text)}`, needle: w.raw, at: w.start });
          break;
        }
      }
    }
    // docker run metal3d/xmrig, podman pull …/xmrig-proxy
    if (DOCKER_CLIS.has(basename(prog.text))) {
      const verb = argv.findIndex((w, i) => i > 0 && DOCKER_IMAGE_VERBS.has(w.text));
      if (verb > 0) {
        for (let i = verb + 1; i < argv.length; i++) {
          const t = argv[i]!.text;
          if (t.startsWith('-')) {
            if (DOCKER_VALUE_OPTS.has(t)) i++; // --name svc: skip the value too
            continue;
          }
          const name = minerImageOf(this.iocs, t);
          if (name) hits.push({ type: name, detail: `container image ${short(t)}`, needle: argv[i]!.raw, at: argv[i]!.start });
          break; // the first word that is neither an option nor an option's value is the image
        }
      }
    }
    const args = argv.slice(1).map((w) => w.text);
    if (hasMinerFlags(args)) hits.push({ type: 'miner_flags', detail: `miner options: ${short(argv.map((w) => w.text).join(' '))}`, needle: prog.raw, at: prog.start });
    for (let i = 1; i < argv.length; i++) {
      const t = argv[i]!.text;
      const eq = t.indexOf('=');
      const opt = eq > 0 && t.startsWith('--') ? t.slice(0, eq) : t;
      if (!USER_OPTS.has(opt)) continue;
      const value = eq > 0 && t.startsWith('--') ? t.slice(eq + 1) : argv[i + 1]?.text;
      const addr = value?.split(/[.+:/]/)[0];
      const type = addr ? walletType(addr) : undefined;
      if (type) hits.push({ type: 'wallet', detail: `${type} wallet ${shortWallet(addr!)} given to ${opt}`, needle: addr!, at: argv[i]!.start });
    }
    const inner = inlineScript(argv);
    if (inner) for (const h of this.analyze(inner.text, depth + 1)) hits.push({ ...h, at: inner.start });
  }

  /** An action reference (owner/repo/path@ref): named after a miner, or a docker:// image. */
  uses(ref: string): Hit[] {
    if (ref.startsWith('docker://')) return this.image(ref);
    const path = ref.split('@')[0]!;
    for (const seg of path.split('/')) {
      const name = minerNameOf(this.iocs, seg);
      if (name) return [{ type: name, detail: `uses ${short(ref)}`, needle: ref, at: 0 }];
    }
    return [];
  }

  image(ref: string): Hit[] {
    const name = minerImageOf(this.iocs, ref);
    return name ? [{ type: name, detail: `container image ${short(ref)}`, needle: ref.replace(/^docker:\/\//, ''), at: 0 }] : [];
  }
}

/** Base64 that decodes to text (a script, a command line); undefined for binary or non-base64. */
export function decodeBase64Text(s: string): string | undefined {
  if (s.length % 4 === 1) return undefined;
  // Long runs of letters only are words or hashes, not base64 of a script.
  // (Two plain tests: a pattern like /[A-Z].*[a-z]/ is quadratic over a long run of one case.)
  if (!/[0-9+/=]/.test(s) && !(/[A-Z]/.test(s) && /[a-z]/.test(s))) return undefined;
  return asCommandText(Buffer.from(s, 'base64'));
}

/** Enough printable text with a space, slash or URL in it to be a command, not binary or a hash. */
function asCommandText(buf: Buffer): string | undefined {
  if (buf.length < 12) return undefined;
  let printable = 0;
  for (const b of buf) if ((b >= 32 && b < 127) || b === 9 || b === 10 || b === 13) printable++;
  if (printable / buf.length < 0.97) return undefined;
  const text = buf.toString('latin1');
  return /\s/.test(text) || text.includes('/') ? text : undefined;
}

/** Hex (plain or \\x-escaped) that decodes to command text; a git sha decodes to binary and is dropped. */
export function decodeHexText(s: string): string | undefined {
  const hex = s.replace(/\\x/g, '');
  if (hex.length % 2 !== 0) return undefined;
  return asCommandText(Buffer.from(hex, 'hex'));
}

/** A piece of the file read as one value, with the lines it spans. */
interface Snippet {
  text: string;
  kind: 'shell' | 'image' | 'uses';
  firstLine: number;
  lastLine: number;
  /** The line of an offset in `text`, when the value is written out verbatim (literal blocks, one-line values, Groovy strings). */
  lineAt?: (at: number) => number;
}

function newlinesBefore(text: string, at: number): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Scan one CI definition. `file` is only used to label findings. */
export function scanCiText(text: string, file: string, kind: CiFileKind = 'yaml', iocs: MinerIocs = minerIocs()): MinerScanResult {
  const lines = text.split('\n');
  const result: MinerScanResult = { findings: [], localActions: [] };
  let snippets: Snippet[];
  if (kind === 'jenkins') {
    snippets = groovyStrings(text);
  } else {
    const parsed = yamlSnippets(text);
    if ('error' in parsed) {
      result.parseError = parsed.error;
      snippets = lines.map((l, i) => ({ text: l.replace(/(^|\s)#.*$/, ''), kind: 'shell' as const, firstLine: i + 1, lastLine: i + 1 }));
    } else {
      snippets = parsed.snippets;
      result.localActions = parsed.localActions;
    }
  }
  const analyzer = new TextAnalyzer(iocs);
  // One finding per (type, line, text): the same wallet seen as text and as -u's value is one finding, strong if either is.
  const found = new Map<string, MinerFinding & { weak: boolean }>();
  for (const sn of snippets) {
    const hits = sn.kind === 'image' ? analyzer.image(sn.text) : sn.kind === 'uses' ? analyzer.uses(sn.text) : analyzer.analyze(sn.text);
    for (const h of hits) {
      const line = sn.lineAt ? sn.lineAt(h.at) : locate(lines, h.needle, sn.firstLine, sn.lastLine);
      const key = `${h.type}:${line}:${h.needle}`;
      const had = found.get(key);
      if (had) had.weak &&= !!h.weak;
      else found.set(key, { type: h.type, file, line, detail: h.detail, weak: !!h.weak });
    }
  }
  const all = [...found.values()];
  // A Bitcoin or Ethereum address counts only beside a real miner signal.
  const strong = all.some((f) => !f.weak);
  result.findings = all.filter((f) => strong || !f.weak).map(({ weak: _w, ...f }) => f);
  result.findings.sort((a, b) => a.line - b.line);
  return result;
}

/** The line (1-based) in [first, last] where `needle` is written; `first` when it is not found verbatim. */
function locate(lines: string[], needle: string, first: number, last: number): number {
  const probe = needle.split('\n')[0]!.slice(0, 60);
  if (probe.length >= 3) {
    for (let l = first; l <= last && l <= lines.length; l++) if (lines[l - 1]!.includes(probe)) return l;
  }
  return first;
}

function keyOf(p: Pair): string | undefined {
  return isScalar(p.key) ? String(p.key.value).toLowerCase() : undefined;
}

function yamlSnippets(text: string): { snippets: Snippet[]; localActions: string[] } | { error: string } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: false, strict: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const at = e.linePos?.[0];
    return { error: `${at ? `line ${at.line}:${at.col}: ` : ''}${e.message.split('\n')[0]}` };
  }
  const snippets: Snippet[] = [];
  const localActions: string[] = [];
  const lineOf = (offset: number) => lc.linePos(offset).line;
  visit(doc, {
    Scalar(key, node: Scalar, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.range) return;
      const keys: string[] = [];
      for (const anc of path) if (isPair(anc)) keys.push(keyOf(anc as Pair) ?? '');
      const k = keys.at(-1) ?? '';
      const parent = keys.at(-2) ?? '';
      const inSeqUnder = (name: string) => k === name && isSeq(path.at(-1) as Node);
      const firstLine = lineOf(node.range[0]);
      const lastLine = lineOf(Math.max(node.range[0], node.range[1] - 1));
      const value = node.value;
      let kind: Snippet['kind'] = 'shell';
      if (k === 'image' || k === 'container' || (k === 'name' && (parent === 'image' || parent === 'services')) || inSeqUnder('services')
        || (parent === 'services' && isMap(path.at(-3) as Node))) {
        kind = 'image';
      } else if (k === 'uses') {
        if (value.startsWith('./')) localActions.push(value.replace(/\/+$/, ''));
        kind = 'uses';
      } else if (keys.some((x) => DESCRIPTIVE_KEYS.has(x))) {
        return;
      }
      // Offsets map to lines exactly in a literal block (content starts on the line after `|`) and in a one-line value.
      const lineAt = node.type === 'BLOCK_LITERAL' ? (at: number) => firstLine + 1 + newlinesBefore(value, at)
        : firstLine === lastLine ? () => firstLine : undefined;
      snippets.push({ text: value, kind, firstLine, lastLine, lineAt });
    },
  });
  return { snippets, localActions };
}

/** String literals of a Groovy (Jenkinsfile) source, comments left out. */
function groovyStrings(text: string): Snippet[] {
  const out: Snippet[] = [];
  const re = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|'''[\s\S]*?'''|"""[\s\S]*?"""|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g;
  const lineAt = (off: number) => text.slice(0, off).split('\n').length;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const s = m[0];
    if (s.startsWith('//') || s.startsWith('/*')) continue;
    const q = s.startsWith("'''") || s.startsWith('"""') ? 3 : 1;
    const first = lineAt(m.index);
    const body = s.slice(q, s.length - q);
    out.push({ text: body, kind: 'shell', firstLine: first, lastLine: lineAt(m.index + s.length), lineAt: (at) => first + newlinesBefore(body, at) });
  }
  return out;
}

/** The finding types of a scan, each once, in order: github.workflow.miners.type. */
export function minerTypes(findings: readonly { type: string }[]): string[] {
  return [...new Set(findings.map((f) => f.type))];
}
