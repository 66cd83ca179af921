/**
 * Canonical JSON (docs/spec/keys.md "Canonical JSON") and the strict JSON reader for what pli
 * signs, MACs or decrypts.
 *
 *     canonical(value) -> UTF-8 bytes   RFC 8785 (JCS) restricted to pli's values
 *     parseJson(bytes, maxDepth)        fatal UTF-8, JSON.parse, then what JSON.parse lets pass
 *
 * A signature covers `canonical(doc)` recomputed by the verifier, so both ends must agree on
 * every byte: objects with ASCII member names sorted, no whitespace, strings escaped exactly
 * as JSON requires, integers only (within ±2^53). Anything without a single canonical form
 * (floats, unpaired surrogates) is refused with a SignatureError rather than guessed at.
 */

import { SignatureError } from "./errors.js";

const MAX_INT = 2 ** 53;
/** Far deeper than any pli document (a manifest envelope nests 4 levels). */
export const DEFAULT_MAX_DEPTH = 32;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ASCII = /^[\x00-\x7f]*$/;

/** True when `text` has a UTF-8 form: no unpaired surrogate. */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/**
 * The canonical UTF-8 bytes of `value`. Throws a SignatureError on floats, NaN, infinities,
 * integers beyond ±2^53, unpaired surrogates, non-ASCII member names, `undefined`, and any
 * object that is not a plain one (a Date, a Map): none of them has a canonical form here.
 */
export function canonical(value: unknown): Uint8Array {
  return new TextEncoder().encode(write(value, 0));
}

/** The canonical text of `value`, nested `depth` levels down. */
function write(value: unknown, depth: number): string {
  if (depth > DEFAULT_MAX_DEPTH) throw refuse("is nested too deeply");
  if (value === null || value === true || value === false) return String(value);
  if (typeof value === "string") return writeString(value);
  if (typeof value === "number") return writeInteger(value);
  if (Array.isArray(value)) return `[${value.map((item) => write(item, depth + 1)).join(",")}]`;
  if (isPlainObject(value)) return writeObject(value, depth);
  throw refuse("holds a value JSON cannot sign");
}

/** JSON.stringify escapes exactly what the spec escapes once lone surrogates are refused. */
function writeString(text: string): string {
  if (!isWellFormed(text)) throw refuse("holds an unpaired surrogate");
  return JSON.stringify(text);
}

function writeInteger(value: number): string {
  if (!Number.isInteger(value) || Math.abs(value) > MAX_INT) {
    throw refuse("holds a number that is not an integer within ±2^53");
  }
  return String(value); // String(-0) is "0", as an integer parser reads "-0"
}

/** Members sorted by name: names are ASCII, so UTF-16 order is byte order. */
function writeObject(value: Record<string, unknown>, depth: number): string {
  const names = Object.keys(value).sort();
  const members = names.map((name) => {
    if (!ASCII.test(name)) throw refuse("has a member name that is not ASCII");
    return `${writeString(name)}:${write(value[name], depth + 1)}`;
  });
  return `{${members.join(",")}}`;
}

/** True when `value` has exactly the own members `names`, in any order. */
export function hasMembers(value: Record<string, unknown>, names: readonly string[]): boolean {
  const keys = Object.keys(value);
  return keys.length === names.length && names.every((name) => Object.hasOwn(value, name));
}

/** A plain `{…}` object, as JSON.parse makes: not a class instance, a Map or a Date. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function refuse(what: string): SignatureError {
  return new SignatureError(`a signed document ${what}`);
}

/**
 * The JSON value in `bytes`, read strictly: UTF-8 (fatal, no byte order mark), JSON.parse,
 * then what JSON.parse lets through is refused — nesting deeper than `maxDepth`, duplicate
 * member names (other readers may keep another one), and numbers that are not integers
 * within ±2^53 (JSON.parse would round them silently, so a value could change under a
 * signature). Throws a SignatureError: the bytes are the document a signature is about.
 */
export function parseJson(bytes: Uint8Array, maxDepth = DEFAULT_MAX_DEPTH): unknown {
  let text: string;
  let value: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    value = JSON.parse(text);
  } catch {
    throw new SignatureError("a document is not valid JSON");
  }
  scan(text, maxDepth);
  return value;
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/**
 * One pass over JSON text that JSON.parse accepted, checking depth, duplicate names and
 * numbers. Iterative, so hostile nesting cannot exhaust the stack.
 */
function scan(text: string, maxDepth: number): void {
  const open: (Set<string> | null)[] = []; // names seen per open object; null for arrays
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '"') {
      const end = stringEnd(text, i);
      if (expectName) addName(open, JSON.parse(text.slice(i, end + 1)) as string);
      expectName = false;
      i = end;
    } else if (c === "{" || c === "[") {
      open.push(c === "{" ? new Set() : null);
      if (open.length > maxDepth) throw new SignatureError("a document is nested too deeply");
      expectName = c === "{";
    } else if (c === "}" || c === "]") {
      open.pop();
    } else if (c === ",") {
      expectName = open[open.length - 1] instanceof Set;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      i += checkNumber(text, i) - 1;
    }
  }
}

/** Index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text.charAt(i) !== '"') i += text.charAt(i) === "\\" ? 2 : 1;
  return i;
}

function addName(open: (Set<string> | null)[], name: string): void {
  const names = open[open.length - 1];
  if (names?.has(name)) throw new SignatureError("a document repeats a member name");
  names?.add(name);
}

/** Length of the number token at `at`; refuses fractions, exponents and |n| > 2^53. */
function checkNumber(text: string, at: number): number {
  NUMBER.lastIndex = at;
  const match = NUMBER.exec(text);
  const token = match?.[0] ?? "";
  const tooBig = () => BigInt(token) > BigInt(MAX_INT) || BigInt(token) < -BigInt(MAX_INT);
  if (!match || match[1] !== undefined || match[2] !== undefined || tooBig()) {
    throw new SignatureError("a document holds a number that is not an integer within ±2^53");
  }
  return token.length;
}
