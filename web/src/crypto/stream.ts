/**
 * age's STREAM payload (age-encryption.org/v1, "Payload") over ChaCha20-Poly1305: the web
 * app's mirror of `pli.crypto.stream`.
 *
 * The plaintext is cut into 64 KiB chunks; chunk i is sealed under
 *
 *     payload key = HKDF-SHA-256(ikm = file key, salt = payload nonce, info = "payload")
 *
 * with the 12-byte nonce `i as 11 bytes big-endian || 0x01 for the final chunk, else 0x00`.
 * Every chunk but the final one holds exactly 64 KiB; the final one holds 1 byte to 64 KiB,
 * and is empty only when the whole plaintext is (then it is the only chunk).
 *
 *     payloadKey(fileKey, nonce)              the ChaCha20-Poly1305 key of a payload
 *     sealChunk / openChunk                   one chunk at a given index (random access)
 *     StreamSealer                            chunks in order, from any index (resumption)
 *     StreamOpener                            a whole payload pushed in pieces of any size
 *     ciphertextLength(header, plaintext)     the length of an age file before it is made
 *     headerOf(ageFile)                       an age file's header, payload nonce and payload
 *
 * Sealing refuses what the caller got wrong with a UsageError; opening refuses anything with
 * a DecryptError that does not say which check failed.
 *
 * A chunk's nonce is its index: sealing two different plaintexts at one index under one key
 * would share a keystream. A resumed sealing must therefore seal each index only ever with the
 * same plaintext as before (the source checked against what was recorded when it was first
 * read), and a new file always gets a new file key and a new payload nonce.
 */

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { DecryptError, UsageError } from "./errors.js";
import { readAgeHeader } from "./keys.js";

/** Plaintext bytes per chunk (64 KiB); only the final chunk may hold fewer. */
export const CHUNK_SIZE = 65536;
/** The Poly1305 tag that ends every sealed chunk. */
export const TAG_SIZE = 16;
/** A sealed chunk that is not the final one: CHUNK_SIZE + TAG_SIZE bytes. */
export const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
/** The payload nonce, written between the header and the first chunk. */
export const NONCE_SIZE = 16;
/** age's file key. */
export const FILE_KEY_SIZE = 16;
/** The payload key (ChaCha20-Poly1305's). */
export const KEY_SIZE = 32;
/**
 * The highest chunk index: 2^53 - 1, the highest integer a number holds exactly (age's
 * counter has 11 bytes, but 2^53 chunks of 64 KiB are far beyond any file).
 */
export const MAX_INDEX = Number.MAX_SAFE_INTEGER;

const PAYLOAD_INFO = new TextEncoder().encode("payload");
const CORRUPTED = "the encrypted file is corrupted or was tampered with";

/** The payload key: HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload"), 32 bytes. */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (fileKey.length !== FILE_KEY_SIZE) throw new UsageError("an age file key is 16 bytes");
  if (nonce.length !== NONCE_SIZE) throw new UsageError("an age payload nonce is 16 bytes");
  return hkdf(sha256, fileKey, nonce, PAYLOAD_INFO, KEY_SIZE);
}

/** True when `index` can number a chunk: an integer from 0 to MAX_INDEX. */
function isIndex(index: number): boolean {
  return Number.isSafeInteger(index) && index >= 0;
}

/** Refuses, with a UsageError, an index that cannot number a chunk. */
function checkIndex(index: number): void {
  if (!isIndex(index)) throw new UsageError("a chunk index is an integer from 0 to 2^53 - 1");
}

/** The ChaCha20-Poly1305 nonce of chunk `index`: 11 bytes big-endian, then the final flag. */
function chunkNonce(index: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  view.setUint32(3, Math.floor(index / 2 ** 32)); // bytes 3-6 (bytes 0-2 stay 0: index < 2^53)
  view.setUint32(7, index >>> 0); // bytes 7-10
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Whether a chunk of `size` plaintext bytes may stand at `index`: 64 KiB unless final, at most
 * 64 KiB, and empty only as the final chunk at index 0 (the whole plaintext empty).
 */
function isChunkShape(index: number, size: number, last: boolean): boolean {
  if (!isIndex(index) || size > CHUNK_SIZE) return false;
  return last ? size > 0 || index === 0 : size === CHUNK_SIZE;
}

/**
 * Chunk `index` of a payload sealed under `key` (a payloadKey): the ciphertext and its tag,
 * `chunk.length + TAG_SIZE` bytes. Refuses with a UsageError a key that is not 32 bytes, an
 * index that is not an integer from 0 to MAX_INDEX, a chunk over 64 KiB, a non-final chunk
 * that is not exactly 64 KiB, and an empty final chunk after index 0.
 */
export function sealChunk(
  key: Uint8Array,
  index: number,
  chunk: Uint8Array,
  last: boolean,
): Uint8Array {
  if (key.length !== KEY_SIZE) throw new UsageError("a payload key is 32 bytes");
  checkIndex(index);
  if (!isChunkShape(index, chunk.length, last)) {
    throw new UsageError("a chunk is 64 KiB, but the last, which is empty only when alone");
  }
  return chacha20poly1305(key, chunkNonce(index, last)).encrypt(chunk);
}

/**
 * The plaintext of sealed chunk `index` of a payload under `key`, final (`last`) or not. Any
 * failure is a DecryptError: a wrong key, index or flag, a tag that does not verify, or a
 * sealed chunk whose length cannot stand there (see sealChunk).
 */
export function openChunk(
  key: Uint8Array,
  index: number,
  sealed: Uint8Array,
  last: boolean,
): Uint8Array {
  const size = sealed.length - TAG_SIZE;
  if (key.length !== KEY_SIZE || size < 0 || !isChunkShape(index, size, last)) {
    throw new DecryptError(CORRUPTED);
  }
  try {
    return chacha20poly1305(key, chunkNonce(index, last)).decrypt(sealed);
  } catch {
    throw new DecryptError(CORRUPTED);
  }
}

/** The number of chunks of a plaintext of `plaintextLength` bytes: at least one. */
export function chunkCount(plaintextLength: number): number {
  if (!Number.isSafeInteger(plaintextLength) || plaintextLength < 0) {
    throw new UsageError("a length is a whole number of bytes");
  }
  return Math.max(1, Math.ceil(plaintextLength / CHUNK_SIZE));
}

/**
 * The length of an age file: its header, the payload nonce, the plaintext and a tag per chunk
 * (an empty plaintext still has one, empty, chunk).
 */
export function ciphertextLength(headerLength: number, plaintextLength: number): number {
  if (!Number.isSafeInteger(headerLength) || headerLength < 0) {
    throw new UsageError("a length is a whole number of bytes");
  }
  const tags = chunkCount(plaintextLength) * TAG_SIZE;
  const total = headerLength + NONCE_SIZE + plaintextLength + tags;
  if (!Number.isSafeInteger(total)) throw new UsageError("this file is too large");
  return total;
}

/** An age file split where its payload starts: its header, and the payload nonce after it. */
export interface AgeFileStart {
  /** The header, from the version line through the newline of the `--- <mac>` line. */
  header: Uint8Array;
  /** The 16-byte payload nonce. */
  nonce: Uint8Array;
  /** Where the first sealed chunk starts: the header's length + NONCE_SIZE. */
  payloadStart: number;
}

/**
 * The header and payload nonce (copies) of age v1 file `ageFile`, which may be only its start.
 * A header that is not age v1's, or a nonce cut short, is a DecryptError.
 */
export function headerOf(ageFile: Uint8Array): AgeFileStart {
  const { length } = readAgeHeader(ageFile);
  const payloadStart = length + NONCE_SIZE;
  if (ageFile.length < payloadStart) throw new DecryptError("the encrypted file is truncated");
  const header = ageFile.slice(0, length);
  return { header, nonce: ageFile.slice(length, payloadStart), payloadStart };
}

/**
 * Seals a payload chunk by chunk, in order, from chunk `startIndex` (0 for a whole payload; k
 * to resume where an interrupted sealing stopped, with the same file key, nonce and plaintext).
 */
export class StreamSealer {
  readonly #key: Uint8Array;
  #index: number;
  #ended = false;

  constructor(fileKey: Uint8Array, nonce: Uint8Array, startIndex = 0) {
    checkIndex(startIndex);
    this.#key = payloadKey(fileKey, nonce);
    this.#index = startIndex;
  }

  /** The index of the next chunk to seal. */
  get index(): number {
    return this.#index;
  }

  /**
   * The next sealed chunk: `plain` is exactly CHUNK_SIZE bytes unless `last`, and nothing may
   * be sealed after the last chunk. Refusals are UsageErrors, as for sealChunk.
   */
  seal(plain: Uint8Array, last: boolean): Uint8Array {
    if (this.#ended) throw new UsageError("the payload already has its last chunk");
    const sealed = sealChunk(this.#key, this.#index, plain, last);
    this.#index += 1;
    this.#ended = last;
    return sealed;
  }
}

/**
 * Opens a payload (what follows the nonce) pushed in pieces of any size, one sealed chunk each
 * or the whole payload at once: `update` for each piece, then `finish`. As age does, a full
 * sealed chunk is opened as a middle chunk or, failing that, as the final one, after which no
 * byte may follow; a shorter one can only be the final chunk, and waits for `finish`, which
 * refuses a payload that ends without one. An empty final chunk is refused after index 0.
 *
 * `startIndex` resumes part-way through a payload: the pieces then start at that chunk. When a
 * chunk is refused, `update` still returns the plaintext that authenticated before it, and the
 * next call throws the refusal. Every refusal is a DecryptError.
 */
export class StreamOpener {
  readonly #key: Uint8Array;
  #index: number;
  #held = new Uint8Array(SEALED_CHUNK_SIZE); // the start of the next sealed chunk
  #heldLength = 0;
  #ended = false; // a full final chunk was opened
  #refusal: DecryptError | null = null;

  constructor(fileKey: Uint8Array, nonce: Uint8Array, startIndex = 0) {
    checkIndex(startIndex);
    this.#key = payloadKey(fileKey, nonce);
    this.#index = startIndex;
  }

  /** The plaintext of every chunk `data` completes, in order. */
  update(data: Uint8Array): Uint8Array {
    if (this.#refusal !== null) throw this.#refusal;
    const opened: Uint8Array[] = [];
    try {
      let at = 0;
      while (at < data.length) {
        if (this.#ended) throw new DecryptError("the encrypted file goes on after its last chunk");
        const take = Math.min(SEALED_CHUNK_SIZE - this.#heldLength, data.length - at);
        this.#held.set(data.subarray(at, at + take), this.#heldLength);
        this.#heldLength += take;
        at += take;
        if (this.#heldLength === SEALED_CHUNK_SIZE) opened.push(this.#openFull());
      }
    } catch (error) {
      this.#refusal = error instanceof DecryptError ? error : new DecryptError(CORRUPTED);
      if (opened.length === 0) throw this.#refusal;
    }
    return concat(opened);
  }

  /** The plaintext of the final chunk, if still held; refuses a payload cut short. */
  finish(): Uint8Array {
    if (this.#refusal !== null) throw this.#refusal;
    if (this.#ended) return new Uint8Array(0);
    let plain: Uint8Array;
    try {
      plain = openChunk(this.#key, this.#index, this.#held.subarray(0, this.#heldLength), true);
    } catch (error) {
      this.#refusal = error instanceof DecryptError ? error : new DecryptError(CORRUPTED);
      throw this.#refusal;
    }
    this.#index += 1;
    this.#heldLength = 0;
    this.#ended = true;
    return plain;
  }

  /** Opens the full sealed chunk held: a middle chunk, or else a full final one. */
  #openFull(): Uint8Array {
    const sealed = this.#held;
    let plain: Uint8Array;
    try {
      plain = openChunk(this.#key, this.#index, sealed, false);
    } catch {
      plain = openChunk(this.#key, this.#index, sealed, true);
      this.#ended = true;
    }
    this.#index += 1;
    this.#heldLength = 0;
    return plain;
  }
}

/** `parts` end to end, in one new array. */
function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0] !== undefined) return parts[0];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
