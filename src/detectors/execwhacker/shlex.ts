/**
 * Python's shlex.quote and shlex.join, exactly: cryptnono builds the command line it matches with
 * `shlex.join(argv)`, so the same argv gives the same text here, character for character.
 *
 * Python's rule (Lib/shlex.py): an empty argument becomes `''`; an argument made only of ASCII
 * letters, digits and `_@%+=:,./-` is left as it is; anything else is wrapped in single quotes,
 * each `'` inside becoming `'"'"'`. Non-ASCII text is always quoted (Python searches with
 * re.ASCII), so `é` becomes `'é'`.
 */

/** Python's `_find_unsafe`: `[^\w@%+=:,./-]` with re.ASCII. JS's `\w` is ASCII-only already. */
const UNSAFE = /[^\w@%+=:,./-]/;
const QUOTE = /'/g;

export function shlexQuote(s: string): string {
  if (s.length === 0) return "''";
  if (!UNSAFE.test(s)) return s;
  return `'${s.replace(QUOTE, `'"'"'`)}'`;
}

export function shlexJoin(argv: readonly string[]): string {
  const n = argv.length;
  if (n === 1) return shlexQuote(argv[0]!);
  // join() builds one flat string; += would build a rope the matcher must flatten anyway.
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) parts[i] = shlexQuote(argv[i]!);
  return parts.join(' ');
}
