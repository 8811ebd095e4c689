/**
 * The miner indicators the CI checks use: miner program names, miner images and pool hosts. They
 * come from the lists in rules/minewatch_rules.yaml (mw_known_miner_binaries,
 * mw_known_miner_images, mw_miner_pool_domains and the suffixes in mw_miner_pool_domain_suffixes),
 * so the host rules and the workflow scanner learn new names from one place; a few names that only
 * make sense in CI definitions are added here.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { fileURLToPath } from 'node:url';

export interface MinerIocs {
  /** Miner program names, lowercased (xmrig, t-rex, lolminer, …). */
  binaries: Set<string>;
  /** Miner image repositories without registry host, lowercased (metal3d/xmrig). */
  images: Set<string>;
  /** Pool host names matched exactly. */
  poolHosts: Set<string>;
  /** Pool operators matched by suffix (".nanopool.org"). */
  poolSuffixes: string[];
}

/** Mining programs the rules list leaves out because they never show as a process name. */
const EXTRA_BINARIES = ['xmrig-mo', 'xmrigcc', 'cpuminer-gr', 'nanominer', 'srbminer-multi', 'teamredminer', 'gminer'];

/** Pool operators that appear in CI mining campaigns (pool host names only; never generic words). */
const EXTRA_POOL_SUFFIXES = [
  '.nicehash.com', '.f2pool.com', '.kryptex.network', '.zpool.ca', '.zergpool.com', '.woolypooly.com',
  '.mining-dutch.nl', '.prohashing.com', '.p2pool.io', '.xmrpool.eu', '.hashcryptos.com', '.rplant.xyz',
  '.minexmr.com', '.skypool.org', '.ethpool.org', '.dxpool.com', '.viabtc.com', '.antpool.com',
];

interface RulesItem {
  list?: string;
  items?: unknown[];
  macro?: string;
  condition?: string;
}

/** The shipped rules file (the same path engine/index.ts names; not imported, to keep the fields → engine graph acyclic). */
const SHIPPED_RULES = fileURLToPath(new URL('../../../rules/minewatch_rules.yaml', import.meta.url));

let cached: MinerIocs | undefined;

/** The indicators, read once from the shipped rules file. */
export function minerIocs(rulesFile: string = SHIPPED_RULES): MinerIocs {
  if (cached && rulesFile === SHIPPED_RULES) return cached;
  let items: RulesItem[];
  try {
    items = parse(readFileSync(rulesFile, 'utf8')) as RulesItem[];
  } catch (e) {
    throw new Error(`${rulesFile}: cannot read the miner lists for the CI checks (${(e as Error).message}); reinstall minewatch`);
  }
  const list = (name: string): string[] =>
    items.filter((i) => i?.list === name).flatMap((i) => (i.items ?? []).map((x) => String(x).toLowerCase()));
  const suffixMacro = items.find((i) => i?.macro === 'mw_miner_pool_domain_suffixes')?.condition ?? '';
  const suffixes = [...suffixMacro.matchAll(/endswith\s+"([^"]+)"/g)].map((m) => m[1]!.toLowerCase());
  const iocs: MinerIocs = {
    binaries: new Set([...list('mw_known_miner_binaries'), ...EXTRA_BINARIES]),
    images: new Set(list('mw_known_miner_images').map((i) => i.replace(/^docker\.io\//, ''))),
    poolHosts: new Set(list('mw_miner_pool_domains')),
    poolSuffixes: [...new Set([...suffixes, ...EXTRA_POOL_SUFFIXES])],
  };
  if (rulesFile === SHIPPED_RULES) cached = iocs;
  return iocs;
}

/** True when `host` is a known pool: on the list, or under a pool operator's domain. */
export function isPoolHost(iocs: MinerIocs, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (iocs.poolHosts.has(h)) return true;
  return iocs.poolSuffixes.some((s) => h.endsWith(s) || h === s.slice(1));
}
