/**
 * Finds cryptocurrency wallet addresses in free text (command lines, environments) and validates
 * them for real: format, encoding and checksum, never length alone. A miner needs a payout
 * address, so a valid one in a command line is a strong signal; a 64-hex hash or a git sha that
 * merely has the right length must not look like one.
 *
 * Families:
 * - Monero: Monero's own base58 (8-byte blocks → 11 characters), a varint network byte, and a
 *   checksum that is the first 4 bytes of Keccak-256 over everything before it. Mainnet only:
 *   standard (byte 18, "4…", 95 chars), integrated (byte 19, "4…", 106 chars), subaddress
 *   (byte 42, "8…", 95 chars). Miners on a victim pay out on mainnet; testnets would only add noise.
 * - Bitcoin: base58check P2PKH ("1…", version 0) and P2SH ("3…", version 5) with a double-SHA256
 *   checksum; segwit "bc1…" in bech32 (witness v0, BIP-173) or bech32m (v1+, BIP-350).
 * - Ethereum: "0x" + 40 hex; mixed case must pass EIP-55 (Keccak-256 of the lowercase hex);
 *   all-lowercase or all-uppercase is an unchecksummed but valid address.
 *
 * Speed: one cheap regular expression per family finds candidates; only those are decoded.
 */
import { createHash } from 'node:crypto';
import { keccak_256 } from '@noble/hashes/sha3.js';

export type WalletType = 'monero' | 'bitcoin' | 'ethereum';

export interface WalletMatch {
  type: WalletType;
  address: string;
}

// ---- base58 (shared alphabet) ------------------------------------------------------------------

/** Bitcoin's base58 alphabet (no 0, O, I, l); Monero uses the same one. */
const B58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const B58_INDEX = new Map<string, number>([...B58_ALPHABET].map((c, i) => [c, i]));

/** Value of a base58 string as a big integer; undefined on a character outside the alphabet. */
function b58ToBigInt(s: string): bigint | undefined {
  let n = 0n;
  for (const c of s) {
    const d = B58_INDEX.get(c);
    if (d === undefined) return undefined;
    n = n * 58n + BigInt(d);
  }
  return n;
}

/** Write `n` big-endian into exactly `len` bytes; undefined when it does not fit. */
function bigIntToBytes(n: bigint, len: number): Uint8Array | undefined {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return n === 0n ? out : undefined;
}

// ---- Monero ------------------------------------------------------------------------------------

/**
 * Monero base58 encodes 8-byte blocks as exactly 11 characters (zero-padded on the left), and a
 * final short block of k bytes as ENCODED_BLOCK_SIZES[k] characters. So the text length alone says
 * how many bytes it holds, and a block whose value overflows its byte count is invalid.
 */
const MONERO_FULL_BLOCK_BYTES = 8;
const MONERO_FULL_BLOCK_CHARS = 11;
const MONERO_ENCODED_BLOCK_SIZES = [0, 2, 3, 5, 6, 7, 9, 10, 11];

export function moneroBase58Decode(s: string): Uint8Array | undefined {
  const fullBlocks = Math.floor(s.length / MONERO_FULL_BLOCK_CHARS);
  const lastChars = s.length % MONERO_FULL_BLOCK_CHARS;
  const lastBytes = MONERO_ENCODED_BLOCK_SIZES.indexOf(lastChars);
  if (lastBytes < 0) return undefined;
  const out = new Uint8Array(fullBlocks * MONERO_FULL_BLOCK_BYTES + lastBytes);
  const decodeBlock = (chars: string, nBytes: number, at: number): boolean => {
    const n = b58ToBigInt(chars);
    if (n === undefined) return false;
    const bytes = bigIntToBytes(n, nBytes);
    if (!bytes) return false;
    out.set(bytes, at);
    return true;
  };
  for (let b = 0; b < fullBlocks; b++) {
    const chars = s.slice(b * MONERO_FULL_BLOCK_CHARS, (b + 1) * MONERO_FULL_BLOCK_CHARS);
    if (!decodeBlock(chars, MONERO_FULL_BLOCK_BYTES, b * MONERO_FULL_BLOCK_BYTES)) return undefined;
  }
  if (lastBytes > 0 && !decodeBlock(s.slice(fullBlocks * MONERO_FULL_BLOCK_CHARS), lastBytes, fullBlocks * MONERO_FULL_BLOCK_BYTES)) {
    return undefined;
  }
  return out;
}

/**
 * Mainnet network bytes and the decoded length each implies: network byte + public spend key (32)
 * + public view key (32) [+ payment id (8) for integrated] + checksum (4). All three bytes are
 * below 0x80, so their varint is the single byte itself.
 */
const MONERO_NETWORKS = new Map<number, number>([
  [18, 69], // standard
  [19, 77], // integrated
  [42, 69], // subaddress
]);

export function isValidMonero(addr: string): boolean {
  if (addr.length !== 95 && addr.length !== 106) return false;
  const raw = moneroBase58Decode(addr);
  if (!raw) return false;
  if (MONERO_NETWORKS.get(raw[0]!) !== raw.length) return false;
  const body = raw.subarray(0, raw.length - 4);
  const sum = keccak_256(body);
  for (let i = 0; i < 4; i++) if (sum[i] !== raw[raw.length - 4 + i]) return false;
  return true;
}

// ---- Bitcoin base58check -----------------------------------------------------------------------

function sha256(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest();
}

/**
 * Classic base58: each leading '1' stands for one leading zero byte, the rest is a big number.
 * A P2PKH/P2SH payload is always 25 bytes: version, 20-byte hash, 4-byte checksum.
 */
function bitcoinBase58Decode(s: string, len: number): Uint8Array | undefined {
  let zeros = 0;
  while (zeros < s.length && s[zeros] === '1') zeros++;
  if (zeros > len) return undefined;
  const n = b58ToBigInt(s.slice(zeros));
  if (n === undefined) return undefined;
  // The number must fill the bytes after the leading zeros exactly, with no extra zero byte of its
  // own (that would have been written as another '1').
  const rest = bigIntToBytes(n, len - zeros);
  if (!rest || (rest.length > 0 && rest[0] === 0)) return undefined;
  const out = new Uint8Array(len);
  out.set(rest, zeros);
  return out;
}

const BTC_P2PKH_VERSION = 0x00;
const BTC_P2SH_VERSION = 0x05;

export function isValidBitcoinBase58(addr: string): boolean {
  if (addr.length < 25 || addr.length > 35) return false;
  const raw = bitcoinBase58Decode(addr, 25);
  if (!raw) return false;
  if (raw[0] !== BTC_P2PKH_VERSION && raw[0] !== BTC_P2SH_VERSION) return false;
  const check = sha256(sha256(raw.subarray(0, 21)));
  for (let i = 0; i < 4; i++) if (check[i] !== raw[21 + i]) return false;
  return true;
}

// ---- Bitcoin bech32 / bech32m ------------------------------------------------------------------

const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32_INDEX = new Map<string, number>([...BECH32_CHARSET].map((c, i) => [c, i]));
/** BCH code generator coefficients (BIP-173). */
const BECH32_GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
/** What the checksum polymod must come to: 1 for bech32, this constant for bech32m (BIP-350). */
const BECH32_CONST = 1;
const BECH32M_CONST = 0x2bc830a3;

function bech32Polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= BECH32_GEN[i]!;
  }
  return chk >>> 0;
}

/** The human-readable part enters the checksum as its high bits, a zero, then its low bits. */
function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

/** Regroup 5-bit words into bytes; leftover bits must be fewer than 5 and all zero. */
function fiveToEight(words: number[]): Uint8Array | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  for (const w of words) {
    acc = (acc << 5) | w;
    bits += 5;
    while (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits >= 5 || acc !== 0) return undefined;
  return Uint8Array.from(out);
}

export function isValidBitcoinSegwit(addr: string): boolean {
  if (addr.length < 14 || addr.length > 90) return false;
  // One case only: mixed case is invalid (BIP-173).
  const lower = addr.toLowerCase();
  if (addr !== lower && addr !== addr.toUpperCase()) return false;
  const sep = lower.lastIndexOf('1');
  if (lower.slice(0, sep) !== 'bc') return false;
  const data: number[] = [];
  for (const c of lower.slice(sep + 1)) {
    const d = BECH32_INDEX.get(c);
    if (d === undefined) return false;
    data.push(d);
  }
  if (data.length < 7) return false; // witness version + at least something + 6 checksum words
  const pm = bech32Polymod([...hrpExpand('bc'), ...data]);
  const isBech32 = pm === BECH32_CONST;
  const isBech32m = pm === BECH32M_CONST;
  if (!isBech32 && !isBech32m) return false;
  const version = data[0]!;
  if (version > 16) return false;
  const program = fiveToEight(data.slice(1, data.length - 6));
  if (!program || program.length < 2 || program.length > 40) return false;
  if (version === 0) {
    // v0 uses bech32 and is either a 20-byte key hash or a 32-byte script hash.
    return isBech32 && (program.length === 20 || program.length === 32);
  }
  // v1..v16 must use bech32m (this is what fixes bech32's insertion weakness for new versions).
  return isBech32m;
}

// ---- Ethereum ----------------------------------------------------------------------------------

const utf8 = new TextEncoder();

export function isValidEthereum(addr: string): boolean {
  if (!/^0x[0-9a-fA-F]{40}$/.test(addr)) return false;
  const hex = addr.slice(2);
  const lower = hex.toLowerCase();
  if (hex === lower || hex === hex.toUpperCase()) return true; // unchecksummed
  // EIP-55: a letter is uppercase exactly when the matching nibble of keccak(lowercase) is >= 8.
  const hash = keccak_256(utf8.encode(lower));
  for (let i = 0; i < 40; i++) {
    const c = hex[i]!;
    if (c >= '0' && c <= '9') continue;
    const nibble = (hash[i >> 1]! >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    const upper = c >= 'A' && c <= 'F';
    if (upper !== nibble >= 8) return false;
  }
  return true;
}

// ---- finding -----------------------------------------------------------------------------------

/**
 * Candidate finders. \b on both sides keeps a finder from matching a slice of a longer token
 * (0x + 64 hex, a base58 blob), so only whole tokens reach the validators.
 */
const B58 = '1-9A-HJ-NP-Za-km-z';
const FINDERS: { type: WalletType; re: RegExp; valid: (s: string) => boolean }[] = [
  { type: 'monero', re: new RegExp(`\\b[48][${B58}]{94}(?:[${B58}]{11})?\\b`, 'g'), valid: isValidMonero },
  { type: 'bitcoin', re: new RegExp(`\\b[13][${B58}]{24,34}\\b`, 'g'), valid: isValidBitcoinBase58 },
  { type: 'bitcoin', re: /\bbc1[02-9ac-hj-np-z]{11,87}\b/gi, valid: isValidBitcoinSegwit },
  { type: 'ethereum', re: /\b0x[0-9a-fA-F]{40}\b/g, valid: isValidEthereum },
];

/** Shortest text that can hold any address we know (a 14-char bech32); shorter text is skipped. */
const MIN_ADDRESS_LENGTH = 14;

/**
 * True when `text` has a run of at least MIN_ADDRESS_LENGTH ASCII letters and digits. Every
 * candidate the finders accept is such a run (base58, bech32 and 0x-hex are all alphanumeric, and
 * case-insensitive matching never maps a non-ASCII character onto an ASCII one), so text without
 * one holds no address: a single scan spares most command lines and environments the four
 * regular expressions.
 */
export function mayHoldWallet(text: string): boolean {
  const n = text.length;
  if (n < MIN_ADDRESS_LENGTH) return false;
  let run = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const l = c | 0x20; // ASCII letters to lower case
    if ((c >= 48 && c <= 57) || (l >= 97 && l <= 122)) {
      if (++run >= MIN_ADDRESS_LENGTH) return true;
    } else {
      // The longest run still possible is too short: stop early.
      if (n - i - 1 < MIN_ADDRESS_LENGTH) return false;
      run = 0;
    }
  }
  return false;
}

/** Every valid wallet address in `text`, in order of appearance. */
export function findWallets(text: string): WalletMatch[] {
  if (text.length < MIN_ADDRESS_LENGTH) return [];
  if (typeof text === 'string' && !mayHoldWallet(text)) return [];
  const found: { at: number; m: WalletMatch }[] = [];
  for (const f of FINDERS) {
    f.re.lastIndex = 0;
    for (let m = f.re.exec(text); m !== null; m = f.re.exec(text)) {
      if (f.valid(m[0])) found.push({ at: m.index, m: { type: f.type, address: m[0] } });
    }
  }
  if (found.length > 1) found.sort((a, b) => a.at - b.at);
  return found.map((x) => x.m);
}

/** Which family `addr` (a whole token) belongs to, or undefined when it is no valid address. */
export function walletType(addr: string): WalletType | undefined {
  if (isValidMonero(addr)) return 'monero';
  if (isValidBitcoinBase58(addr) || isValidBitcoinSegwit(addr)) return 'bitcoin';
  if (isValidEthereum(addr)) return 'ethereum';
  return undefined;
}
