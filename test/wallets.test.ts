/**
 * Wallet address validation against public test vectors (BIP-173, BIP-350, EIP-55, published
 * Monero addresses), one-character mutations, right-length garbage, and hashes that must not pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  findWallets, isValidBitcoinBase58, isValidBitcoinSegwit, isValidEthereum, isValidMonero, mayHoldWallet, moneroBase58Decode, walletType,
} from '../src/knowledge/wallets.js';

const MONERO_VALID = [
  // XMRig's donation address (README): standard, mainnet.
  '48edfHu7V9Z84YzzMa6fUueoELZ9ZRXq9VetWzYGzKt52XU5xvqgzYnDK9URnRoJMk1j8nLwEVsaSWJ4fhdUyZijBGUicoD',
  // Monero general fund (monero-project README): a subaddress, and its base address.
  '888tNkZrPN6JsEgekjMnABU4TBzc2Dt29EPAvkRxbANsAnjyPbb3iQ1YBRk1UXcdRsiKc9dhwMVgN5S9cQUiyoogDavup3H',
  '44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A',
  // Integrated addresses (106 characters) from published key-derivation test vectors.
  '4KEMxkrvHF13ZMEVyrUNuUMzgQ1WHjkWL5T6Xk7QaTszggbtPbRPEkZQau9yACYEmUCHPNrU2MBdnJf4s4xLK5AyVTr66Q8LFefPwwfA1t',
  '4BUqMSeJfNQGudzEJNvzQ2LXh4tbUdW4YCM7mq55edxBT7t1297vwCMZSnJwGvEKEKbH8hGmhZZAGhdHbp2te6AA38ZMi4knaCKLprMPni',
  // A subaddress from the same vectors.
  '85cqdW5fHGvUQzGXzrRUHf6P6AJjJrYxa25v351wNJCrS3p1g8wL1gk35HjxyQGGJPY3SygtnFxKjHtVcA7rAM1JBHukQod',
];

const BITCOIN_BASE58_VALID = [
  '1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa', // genesis block coinbase (P2PKH)
  '3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy', // P2SH example (Bitcoin wiki)
  '1KTexdemPdxSBcG55heUuTjDRYqbC5ZL8H', // Monero general fund's BTC address
];

const BITCOIN_SEGWIT_VALID = [
  'BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4', // BIP-173, v0 P2WPKH, upper case
  'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', // the same, lower case
  'bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3', // v0 P2WSH
  'bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y', // BIP-350, v1
  'BC1SW50QGDZ25J', // BIP-350, v16, 2-byte program
  'bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs', // BIP-350, v2
  'bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0', // BIP-350, taproot
];

const ETHEREUM_CHECKSUMMED = [
  // EIP-55's examples.
  '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
  '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
  '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
  '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
];

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

/** Replace the character at i by the next one of the alphabet (cyclic), keeping the case style. */
function mutate(s: string, i: number, alphabet: string): string {
  const c = s[i]!;
  const lower = alphabet === BECH32;
  const j = alphabet.indexOf(lower ? c.toLowerCase() : c);
  assert.ok(j >= 0, `'${c}' is in the alphabet`);
  let r = alphabet[(j + 1) % alphabet.length]!;
  if (lower && c !== c.toLowerCase()) r = r.toUpperCase();
  return s.slice(0, i) + r + s.slice(i + 1);
}

/** Deterministic pseudo-random text over an alphabet (xorshift), for right-length garbage. */
function garbage(seed: number, len: number, alphabet: string): string {
  let x = seed >>> 0 || 1;
  let out = '';
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out += alphabet[x % alphabet.length];
  }
  return out;
}

// ---- a small bech32 encoder, only to build invalid-by-rule addresses -----------------------------

function polymod(values: number[]): number {
  const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const b = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((b >>> i) & 1) chk ^= GEN[i]!;
  }
  return chk >>> 0;
}

function encodeSegwit(version: number, program: number[], m: boolean): string {
  const words: number[] = [version];
  let acc = 0, bits = 0;
  for (const b of program) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      words.push((acc >> bits) & 31);
    }
  }
  if (bits > 0) words.push((acc << (5 - bits)) & 31);
  const hrp = [3, 3, 0, 2, 3]; // "bc" expanded: high bits 3,3; 0; low bits 2,3
  const pm = polymod([...hrp, ...words, 0, 0, 0, 0, 0, 0]) ^ (m ? 0x2bc830a3 : 1);
  const check = [0, 1, 2, 3, 4, 5].map((i) => (pm >>> (5 * (5 - i))) & 31);
  return 'bc1' + [...words, ...check].map((w) => BECH32[w]).join('');
}

// ---- tests -------------------------------------------------------------------------------------

test('published Monero addresses are valid, of the right kind', () => {
  for (const a of MONERO_VALID) {
    assert.ok(isValidMonero(a), a);
    assert.equal(walletType(a), 'monero', a);
  }
});

test('published Bitcoin base58check addresses are valid', () => {
  for (const a of BITCOIN_BASE58_VALID) {
    assert.ok(isValidBitcoinBase58(a), a);
    assert.equal(walletType(a), 'bitcoin', a);
  }
});

test('BIP-173 and BIP-350 valid mainnet addresses are valid', () => {
  for (const a of BITCOIN_SEGWIT_VALID) {
    assert.ok(isValidBitcoinSegwit(a), a);
    assert.equal(walletType(a), 'bitcoin', a);
  }
});

test('EIP-55 checksummed addresses are valid, and so are their all-lower and all-upper forms', () => {
  for (const a of ETHEREUM_CHECKSUMMED) {
    assert.ok(isValidEthereum(a), a);
    assert.ok(isValidEthereum('0x' + a.slice(2).toLowerCase()), `${a} lower`);
    assert.ok(isValidEthereum('0x' + a.slice(2).toUpperCase()), `${a} upper`);
    assert.equal(walletType(a), 'ethereum');
  }
});

test('every one-character change of a Monero address fails', () => {
  for (const a of MONERO_VALID) {
    for (let i = 1; i < a.length; i++) assert.equal(isValidMonero(mutate(a, i, B58)), false, `${a} @${i}`);
  }
});

test('every one-character change of a base58check address fails', () => {
  for (const a of BITCOIN_BASE58_VALID) {
    for (let i = 1; i < a.length; i++) assert.equal(isValidBitcoinBase58(mutate(a, i, B58)), false, `${a} @${i}`);
  }
});

test('every one-character change in a bech32/bech32m data part fails', () => {
  for (const a of BITCOIN_SEGWIT_VALID) {
    for (let i = 3; i < a.length; i++) assert.equal(isValidBitcoinSegwit(mutate(a, i, BECH32)), false, `${a} @${i}`);
  }
});

test('EIP-55: flipping the case of one letter, or changing one digit, fails', () => {
  for (const a of ETHEREUM_CHECKSUMMED) {
    for (let i = 2; i < a.length; i++) {
      const c = a[i]!;
      let m: string;
      if (/[a-f]/.test(c)) m = c.toUpperCase();
      else if (/[A-F]/.test(c)) m = c.toLowerCase();
      else m = String((Number(c) + 1) % 10);
      const changed = a.slice(0, i) + m + a.slice(i + 1);
      assert.equal(isValidEthereum(changed), false, `${changed} @${i}`);
    }
  }
});

test('bech32 rules: mixed case, wrong hrp, wrong checksum constant for the version, bad lengths fail', () => {
  assert.equal(isValidBitcoinSegwit('bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'), false, 'mixed case');
  assert.equal(isValidBitcoinSegwit('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx'), false, 'testnet hrp');
  // BIP-173's original v1+ vectors use bech32; BIP-350 made those invalid.
  assert.equal(isValidBitcoinSegwit('bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx'), false);
  assert.equal(isValidBitcoinSegwit('BC1SW50QA3JX3S'), false);
  assert.equal(isValidBitcoinSegwit('bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj'), false);

  const p20 = Array.from({ length: 20 }, (_, i) => (i * 37 + 11) & 0xff);
  const p32 = Array.from({ length: 32 }, (_, i) => (i * 53 + 7) & 0xff);
  // The encoder itself agrees with the validator on well-formed addresses...
  assert.ok(isValidBitcoinSegwit(encodeSegwit(0, p20, false)));
  assert.ok(isValidBitcoinSegwit(encodeSegwit(0, p32, false)));
  assert.ok(isValidBitcoinSegwit(encodeSegwit(1, p32, true)));
  // ...and each rule is enforced.
  assert.equal(isValidBitcoinSegwit(encodeSegwit(0, p20, true)), false, 'v0 with bech32m');
  assert.equal(isValidBitcoinSegwit(encodeSegwit(1, p32, false)), false, 'v1 with bech32');
  assert.equal(isValidBitcoinSegwit(encodeSegwit(0, p20.slice(0, 19), false)), false, 'v0 needs 20 or 32 bytes');
  assert.equal(isValidBitcoinSegwit(encodeSegwit(1, [1], true)), false, 'program shorter than 2 bytes');
  assert.equal(isValidBitcoinSegwit(encodeSegwit(1, Array(41).fill(1), true)), false, 'program longer than 40 bytes');
  assert.equal(isValidBitcoinSegwit(encodeSegwit(17, p32, true)), false, 'witness version above 16');
});

test('right-length garbage is rejected by every family', () => {
  for (let seed = 1; seed <= 200; seed++) {
    assert.equal(isValidMonero('4' + garbage(seed, 94, B58)), false);
    assert.equal(isValidMonero('8' + garbage(seed, 94, B58)), false);
    assert.equal(isValidMonero('4' + garbage(seed, 105, B58)), false);
    assert.equal(isValidBitcoinBase58('1' + garbage(seed, 33, B58)), false);
    assert.equal(isValidBitcoinBase58('3' + garbage(seed, 33, B58)), false);
    assert.equal(isValidBitcoinSegwit('bc1q' + garbage(seed, 38, BECH32)), false);
    assert.equal(isValidBitcoinSegwit('bc1p' + garbage(seed, 58, BECH32)), false);
    // Mixed-case hex that is not an EIP-55 checksum (all-one-case would be a valid address).
    const hex = garbage(seed, 40, '0123456789abcdefABCDEF');
    if (hex !== hex.toLowerCase() && hex !== hex.toUpperCase()) assert.equal(isValidEthereum('0x' + hex), false, hex);
  }
});

test('a Monero-looking string whose block overflows its byte count is rejected', () => {
  // "zzzzzzzzzzz" (58^11 - 1) does not fit in 8 bytes.
  const a = MONERO_VALID[0]!;
  const bad = a.slice(0, 11) + 'zzzzzzzzzzz' + a.slice(22);
  assert.equal(moneroBase58Decode(bad), undefined);
  assert.equal(isValidMonero(bad), false);
  // A length no block layout produces (a final block of 1, 4 or 8 characters) is rejected too.
  assert.equal(moneroBase58Decode(a.slice(0, 12)), undefined);
  assert.equal(moneroBase58Decode(a.slice(0, 11))?.length, 8);
});

test('findWallets: every family in order of appearance, whole tokens only', () => {
  const text = `xmrig -o pool:3333 -u ${MONERO_VALID[0]}.rig1 --btc ${BITCOIN_BASE58_VALID[0]} ` +
    `payout=${BITCOIN_SEGWIT_VALID[1]},eth:${ETHEREUM_CHECKSUMMED[0]}`;
  assert.deepEqual(findWallets(text), [
    { type: 'monero', address: MONERO_VALID[0] },
    { type: 'bitcoin', address: BITCOIN_BASE58_VALID[0] },
    { type: 'bitcoin', address: BITCOIN_SEGWIT_VALID[1] },
    { type: 'ethereum', address: ETHEREUM_CHECKSUMMED[0] },
  ]);
  // Embedded in a longer token: not an address.
  assert.deepEqual(findWallets(`x${MONERO_VALID[0]}`), []);
  assert.deepEqual(findWallets(`${ETHEREUM_CHECKSUMMED[0]}00`), []);
  assert.deepEqual(findWallets(''), []);
});

test('hashes are not wallets: 64-hex sha256, 0x + 64 hex, a 40-hex git sha', () => {
  const sha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const gitSha = '3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a';
  assert.deepEqual(findWallets(sha256), []);
  assert.deepEqual(findWallets(`0x${sha256}`), []);
  assert.deepEqual(findWallets(`sha256:${sha256}`), []);
  assert.deepEqual(findWallets(`git checkout ${gitSha}`), []);
  assert.deepEqual(findWallets(`GIT_COMMIT=${gitSha} IMAGE=registry/app@sha256:${sha256}`), []);
});

test('mayHoldWallet: the one-scan prefilter never hides an address', () => {
  const every = [...MONERO_VALID, ...BITCOIN_BASE58_VALID, ...BITCOIN_SEGWIT_VALID, ...ETHEREUM_CHECKSUMMED];
  // The finders' candidate patterns (wallets.ts), before validation: a text any of them matches
  // must pass the prefilter, since findWallets looks no further when it does not.
  const B58 = '1-9A-HJ-NP-Za-km-z';
  const candidates = [new RegExp(`\\b[48][${B58}]{94}(?:[${B58}]{11})?\\b`), new RegExp(`\\b[13][${B58}]{24,34}\\b`), /\bbc1[02-9ac-hj-np-z]{11,87}\b/i, /\b0x[0-9a-fA-F]{40}\b/];
  const candidate = (t: string): boolean => candidates.some((re) => re.test(t));
  for (const a of every) {
    for (const text of [a, ` ${a} `, `x=${a}`, `--user ${a}.rig`, a.toUpperCase(), `-u\n${a}`]) {
      if (candidate(text)) assert.ok(mayHoldWallet(text), text);
    }
  }
  assert.ok(every.every((a) => candidate(a) && mayHoldWallet(a)));
  assert.equal(findWallets(`-u ${MONERO_VALID[0]}`).length, 1);
  // Shortest address run: 14 letters and digits (bc1 + 11).
  assert.equal(mayHoldWallet('a'.repeat(13)), false);
  assert.equal(mayHoldWallet('a'.repeat(14)), true);
  assert.equal(mayHoldWallet(`${'a'.repeat(13)}-${'b'.repeat(13)}`), false);
  assert.equal(mayHoldWallet(`${'a'.repeat(7)}_${'b'.repeat(7)}`), false, 'an underscore ends a run');
  assert.equal(mayHoldWallet('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'), false);
  assert.equal(mayHoldWallet('ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ'), false, 'only ASCII letters count');
  // Random text: whenever findWallets finds something, the prefilter let it through.
  let seed = 99;
  let hits = 0;
  const alphabet = `${'123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'.repeat(3)}0x qlIO-_.:/=`;
  for (let i = 0; i < 3000; i++) {
    let s = i % 5 === 0 ? every[i % every.length]!.slice(0, 20 + (i % 60)) : '';
    const n = 10 + (i % 120);
    for (let j = 0; j < n; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      s += alphabet[seed % alphabet.length];
    }
    if (candidate(s)) assert.ok(mayHoldWallet(s), s);
    hits += candidate(s) ? 1 : 0;
  }
  assert.ok(hits > 50, `${hits} texts with candidates`);
});
