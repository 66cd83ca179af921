/**
 * Writing an age v1 file whose file key this app holds, so that an interrupted upload can be
 * resumed: the header comes from age-encryption, the payload from ./stream.ts.
 *
 *     startAgeFile(recipients)           a fresh file key, its header and payload nonce
 *     sealPart(sealer, plain, last, …)   one upload part: its chunks sealed, in order
 *     partCount, partSpan                how a file is cut into upload parts
 *     chunkAt(offset, prefixLength)      the STREAM chunk that holds a byte of the age file
 *
 * The header. age-encryption's Encrypter draws the file key (16 bytes from
 * `crypto.getRandomValues`, through @noble/hashes) and hands it to every recipient's
 * `wrapFileKey`, as its public `Recipient` interface documents. One more recipient, which
 * writes no stanza, keeps a copy of it. The Encrypter writes the X25519 stanzas and the header
 * MAC and a payload nonce, for an empty file; the header and nonce are kept, the empty payload
 * dropped. Before the key is used, it must open that empty payload and recompute the header's
 * MAC (HKDF-SHA-256 then HMAC-SHA-256, age's construction): so the key held is provably the
 * file's, whatever version of the library runs.
 *
 * The payload is sealed here, 64 KiB chunk after chunk. Same file key, same nonce, same
 * chunk index and same plaintext give the same ciphertext: that is what lets a resumed upload
 * seal again what the server already holds, to hash it, and go on. A chunk index must never be
 * sealed under one key with two different plaintexts (see ./stream.ts).
 *
 * Upload parts: part k holds chunks [128 k, 128 k + 128) of the payload, 8 MiB of plaintext,
 * and part 0 starts with the header and nonce. So a part is a whole number of chunks, every
 * part but the last is larger than the server's 5 MiB minimum, and the plaintext of a part is
 * a fixed range of the file, whose digest can be recorded before the part is sent.
 */

import { Encrypter, type Recipient } from "age-encryption";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { b64decode } from "./b64.js";
import { UsageError } from "./errors.js";
import {
  CHUNK_SIZE,
  FILE_KEY_SIZE,
  NONCE_SIZE,
  SEALED_CHUNK_SIZE,
  TAG_SIZE,
  chunkCount,
  ciphertextLength,
  headerOf,
  openChunk,
  payloadKey,
  type StreamSealer,
} from "./stream.js";

/** STREAM chunks per upload part. */
export const PART_CHUNKS = 128;
/** Plaintext bytes per upload part: 8 MiB. */
export const PART_PLAIN = PART_CHUNKS * CHUNK_SIZE;
/** Payload bytes per upload part (but the last): 128 sealed chunks. */
export const PART_SEALED = PART_CHUNKS * SEALED_CHUNK_SIZE;

const HEADER_INFO = new TextEncoder().encode("header");
const MAC_LINE = new TextEncoder().encode("\n--- ");

/** The start of an age file this app writes: what resuming needs besides the plaintext. */
export interface AgeStart {
  /** The 16-byte file key: secret. */
  fileKey: Uint8Array;
  /** The header, through the newline after its MAC. */
  header: Uint8Array;
  /** The 16-byte payload nonce. */
  nonce: Uint8Array;
  /** The header then the nonce: the age file's first bytes, before the first chunk. */
  prefix: Uint8Array;
}

/** Equal bytes (not constant time: this compares what this page computed itself). */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Where `needle` last occurs in `bytes`, or -1. */
function lastIndexOf(bytes: Uint8Array, needle: Uint8Array): number {
  for (let at = bytes.length - needle.length; at >= 0; at -= 1) {
    if (needle.every((byte, i) => bytes[at + i] === byte)) return at;
  }
  return -1;
}

/**
 * Whether `fileKey` is the key of an age header: its MAC, HMAC-SHA-256 under
 * HKDF-SHA-256(ikm = file key, no salt, info = "header") over the header up to and
 * including its `---`, is the one the header ends with.
 */
export function headerMacMatches(header: Uint8Array, fileKey: Uint8Array): boolean {
  const at = lastIndexOf(header, MAC_LINE);
  if (at < 0 || header[header.length - 1] !== 0x0a) return false;
  const signedPart = header.subarray(0, at + MAC_LINE.length - 1); // through "---"
  let stated: Uint8Array;
  try {
    stated = b64decode(new TextDecoder().decode(header.subarray(at + MAC_LINE.length, -1)));
  } catch {
    return false;
  }
  const key = hkdf(sha256, fileKey, undefined, HEADER_INFO, 32);
  return same(hmac(sha256, key, signedPart), stated);
}

/**
 * A new age file to every recipient (`age1…`, in order; one X25519 stanza each): a fresh file
 * key, the header and the payload nonce. A recipient that cannot be encrypted to is a
 * UsageError; a key that does not open what age-encryption wrote is an Error (never used).
 */
export async function startAgeFile(recipients: readonly string[]): Promise<AgeStart> {
  if (recipients.length === 0) throw new UsageError("there is nobody to encrypt to");
  const kept: { key?: Uint8Array } = {};
  const keeper: Recipient = {
    wrapFileKey(fileKey: Uint8Array) {
      kept.key = fileKey.slice();
      return [];
    },
  };
  let empty: Uint8Array;
  try {
    const encrypter = new Encrypter();
    recipients.forEach((r) => encrypter.addRecipient(r));
    encrypter.addRecipient(keeper);
    empty = await encrypter.encrypt(new Uint8Array(0));
  } catch {
    throw new UsageError("a recipient's key cannot be encrypted to");
  }
  const fileKey = kept.key;
  const { header, nonce, payloadStart } = headerOf(empty);
  const payload = empty.subarray(payloadStart);
  const opens = (key: Uint8Array): boolean => {
    try {
      return openChunk(payloadKey(key, nonce), 0, payload, true).length === 0;
    } catch {
      return false;
    }
  };
  const proven =
    fileKey !== undefined &&
    fileKey.length === FILE_KEY_SIZE &&
    payload.length === TAG_SIZE &&
    opens(fileKey) &&
    headerMacMatches(header, fileKey);
  if (!proven) {
    throw new Error("age-encryption did not write the file this key opens: nothing was sent");
  }
  const prefix = new Uint8Array(header.length + NONCE_SIZE);
  prefix.set(header);
  prefix.set(nonce, header.length);
  return { fileKey, header, nonce, prefix };
}

/** The number of upload parts of a file of `size` bytes: at least one (an empty file has one). */
export function partCount(size: number): number {
  return Math.max(1, Math.ceil(chunkCount(size) / PART_CHUNKS));
}

/** Where part `k` lies: its plaintext range in the file, its range in the age file. */
export interface PartSpan {
  plainStart: number;
  plainEnd: number;
  cipherStart: number;
  cipherEnd: number;
}

/**
 * Part `k` (from 0) of a file of `size` bytes whose age file starts with `prefixLength` bytes
 * of header and nonce. Ranges are half-open; the last part ends both files.
 */
export function partSpan(k: number, prefixLength: number, size: number): PartSpan {
  const parts = partCount(size);
  if (!Number.isSafeInteger(k) || k < 0 || k >= parts) throw new UsageError("no such part");
  const last = k === parts - 1;
  const plainStart = k * PART_PLAIN;
  const plainEnd = last ? size : plainStart + PART_PLAIN;
  const cipherStart = k === 0 ? 0 : prefixLength + k * PART_SEALED;
  const cipherEnd = last
    ? ciphertextLength(prefixLength - NONCE_SIZE, size)
    : prefixLength + (k + 1) * PART_SEALED;
  return { plainStart, plainEnd, cipherStart, cipherEnd };
}

/**
 * The STREAM chunk holding byte `offset` of an age file whose header and nonce take
 * `prefixLength` bytes, and how many bytes of that sealed chunk come before it. A byte of the
 * header or nonce is "before chunk 0". Resuming at `offset` seals again from that chunk (and
 * sends from `skip` bytes into it): with the same key, nonce and plaintext, the bytes the
 * server holds are the ones sealed again.
 */
export function chunkAt(offset: number, prefixLength: number): { index: number; skip: number; part: number } {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(prefixLength) || prefixLength < 0) {
    throw new UsageError("an offset is a whole number of bytes");
  }
  if (offset < prefixLength) return { index: 0, skip: 0, part: 0 };
  const index = Math.floor((offset - prefixLength) / SEALED_CHUNK_SIZE);
  return { index, skip: offset - prefixLength - index * SEALED_CHUNK_SIZE, part: Math.floor(index / PART_CHUNKS) };
}

/**
 * One upload part: `plain` (the part's plaintext: PART_PLAIN bytes, fewer only in the last
 * part) sealed chunk by chunk by `sealer`, after `prefix` (the header and nonce, for part 0).
 * `last` says whether this is the file's last part, whose last chunk is the final one.
 */
export function sealPart(
  sealer: StreamSealer,
  plain: Uint8Array,
  last: boolean,
  prefix: Uint8Array | null = null,
): Uint8Array<ArrayBuffer> {
  if (!last && plain.length !== PART_PLAIN) throw new UsageError("a part is 8 MiB, but the last");
  if (plain.length > PART_PLAIN) throw new UsageError("a part is at most 8 MiB");
  const chunks = Math.max(1, Math.ceil(plain.length / CHUNK_SIZE));
  const head = prefix?.length ?? 0;
  const out = new Uint8Array(head + plain.length + chunks * TAG_SIZE);
  if (prefix) out.set(prefix);
  let at = head;
  for (let i = 0; i < chunks; i += 1) {
    const chunk = plain.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE);
    const sealed = sealer.seal(chunk, last && i === chunks - 1);
    out.set(sealed, at);
    at += sealed.length;
  }
  return out;
}
