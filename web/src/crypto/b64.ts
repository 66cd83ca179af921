/**
 * Byte encodings of pli (docs/spec/keys.md "Encodings", docs/spec/links.md "Encodings").
 *
 *     b64encode / b64decode           age's base64: standard alphabet, no padding, canonical
 *     base64Padded / fromBase64Padded standard base64 with padding: the API's transport form
 *     base64url / fromBase64url       RFC 4648 §5, no padding, canonical: URL fragments only
 *     hex / fromHex                   lowercase hexadecimal
 *     bech32Encode / bech32Decode     BIP 173, as age writes its keys
 *
 * Every decoder is strict: one text per byte string. A signature, key or fragment with two
 * spellings would let an altered copy pass for the original.
 */

import { IntegrityError, SignatureError } from "./errors.js";

const STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** ASCII character codes as a string (fast: no per-character concatenation). */
function ascii(codes: Uint8Array): string {
  return new TextDecoder().decode(codes);
}

/** Base64 of `bytes` in `alphabet`, padded with "=" when `pad`. */
function encode(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let at = 0;
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out[at++] = alphabet.charCodeAt((n >> (18 - 6 * j)) & 63);
    for (let j = chars; pad && j < 4; j++) out[at++] = 0x3d; // "="
  }
  return ascii(out.subarray(0, at));
}

const LOOKUP = new Map<string, Int8Array>();

/** The digit of each ASCII character in `alphabet`, -1 for the others. */
function lookup(alphabet: string): Int8Array {
  let table = LOOKUP.get(alphabet);
  if (table === undefined) {
    table = new Int8Array(128).fill(-1);
    for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
    LOOKUP.set(alphabet, table);
  }
  return table;
}

/** The bytes of unpadded base64 `text` in `alphabet`, or null unless it is canonical. */
function decode(text: string, alphabet: string): Uint8Array | null {
  if (text.length % 4 === 1) return null;
  const digits = lookup(alphabet);
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let value = 0;
  let bits = 0;
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const digit = code < 128 ? (digits[code] ?? -1) : -1;
    if (digit < 0) return null;
    value = ((value << 6) | digit) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  // Unused trailing bits must be zero, or two texts would decode to the same bytes.
  return (value & ((1 << bits) - 1)) === 0 ? out : null;
}

/** age's base64: standard alphabet, no padding. */
export function b64encode(bytes: Uint8Array): string {
  return encode(bytes, STANDARD, false);
}

/**
 * Strict age base64 (keys, signatures, MACs): refuses padding, any other character, a length
 * of 1 mod 4 and non-zero trailing bits, with a SignatureError since what it decodes is
 * part of a signed document or key.
 */
export function b64decode(text: string): Uint8Array {
  const bytes = decode(text, STANDARD);
  if (bytes === null) throw new SignatureError("a key or signature is malformed");
  return bytes;
}

/** Standard base64 with padding: how encrypted documents travel in the API. */
export function base64Padded(bytes: Uint8Array): string {
  return encode(bytes, STANDARD, true);
}

/** Strict padded base64 from the API; a malformed answer is an IntegrityError, not a crash. */
export function fromBase64Padded(text: string): Uint8Array {
  const body = text.replace(/={1,2}$/, "");
  const bytes = text.length % 4 === 0 ? decode(body, STANDARD) : null;
  if (bytes === null || base64Padded(bytes) !== text) {
    throw new IntegrityError("the server sent malformed data (not base64)");
  }
  return bytes;
}

/** base64url without padding (RFC 4648 §5): fragments are made of unreserved URL characters. */
export function base64url(bytes: Uint8Array): string {
  return encode(bytes, URL_SAFE, false);
}

/**
 * Strict base64url: refuses an empty string, padding, "+", "/", whitespace, a length of
 * 1 mod 4 and non-zero trailing bits. An IntegrityError: a fragment that fails this was cut
 * or altered on its way.
 */
export function fromBase64url(text: string): Uint8Array {
  const bytes = text === "" ? null : decode(text, URL_SAFE);
  if (bytes === null) throw new IntegrityError("malformed base64url");
  return bytes;
}

const HEX_DIGITS = "0123456789abcdef";

/** Lowercase hexadecimal, as pli writes device ids and digests. */
export function hex(bytes: Uint8Array): string {
  const out = new Uint8Array(bytes.length * 2);
  bytes.forEach((b, i) => {
    out[2 * i] = HEX_DIGITS.charCodeAt(b >> 4);
    out[2 * i + 1] = HEX_DIGITS.charCodeAt(b & 15);
  });
  return ascii(out);
}

/** The bytes of lowercase or uppercase hex `text`; throws an IntegrityError when it is not. */
export function fromHex(text: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new IntegrityError("malformed hexadecimal");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// --- Bech32 (BIP 173) -------------------------------------------------------------------------

const BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

/** BIP 173's checksum function over 5-bit values. */
function polymod(values: number[]): number {
  let chk = 1;
  for (const value of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ value;
    GENERATOR.forEach((g, i) => {
      if ((top >>> i) & 1) chk ^= g;
    });
  }
  return chk;
}

/** The human-readable part, expanded as BIP 173 mixes it into the checksum. */
function hrpExpand(hrp: string): number[] {
  const codes = Array.from(hrp, (c) => c.charCodeAt(0));
  return [...codes.map((c) => c >> 5), 0, ...codes.map((c) => c & 31)];
}

/** Regroups `data` from `from`-bit to `to`-bit values; null if `pad` is off and bits remain. */
function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean) {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  for (const value of Array.from(data)) {
    acc = (acc << from) | value;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & ((1 << to) - 1));
    }
    acc &= (1 << bits) - 1;
  }
  if (pad && bits > 0) out.push((acc << (to - bits)) & ((1 << to) - 1));
  else if (!pad && (bits >= from || acc !== 0)) return null;
  return out;
}

/** Bech32 of `data` under `hrp` (lowercase); age uppercases identities itself. */
export function bech32Encode(hrp: string, data: Uint8Array): string {
  const words = convertBits(data, 8, 5, true) ?? [];
  const mod = polymod([...hrpExpand(hrp), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >> (5 * (5 - i))) & 31);
  return `${hrp}1${[...words, ...checksum].map((w) => BECH32.charAt(w)).join("")}`;
}

/**
 * The hrp (lowercase) and bytes of a Bech32 string, or null: mixed case, a character outside
 * the alphabet, a bad checksum, more than 90 characters or non-zero padding bits all refuse.
 */
export function bech32Decode(text: string): { hrp: string; data: Uint8Array } | null {
  const lower = text.toLowerCase();
  if (text !== lower && text !== text.toUpperCase()) return null;
  if (text.length > 90 || !/^[\x21-\x7e]+$/.test(text)) return null;
  const split = lower.lastIndexOf("1");
  if (split < 1 || split + 7 > lower.length) return null;
  const hrp = lower.slice(0, split);
  const words = Array.from(lower.slice(split + 1), (c) => BECH32.indexOf(c));
  if (words.some((w) => w < 0) || polymod([...hrpExpand(hrp), ...words]) !== 1) return null;
  const bytes = convertBits(words.slice(0, -6), 5, 8, false);
  return bytes === null ? null : { hrp, data: Uint8Array.from(bytes) };
}
