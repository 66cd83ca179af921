/**
 * Verification codes (docs/spec/keys.md, "Verification code"): what two people read to each other
 * to check that each holds the other's real keys, and that the server showed both the same ones.
 *
 *     half(E, S) = 6 groups of 5 digits of SHA-256("pli/verification-code/v1" LF canonical(account))
 *     code       = the halves of both accounts, the one whose email sorts first first: 12 groups
 *
 * The same code as `pli keys verify` computes, digit for digit.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { canonical } from "./canonical.js";
import type { PublicKey } from "./keys.js";

const CODE_KIND = new TextEncoder().encode("pli/verification-code/v1\n");
const HALF_GROUPS = 6;
const GROUP_BYTES = 5;
const CODE_DIGITS = 60;

/** Bytes compared as the spec compares strings: by their UTF-8 bytes. */
function compareBytes(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return x.length - y.length;
}

/** The exact bytes one account's half is a digest of. */
export function accountMessage(email: string, keys: PublicKey[]): Uint8Array {
  const distinct = new Map(keys.map((k) => [JSON.stringify([k.device, k.age, k.ed25519]), k]));
  const devices = [...distinct.values()]
    .map(({ device, age, ed25519 }) => ({ device, age, ed25519 }))
    .sort((a, b) => compareBytes(a.device, b.device) || compareBytes(a.age, b.age) || compareBytes(a.ed25519, b.ed25519));
  const body = canonical({ email, devices });
  const message = new Uint8Array(CODE_KIND.length + body.length);
  message.set(CODE_KIND);
  message.set(body, CODE_KIND.length);
  return message;
}

/** One account's six groups of five digits. */
export function half(email: string, keys: PublicKey[]): string[] {
  const digest = sha256(accountMessage(email, keys));
  const groups: string[] = [];
  for (let i = 0; i < HALF_GROUPS; i++) {
    let value = 0n;
    for (const byte of digest.subarray(i * GROUP_BYTES, (i + 1) * GROUP_BYTES)) value = (value << 8n) | BigInt(byte);
    groups.push((value % 100000n).toString().padStart(5, "0"));
  }
  return groups;
}

/** The code of two accounts and the keys each is seen to have, whichever way round. */
export function verificationCode(emailA: string, keysA: PublicKey[], emailB: string, keysB: PublicKey[]): string {
  const halves: [string, string[]][] = [
    [emailA, half(emailA, keysA)],
    [emailB, half(emailB, keysB)],
  ];
  halves.sort(([ea, ha], [eb, hb]) => compareBytes(ea, eb) || compareBytes(ha.join(" "), hb.join(" ")));
  return halves.flatMap(([, groups]) => groups).join(" ");
}

/** The 60 digits of a code as typed (spaces, tabs, line breaks and dashes ignored), or null. */
export function normalizeCode(text: string): string | null {
  const digits = text.replace(/[ \t\n\r-]/g, "");
  return digits.length === CODE_DIGITS && /^[0-9]+$/.test(digits) ? digits : null;
}

/** Whether `typed` is the code `expected`, compared without an early exit. */
export function codesMatch(expected: string, typed: string): boolean {
  const a = normalizeCode(expected);
  const b = normalizeCode(typed);
  if (a === null || b === null) return false;
  let diff = 0;
  for (let i = 0; i < CODE_DIGITS; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
