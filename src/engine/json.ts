/**
 * JSON text with exact 64-bit integers. Falco's alerts carry nanosecond times as JSON integers
 * (`"evt.time":1764000000123456789`), past what a JS number holds exactly (2^53). Values that big
 * are bigints here; these two functions write and read them as plain JSON integers, everything
 * else as JSON.stringify and JSON.parse do.
 */

/**
 * A marker no input can forge: JSON text from outside escapes a control character as \u0000, so
 * a string can only start with this one if it came from `bigMarker` below in this very process.
 */
const NONCE = `\u0000${Math.random().toString(36).slice(2)}${Date.now().toString(36)}:`;
const MARKED = new RegExp(`"${JSON.stringify(NONCE).slice(1, -1).replace(/\\/g, '\\\\')}(-?\\d+)"`, 'g');

/** JSON.stringify, with bigints written as integers. */
export function toJsonText(value: unknown): string {
  let big = false;
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    big = true;
    return NONCE + v.toString();
  });
  return big ? text.replace(MARKED, '$1') : text;
}

/** JSON.parse, with integers too big for a number read as bigints (exact) instead of rounded. */
export function fromJsonText(text: string): unknown {
  const marked = markBigIntegers(text);
  if (marked === text) return JSON.parse(text);
  return JSON.parse(marked, (_k, v: unknown) => (typeof v === 'string' && v.startsWith(NONCE) ? BigInt(v.slice(NONCE.length)) : v));
}

/** Integer tokens (outside strings) past 2^53 wrapped in marked strings. */
function markBigIntegers(text: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string, escapes included.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      continue;
    }
    if (c !== 0x2d /* - */ && (c < 0x30 || c > 0x39)) continue;
    // Digits after a '.', an exponent or a sign of one belong to a number already looked at.
    const prev = text[i - 1];
    if (prev === '.' || prev === 'e' || prev === 'E' || prev === '+' || (prev === '-' && c !== 0x2d)) continue;
    let j = i + 1;
    while (j < text.length && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x39) j++;
    const next = text[j];
    const token = text.slice(i, j);
    if (next !== '.' && next !== 'e' && next !== 'E' && token.replace('-', '').length >= 16 && !Number.isSafeInteger(Number(token))) {
      out += text.slice(from, i) + JSON.stringify(NONCE + token);
      from = j;
    }
    i = j - 1;
  }
  return from === 0 ? text : out + text.slice(from);
}
