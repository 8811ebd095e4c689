/** Miners' command-line options (xmrig, cpuminer and their forks): what tells a miner's argv from a normal tool's. */
import { parseStratumUrl } from './stratum-url.js';

/**
 * Options that only miners have (xmrig, cpuminer, their forks): one is enough. They are long,
 * specific names; a generic tool does not take --donate-level or --randomx-mode.
 */
const MINER_ONLY_OPTIONS = new Set([
  '--donate-level', '--donate-over-proxy', '--cpu-priority', '--max-cpu-usage', '--cpu-max-threads-hint',
  '--nicehash', '--rig-id', '--huge-pages-jit', '--daemon-zmq-port', '--self-select', '--submit-to-origin',
]);
const MINER_ONLY_PREFIXES = ['--randomx-', '--astrobwt-', '--argon2-'];
const ALGO_OPTS = ['--algo', '--algorithm'];
const COIN_OPTS = ['--coin'];
const URL_OPTS = ['--url'];
const USER_OPTS = ['--user', '--userpass'];
const NO_OPTS: string[] = [];

/**
 * Mining algorithm names as miners take them after -a/--algo. Deliberately no generic hash
 * names (sha256, blake2, scrypt, md5): `--algo sha256` is a checksum tool, not a miner.
 */
const MINING_ALGO_RE = new RegExp(
  '^(?:' +
    [
      '(?:rx|cn|cn-lite|cn-heavy|cn-pico|cn-ultralite|cn-femto|argon2|astrobwt|gr)/[a-z0-9._-]+',
      'cn-pico', 'astrobwt', 'randomx[a-z0-9]*', 'random(?:wow|arq|keva|sfx|xl|epic)', 'cryptonight[a-z0-9_/.-]*',
      'kawpow', 'ethash[a-z0-9]*', 'etchash', 'autolykos2?', 'k?heavyhash', 'karlsenhash', 'equihash[0-9_,-]*',
      'zhash', 'beamhash[a-z0-9]*', 'octopus', 'progpow[a-z0-9_-]*', 'firopow', 'ghostrider', 'verushash',
      'cuckatoo[0-9]*', 'cuckaroo[a-z0-9]*', 'cuckoo(?:cycle)?[0-9]*', 'sha256d', 'x16r(?:v2)?', 'x25x',
      'lyra2rev[23]', 'lyra2z', 'neoscrypt', 'yespower[a-z0-9]*', 'nexapow', 'fishhash', 'sha3x', 'dynexsolve',
      'xelishash[a-z0-9]*',
    ].join('|') +
    ')$',
  'i',
);

/** Coins as miners take them after --coin (xmrig: "--coin monero"). */
const MINED_COINS = new Set([
  'monero', 'xmr', 'wownero', 'wow', 'arqma', 'arq', 'keva', 'zephyr', 'zeph', 'ravencoin', 'rvn', 'dero',
  'salvium', 'sal', 'graft', 'turtlecoin', 'trtl', 'conceal', 'ccx', 'haven', 'xhv', 'ergo', 'erg', 'kaspa', 'kas',
  'etc', 'ethw', 'firo', 'neoxa', 'clore',
]);

/** A pool as -o/--url gives it: a stratum-family URL, or a bare host:port (no http scheme). */
const POOL_HOSTPORT_RE = /^(?:[a-z0-9-]+\.)+[a-z0-9-]+:\d{2,5}$/i;

function isPoolValue(v: string): boolean {
  return POOL_HOSTPORT_RE.test(v) || parseStratumUrl(v)?.url === v;
}

/**
 * The value of option `names` at token i: "--algo=rx/0", "--algo rx/0", or for a one-letter
 * option also "-arx/0" (getopt allows the value glued on).
 */
function optionValue(args: string[], i: number, long: string[], short?: string): string | undefined | null {
  const t = args[i]!;
  for (const n of long) {
    if (t === n) return args[i + 1];
    // `--algo=rx/0`: tested without building "--algo=" (this runs for every argument of every exec).
    if (t.length > n.length && t.charCodeAt(n.length) === 61 && t.startsWith(n)) return t.slice(n.length + 1);
  }
  if (short) {
    if (t === short) return args[i + 1];
    if (t.startsWith(short) && t.length > short.length && !t.startsWith('--')) return t.slice(short.length);
  }
  return null; // not this option
}

/**
 * True when the arguments carry a miner's options. Each signal is one a normal tool does not
 * produce: a miner-only option; -a/--algo naming a mining algorithm; --coin naming a mined coin;
 * or -o/--url naming a pool (host:port or stratum URL) together with -u/--user or -O/--userpass.
 * So `gcc -o out -u sym`, `tar -a …` and `sha256sum --algo sha256` stay quiet.
 */
export function hasMinerFlags(args: readonly string[] | undefined): boolean {
  if (!args || args.length === 0) return false;
  const a = args as string[];
  let pool = false;
  let user = false;
  for (let i = 0; i < a.length; i++) {
    const t = a[i]!;
    if (t.length < 2 || t[0] !== '-') continue;
    const eq = t.startsWith('--') ? t.indexOf('=') : -1;
    const name = eq < 0 ? t : t.slice(0, eq);
    if (MINER_ONLY_OPTIONS.has(name)) return true;
    if (name.startsWith('--') && MINER_ONLY_PREFIXES.some((p) => name.startsWith(p))) return true;

    const algo = optionValue(a, i, ALGO_OPTS, '-a');
    if (algo && MINING_ALGO_RE.test(algo)) return true;
    const coin = optionValue(a, i, COIN_OPTS);
    if (coin && MINED_COINS.has(coin.toLowerCase())) return true;

    const url = optionValue(a, i, URL_OPTS, '-o');
    if (url && isPoolValue(url)) pool = true;
    if (optionValue(a, i, USER_OPTS, '-u')) user = true;
    // -O takes user:password; demanding the colon keeps gcc's -O2 out.
    if (optionValue(a, i, NO_OPTS, '-O')?.includes(':')) user = true;
    if (pool && user) return true;
  }
  return false;
}
