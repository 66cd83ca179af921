/**
 * The key log, as a client checks it (docs/spec/key-log.md): an append-only RFC 6962 Merkle
 * tree of key events, whose heads the server signs with its Ed25519 key.
 *
 *     leafHash, nodeHash, EMPTY_ROOT          RFC 6962 section 2.1, SHA-256
 *     verifyInclusion(index, size, …)         RFC 9162 section 2.1.3.2
 *     verifyConsistency(old, new, …)          RFC 9162 section 2.1.4.2
 *     decodeEntry(leaf)                       the one entry a leaf is the canonical form of
 *     parseHead(signed, key, log)             a signed tree head under the pinned server key
 *     logId(key), bundleDigest(envelope), proofFromHex(hashes)
 *     checkLogged(head, bundle, envelope, …)  check 1: a key is used only if it is in the log
 *     checkEntry(head, item, matches, …)      any entry the server proves, such as a group's
 *     provedEntry(head, item, matches, …)     the same, with the entry's index in the log
 *     advance(trusted, seen, proof)           check 2: the head to keep, or a fork
 *     Frontier, audit, unknownDevices         an account's audit of its own entries
 *
 * A malformed entry or a proof that does not verify is an IntegrityError; two signed heads
 * that cannot both be true (a fork) is a TamperingError; a head that does not verify is a
 * SignatureError. Sizes and indexes are JavaScript numbers up to 2^53, so the tree arithmetic
 * divides instead of shifting (bitwise operators would cut them to 32 bits).
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { fromHex, hex } from "./b64.js";
import { canonical, hasMembers, isPlainObject, isWellFormed, parseJson } from "./canonical.js";
import { IntegrityError, SignatureError, UsageError } from "./errors.js";
import { stringMembers, verifyDoc } from "./keys.js";
import type { Signed } from "./keys.js";

export const ENTRY_KIND = "pli/key-log-entry/v1";
export const HEAD_KIND = "pli/key-log-head/v1";
/** Bytes of a hash: every leaf hash, node, root and proof element. */
export const HASH_SIZE = 32;
/** MTH({}) = SHA-256(""): the root of the empty tree. */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));
/** The largest size a head states: the largest integer canonical JSON carries. */
export const MAX_SIZE = 2 ** 53;

/** Evidence of tampering: two signed tree heads of one log that cannot both be true. */
export class TamperingError extends IntegrityError {
  override name = "TamperingError";
}

// --- hashes -------------------------------------------------------------------------------------

/** SHA-256(0x00 || leaf): the prefix keeps a leaf from ever hashing like an inner node. */
export function leafHash(leaf: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + leaf.length);
  input.set(leaf, 1);
  return sha256(input);
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + left.length + right.length);
  input[0] = 0x01;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return sha256(input);
}

/** Equal bytes, compared in time that depends on the length only. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

// --- the shape of the tree ----------------------------------------------------------------------

/** An integer from 0 to 2^53; booleans are not integers here. */
function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_SIZE;
}

/** `n` halved, rounded down: `n >> 1` without the 32-bit cut. */
function half(n: number): number {
  return Math.floor(n / 2);
}

function isOdd(n: number): boolean {
  return n % 2 === 1;
}

/** The largest power of two smaller than `count` (count >= 2): RFC 6962's k. */
function split(count: number): number {
  let k = 1;
  while (k * 2 < count) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  while (n > 1 && !isOdd(n)) n /= 2;
  return n === 1;
}

/** The length of PATH(index, D[size]): one hash per split on the way down to the leaf. */
function inclusionProofLength(index: number, size: number): number {
  let length = 0;
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const middle = start + split(end - start);
    if (index < middle) end = middle;
    else start = middle;
    length += 1;
  }
  return length;
}

/**
 * The length of PROOF(old, D[size]): one hash per split until a subtree ends at `old`, plus
 * that subtree's own hash unless it is the old tree itself (which the verifier holds).
 */
function consistencyProofLength(old: number, size: number): number {
  if (old === 0 || old === size) return 0;
  let length = 0;
  let start = 0;
  let end = size;
  let whole = true;
  while (old !== end) {
    const middle = start + split(end - start);
    if (old <= middle) {
      end = middle;
    } else {
      start = middle;
      whole = false;
    }
    length += 1;
  }
  return whole ? length : length + 1;
}

/** Exactly `expected` hashes of 32 bytes: padded and truncated proofs fail before any hashing. */
function checkProof(proof: readonly Uint8Array[], expected: number, what: string): void {
  const wellFormed = (h: unknown) => h instanceof Uint8Array && h.length === HASH_SIZE;
  if (!Array.isArray(proof) || proof.length !== expected || !proof.every(wellFormed)) {
    throw new IntegrityError(`the key log's ${what} proof does not verify`);
  }
}

// --- verification (RFC 9162) --------------------------------------------------------------------

/**
 * Leaf hash `leaf` is entry `index` of the tree of `size` leaves whose MTH is `root` (RFC 9162
 * section 2.1.3.2). Refused first: an index not below the size, a proof not exactly as long as
 * PATH(index, D[size]), a hash that is not 32 bytes. Any failure is an IntegrityError. `size`
 * and `root` must come from one signed tree head: the algorithm alone cannot tell some sizes
 * apart, the signature over (size, root) does.
 */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
): void {
  const fail = () => new IntegrityError("the key log's inclusion proof does not verify");
  if (!isCount(index) || !isCount(size) || index >= size) {
    throw new IntegrityError("a key log entry index must be below the tree size");
  }
  checkProof(proof, inclusionProofLength(index, size), "inclusion");
  if (leaf.length !== HASH_SIZE || root.length !== HASH_SIZE) throw fail();
  let fn = index;
  let sn = size - 1;
  let result = leaf;
  for (const sibling of proof) {
    if (sn === 0) throw fail();
    if (isOdd(fn) || fn === sn) {
      result = nodeHash(sibling, result);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      result = nodeHash(result, sibling);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0 || !sameBytes(result, root)) throw fail();
}

/**
 * The tree of `oldSize` leaves with MTH `oldRoot` is a prefix of the tree of `newSize` leaves
 * with MTH `newRoot` (RFC 9162 section 2.1.4.2). Refused first: an old size above the new, a
 * proof not exactly as long as PROOF(oldSize, D[newSize]), a hash that is not 32 bytes. Equal
 * sizes need an empty proof and equal roots; an old size of 0 an empty proof and MTH({}) as
 * the old root. Any failure is an IntegrityError.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: Uint8Array[],
): void {
  const fail = () => new IntegrityError("the key log's consistency proof does not verify");
  if (!isCount(oldSize) || !isCount(newSize) || oldSize > newSize) {
    throw new IntegrityError(
      "a key log consistency proof goes from a smaller tree to a larger one",
    );
  }
  checkProof(proof, consistencyProofLength(oldSize, newSize), "consistency");
  if (oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE) throw fail();
  if (oldSize === newSize) {
    if (!sameBytes(oldRoot, newRoot)) throw fail();
    return;
  }
  if (oldSize === 0) {
    // Every tree extends the empty one, but a head of size 0 still has to name its root.
    if (!sameBytes(oldRoot, EMPTY_ROOT)) throw fail();
    return;
  }
  // A perfect old tree is one subtree of the new: its root is the path's first node.
  const [first, ...rest] = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  if (first === undefined) throw fail();
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let oldResult = first;
  let newResult = first;
  for (const node of rest) {
    if (sn === 0) throw fail();
    if (isOdd(fn) || fn === sn) {
      oldResult = nodeHash(node, oldResult);
      newResult = nodeHash(node, newResult);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      newResult = nodeHash(newResult, node);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0 || !sameBytes(oldResult, oldRoot) || !sameBytes(newResult, newRoot)) throw fail();
}

// --- entries ------------------------------------------------------------------------------------

/** What a key log entry records. */
export type KeyEvent =
  | "device-published"
  | "device-approved"
  | "device-removed"
  | "group-member-added"
  | "group-member-removed";

/** One key event; the members its event does not carry are absent. */
export interface Entry {
  event: KeyEvent;
  time: string;
  email: string;
  device?: string;
  bundle?: string;
  by?: string;
  group?: string;
  /** A group entry's signed change: its digest (docs/spec/groups.md). */
  change?: string;
}

type Member = "email" | "device" | "bundle" | "by" | "group" | "change";

/** The members of each event besides kind, event and time: exactly these, all strings. */
const MEMBERS: ReadonlyMap<string, readonly Member[]> = new Map<KeyEvent, readonly Member[]>([
  ["device-published", ["email", "device", "bundle"]],
  ["device-approved", ["email", "device", "bundle", "by"]],
  ["device-removed", ["email", "device"]],
  ["group-member-added", ["group", "email", "change"]],
  ["group-member-removed", ["group", "email", "change"]],
]);
const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const ENTRY_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const HEAD_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z$/;
const MAX_EMAIL = 254;

/** The form each member must have; `email` counts code points, as the spec counts characters. */
function validMember(name: Member, value: string): boolean {
  switch (name) {
    case "email":
      return value !== "" && Array.from(value).length <= MAX_EMAIL && isWellFormed(value);
    case "bundle":
    case "change":
      return HEX64.test(value);
    default:
      return HEX32.test(value);
  }
}

function isKeyEvent(event: string): event is KeyEvent {
  return MEMBERS.has(event);
}

/**
 * The entry a leaf holds. IntegrityError unless the leaf is UTF-8 JSON of kind
 * `pli/key-log-entry/v1`, a known event, exactly its members in their forms, and byte for byte
 * the canonical form of what it parsed to: one entry has one leaf, hence one leaf hash, or a
 * server could log an event under two hashes and show each to different clients.
 */
export function decodeEntry(leaf: Uint8Array): Entry {
  const malformed = () => new IntegrityError("malformed key log entry");
  let doc: unknown;
  try {
    doc = parseJson(leaf);
  } catch {
    throw malformed();
  }
  const event = isPlainObject(doc) && doc.kind === ENTRY_KIND ? doc.event : null;
  if (typeof event !== "string" || !isKeyEvent(event)) throw malformed();
  const members = MEMBERS.get(event) ?? [];
  const strings = stringMembers(doc, ["kind", "event", "time", ...members]);
  if (strings === null || !ENTRY_TIME.test(strings.time)) throw malformed();
  if (!members.every((name) => validMember(name, strings[name]))) throw malformed();
  let encoded: Uint8Array | null;
  try {
    encoded = canonical(doc);
  } catch {
    encoded = null;
  }
  if (encoded === null || !sameBytes(encoded, leaf)) throw malformed();
  const entry: Entry = { event, time: strings.time, email: strings.email };
  for (const name of members) entry[name] = strings[name];
  return entry;
}

/**
 * SHA-256 of a signed bundle's stored form, canonical(envelope), in hex: what an entry commits
 * to, so that a client matches the exact bundle it was handed against the log.
 */
export function bundleDigest(envelope: Signed): string {
  return hex(sha256(canonical(envelope)));
}

// --- signed tree heads --------------------------------------------------------------------------

/** The log `log` had `size` entries with Merkle root `root` at `time`, signed by `key`. */
export interface TreeHead {
  log: string;
  size: number;
  root: Uint8Array;
  time: string;
  key: string;
  signed: Signed;
}

const HEAD_FIELDS = ["kind", "log", "size", "root", "time", "key"] as const;

/**
 * The head in `signed` if it is a head of `log` signed by the pinned server key
 * `trustedKeyB64`, under the context `pli/key-log-head/v1`, naming that key, with exactly its
 * members: a size from 0 to 2^53, a root of 64 lowercase hex digits, a UTC time. Any flaw
 * (malformed, another key or log, altered) is a SignatureError.
 */
export async function parseHead(
  signed: unknown,
  trustedKeyB64: string,
  log: string,
): Promise<TreeHead> {
  const doc = await verifyDoc(HEAD_KIND, signed, trustedKeyB64);
  const { size, root, time } = doc;
  const sig = isPlainObject(signed) ? signed.sig : null;
  const valid =
    hasMembers(doc, HEAD_FIELDS) &&
    doc.log === log &&
    doc.key === trustedKeyB64 &&
    isCount(size) &&
    typeof root === "string" &&
    HEX64.test(root) &&
    typeof time === "string" &&
    HEAD_TIME.test(time) &&
    typeof sig === "string";
  if (!valid) throw new SignatureError("malformed key log tree head");
  return { log, size, root: fromHex(root), time, key: trustedKeyB64, signed: { doc, sig } };
}

/**
 * A server's key log id, `"pli-"` and the first 32 hex digits of SHA-256 of its b64 key: it
 * stays the same whatever host name the server is reached by, and a client pins the pair.
 */
export function logId(keyB64: string): string {
  if (!/^[\x00-\x7f]*$/.test(keyB64)) throw new UsageError("a server key is b64 text");
  return `pli-${hex(sha256(new TextEncoder().encode(keyB64))).slice(0, 32)}`;
}

// --- what a client checks -----------------------------------------------------------------------

/**
 * A proof as the server sends it, an array of hashes in 64 lowercase hex digits, as bytes;
 * anything else is an IntegrityError.
 */
export function proofFromHex(value: unknown): Uint8Array[] {
  const isHash = (h: unknown): h is string => typeof h === "string" && HEX64.test(h);
  const items: unknown[] = Array.isArray(value) ? value : [null];
  if (!items.every(isHash)) throw new IntegrityError("the server sent a malformed key log proof");
  return items.map((h) => fromHex(h));
}

/** The events that make a device active, hence its keys usable. */
const ACTIVATING: readonly KeyEvent[] = ["device-published", "device-approved"];

/**
 * The entry `item`, the server's `{index, leaf, path}`, holds, once `matches` accepts it and
 * its inclusion proof (64-hex hashes) verifies against `head`. Nothing fails open: any failure
 * is `missing`, the caller's IntegrityError naming what was to be proved.
 */
export function checkEntry(
  head: TreeHead,
  item: unknown,
  matches: (entry: Entry) => boolean,
  missing: IntegrityError,
): Entry {
  return provedEntry(head, item, matches, missing).entry;
}

/** `checkEntry`, with the index in the log of the entry proved. */
export function provedEntry(
  head: TreeHead,
  item: unknown,
  matches: (entry: Entry) => boolean,
  missing: IntegrityError,
): { entry: Entry; index: number } {
  try {
    const { index, leaf, path }: Record<string, unknown> = isPlainObject(item) ? item : {};
    if (!isCount(index) || typeof leaf !== "string") throw missing;
    const proof = proofFromHex(path);
    const bytes = new TextEncoder().encode(leaf);
    const entry = decodeEntry(bytes);
    if (!matches(entry)) throw missing;
    verifyInclusion(index, head.size, leafHash(bytes), proof, head.root);
    return { entry, index };
  } catch {
    throw missing;
  }
}

/**
 * Check 1: `item`, the server's `{index, leaf, path}` for the bundle `envelope` of `bundle`'s
 * device, proves that the entry which made that device active is in the log as `head` states
 * it. The leaf must be a `device-published` or `device-approved` entry of that email, device
 * and bundle digest, and its inclusion proof (64-hex hashes) must verify against the head.
 * Nothing fails open: any failure is the same IntegrityError naming the device and account.
 * The index of that entry: where the log made the device active.
 */
export function checkLogged(
  head: TreeHead,
  bundle: { email: string; device: string },
  envelope: Signed,
  item: unknown,
): number {
  const missing = new IntegrityError(
    `the key log does not hold the keys of device ${bundle.device} of ${bundle.email}`,
  );
  const digest = bundleDigest(envelope);
  const matches = (entry: Entry) =>
    ACTIVATING.includes(entry.event) &&
    entry.email === bundle.email &&
    entry.device === bundle.device &&
    entry.bundle === digest;
  return provedEntry(head, item, matches, missing).index;
}

/** For messages: which head, by size and the start of its root. */
function describe(head: TreeHead): string {
  return `tree head of size ${head.size} (root ${hex(head.root).slice(0, 16)}…)`;
}

/**
 * Check 2: the head to keep after seeing `seen`, given the head kept so far (null at first
 * contact) and the consistency proof between the smaller and the larger of the two. The
 * larger is kept. Two heads of one size with different roots, or heads no proof links, are a
 * fork: a TamperingError, and both signed heads are the evidence. Heads of two different logs
 * are the caller's mistake: a UsageError.
 */
export function advance(trusted: TreeHead | null, seen: TreeHead, proof: Uint8Array[]): TreeHead {
  if (trusted === null) return seen;
  if (trusted.log !== seen.log || trusted.key !== seen.key) {
    throw new UsageError("these tree heads belong to different key logs");
  }
  const [older, newer] = trusted.size <= seen.size ? [trusted, seen] : [seen, trusted];
  try {
    verifyConsistency(older.size, newer.size, older.root, newer.root, proof);
  } catch {
    const what =
      older.size === newer.size
        ? `two signed tree heads of size ${older.size} have different roots`
        : `its signed ${describe(newer)} does not extend its signed ${describe(older)}`;
    throw new TamperingError(`the key log ${trusted.log} forked: ${what}`);
  }
  return newer;
}

// --- the audit of one's own entries -------------------------------------------------------------

/**
 * The right edge of a tree: the roots of the perfect subtrees that make its first `size`
 * leaves (one per set bit of the size, largest first). Enough to append leaves and compute the
 * root: what an auditing client keeps between two audits.
 */
export class Frontier {
  readonly #hashes: Uint8Array[];
  #size: number;

  constructor(size = 0, hashes: readonly Uint8Array[] = []) {
    if (!isCount(size) || hashes.length !== setBits(size)) {
      throw new IntegrityError("a key log frontier needs one hash per set bit of its size");
    }
    if (!hashes.every((h) => h instanceof Uint8Array && h.length === HASH_SIZE)) {
      throw new IntegrityError("a key log frontier holds 32-byte hashes");
    }
    this.#size = size;
    this.#hashes = [...hashes];
  }

  get size(): number {
    return this.#size;
  }

  get hashes(): readonly Uint8Array[] {
    return [...this.#hashes];
  }

  copy(): Frontier {
    return new Frontier(this.#size, this.#hashes);
  }

  /** MTH of the leaves so far: the subtrees folded right to left. */
  root(): Uint8Array {
    let result = this.#hashes[this.#hashes.length - 1];
    if (result === undefined) return EMPTY_ROOT;
    for (let i = this.#hashes.length - 2; i >= 0; i--) result = nodeHash(this.#hashes[i] ?? result, result);
    return result;
  }

  /** Add one leaf hash. */
  append(leaf: Uint8Array): void {
    if (leaf.length !== HASH_SIZE) throw new IntegrityError("a key log leaf hash is 32 bytes");
    let index = this.#size;
    let current = leaf;
    while (isOdd(index)) {
      // A right child: its left sibling is the frontier's last subtree, now complete.
      current = nodeHash(this.#hashes.pop() ?? current, current);
      index = half(index);
    }
    this.#hashes.push(current);
    this.#size += 1;
  }
}

/** How many bits of `n` are set, without the 32-bit cut. */
function setBits(n: number): number {
  let count = 0;
  for (let rest = n; rest > 0; rest = half(rest)) if (isOdd(rest)) count += 1;
  return count;
}

/**
 * Check that `leaves`, the log's entries from `frontier.size` on, are exactly those that make
 * `head` out of the tree `frontier` holds; the frontier at `head.size` and every new entry
 * `keep` selects, with its index. The frontier is the auditor's own, from its last audit
 * (empty at first), so the server cannot leave an entry out of the list: the root would not
 * match. `leaves` may be a stream: one entry is held at a time.
 */
export async function audit(
  frontier: Frontier,
  head: TreeHead,
  leaves: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keep: (entry: Entry) => boolean = () => true,
): Promise<{ frontier: Frontier; entries: [number, Entry][] }> {
  const grown = frontier.copy();
  const entries: [number, Entry][] = [];
  for await (const leaf of leaves) {
    const index = grown.size;
    if (index >= head.size) {
      throw new IntegrityError(`the key log ${head.log} listed more entries than its ${describe(head)} holds`);
    }
    grown.append(leafHash(leaf));
    const entry = decodeEntry(leaf);
    if (keep(entry)) entries.push([index, entry]);
  }
  if (grown.size !== head.size) {
    throw new IntegrityError(
      `the key log ${head.log} listed ${grown.size - frontier.size} entries after entry ${frontier.size}, ` +
        `but its ${describe(head)} needs ${head.size - frontier.size}`,
    );
  }
  if (!sameBytes(grown.root(), head.root)) {
    throw new IntegrityError(
      `the entries the key log ${head.log} listed do not make up its signed ${describe(head)}: ` +
        "some were left out, added or changed",
    );
  }
  return { frontier: grown, entries };
}

/**
 * The entries that publish or approve keys for `email` other than the bundles in `known`
 * (device id -> bundle digest): keys its owner did not make, for the audit to report.
 */
export function unknownDevices(
  entries: readonly [number, Entry][],
  email: string,
  known: ReadonlyMap<string, string>,
): [number, Entry][] {
  return entries.filter(
    ([, entry]) =>
      entry.email === email &&
      ACTIVATING.includes(entry.event) &&
      (entry.device === undefined || known.get(entry.device) !== entry.bundle),
  );
}
