/**
 * Falco's github plugin's miner check, as its source describes it, for comparison only: each line
 * of the workflow file (comments included) is searched, case-sensitively, for any of a fixed list
 * of substrings; a file with one hit "has miners".
 */
const WORDS = [
  'xmrig', 'ccminer', 't-rex', 'stratum', 'pool', 'hashrate', 'cryptonight', 'wallet', 'gminer', 'gpuminer', 'cpuminer',
  'nanominer', 'nicehash', 'xmr-stak', 'nbminer', 'srbminer', 'hiveos', 'ethermine', 'kryptex', '2miners', 'betterhash',
  'minerstat', 'raveos', 'f2pool', 'unmineable', 'minergate', 'cryptotab', 'lolminer', 'phoenixminer',
];

export function pluginSubstringCheck(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const w = WORDS.find((x) => line.includes(x));
    if (w) found.push(w);
  }
  return found;
}
