/**
 * Control characters escaped C-style for text renderings (the alert text line on standard output,
 * in a file, piped to a program; CLI tables). A watched process chooses its own name and argv: a
 * newline in them would let it print a whole forged line ("minewatch: All clear") under ours, and
 * an escape sequence would let it rewrite what a terminal shows. JSON renderings do not need this:
 * JSON.stringify already escapes every control character.
 *
 * Escaped: C0 controls and DEL (`\n`, `\t`, `\x1b`, …), C1 controls (`\x85`, NEL, is a line break to
 * some readers), the Unicode line and paragraph separators, and the bidirectional overrides that
 * reorder what a reader sees ("Trojan Source"). Backslashes are left alone on purpose: paths, regular
 * expressions and shell quoting in command lines keep their look, and a literal `\n` typed by a
 * process cannot break a line, which is what forging needs.
 */

const NAMED: Record<string, string> = {
  '\x07': '\\a', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r',
};

// One regex, tested first, so a clean line (nearly every line) costs one scan and no copy.
// Control characters are exactly what it looks for.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

function escapeOne(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `s` with every control character written as a C escape; `s` itself when it has none. */
export function escapeControl(s: string): string {
  return UNSAFE.test(s) ? s.replace(UNSAFE_ALL, escapeOne) : s;
}
