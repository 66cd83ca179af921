/**
 * age's STREAM payload (src/crypto/stream.ts), held to the C2SP CCTV age vectors (npm package
 * cctv-age, pinned in tests/vectors/cctv) and to age-encryption and the reference `age` CLI:
 *
 * - every vector that must succeed with an X25519 identity: the file key that age-encryption
 *   unwraps is the vector's, the payload opens to the vector's SHA-256, and sealing that
 *   plaintext again under the same key and nonce gives the vector's payload byte for byte;
 * - every vector that must fail in the payload is refused with a DecryptError, after
 *   releasing exactly the plaintext the vector describes;
 * - the vectors that succeed only with a hybrid or a passphrase identity have their payload
 *   replayed the same way, under the file key the vector states (their headers are not ours);
 * - files of age-encryption have the payload sealed here, and headers of age-encryption followed
 *   by a payload sealed here under a fresh nonce open in age-encryption and in `age -d`;
 * - sealing or opening from chunk k gives the suffix of the whole.
 *
 * The vectors come from npm, not from this tree: `npm ci --prefix tests/vectors/cctv --no-audit
 * --no-fund` (or `make pytest`) installs them; without them the vector tests fail.
 */

import { describe, expect, it } from "vitest";
import {
  Decrypter,
  Encrypter,
  armor,
  generateX25519Identity,
  identityToRecipient,
} from "age-encryption";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { fromHex, hex } from "../src/crypto/b64.js";
import { DecryptError, UsageError } from "../src/crypto/errors.js";
import {
  CHUNK_SIZE,
  FILE_KEY_SIZE,
  MAX_INDEX,
  NONCE_SIZE,
  SEALED_CHUNK_SIZE,
  StreamOpener,
  StreamSealer,
  TAG_SIZE,
  chunkCount,
  ciphertextLength,
  headerOf,
  openChunk,
  payloadKey,
  sealChunk,
} from "../src/crypto/stream.js";
import { VECTOR_DIR, nodeModule, readJson, webHkdf } from "./support.js";

// --- Node, without its type declarations ---------------------------------------------------------

interface SpawnResult {
  status: number | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
}
interface NodeFs {
  existsSync(path: URL | string): boolean;
  mkdtempSync(prefix: string): string;
  writeFileSync(path: string, data: string, options: { mode: number }): void;
  rmSync(path: string, options: { recursive: boolean; force: boolean }): void;
}

const fs = await nodeModule<NodeFs>("node:fs");
const { inflateSync } = await nodeModule<{
  inflateSync(data: Uint8Array): Uint8Array;
}>("node:zlib");
const { tmpdir } = await nodeModule<{ tmpdir(): string }>("node:os");
const { join } = await nodeModule<{ join(...parts: string[]): string }>("node:path");
const { spawnSync } = await nodeModule<{
  spawnSync(
    command: string,
    args: readonly string[],
    options: { input?: Uint8Array; timeout: number; maxBuffer?: number },
  ): SpawnResult;
}>("node:child_process");

// --- the CCTV vectors ----------------------------------------------------------------------------

const PIN = "0.2.0";
const PACKAGE = new URL("cctv/node_modules/cctv-age/", VECTOR_DIR);
const INSTALL = "npm ci --prefix tests/vectors/cctv --no-audit --no-fund";
const X25519_IDENTITY = /^AGE-SECRET-KEY-1[0-9A-Z]+$/;

/** One vector: `key: value` lines, an empty line, then an age file (maybe zlib, maybe armored). */
interface Vector {
  name: string;
  expect: string;
  payloadSha256: string | null;
  fileKey: string | null;
  identities: string[];
  file: Uint8Array; // decompressed and dearmored
}

/** Every vector file of the package by name; empty when it is not installed. */
async function loadRaw(): Promise<Record<string, Uint8Array>> {
  const index = new URL("index.js", PACKAGE);
  if (!fs.existsSync(index)) return {};
  return { ...(await import(/* @vite-ignore */ index.href)) } as Record<string, Uint8Array>;
}

/** Position of the first empty line (`\n\n`) of `bytes`. */
function blankLine(bytes: Uint8Array): number {
  for (let at = bytes.indexOf(0x0a); at >= 0; at = bytes.indexOf(0x0a, at + 1)) {
    if (bytes[at + 1] === 0x0a) return at;
  }
  throw new Error("a vector has no empty line after its header");
}

function parseVector(name: string, raw: Uint8Array): Vector {
  const end = blankLine(raw);
  const values = new Map<string, string[]>();
  for (const line of new TextDecoder().decode(raw.subarray(0, end)).split("\n")) {
    const colon = line.indexOf(": ");
    if (colon < 0) throw new Error(`${name}: malformed header line ${line}`);
    const key = line.slice(0, colon);
    values.set(key, [...(values.get(key) ?? []), line.slice(colon + 2)]);
  }
  const one = (key: string): string | null => values.get(key)?.[0] ?? null;
  let file = raw.subarray(end + 2);
  if (one("compressed") === "zlib") file = new Uint8Array(inflateSync(file));
  if (one("armored") === "yes" && one("expect") !== "armor failure") {
    file = armor.decode(new TextDecoder().decode(file));
  }
  return {
    name,
    expect: one("expect") ?? "",
    payloadSha256: one("payload"),
    fileKey: one("file key"),
    identities: values.get("identity") ?? [],
    file,
  };
}

const RAW = await loadRaw();
const VECTORS = Object.entries(RAW)
  .map(([name, raw]) => parseVector(name, raw))
  .sort((a, b) => (a.name < b.name ? -1 : 1));
const isX25519 = (v: Vector): boolean =>
  v.identities.length > 0 && v.identities.every((i) => X25519_IDENTITY.test(i));
const X25519_SUCCESS = VECTORS.filter((v) => v.expect === "success" && isX25519(v));
const OTHER_SUCCESS = VECTORS.filter((v) => v.expect === "success" && !isX25519(v));
const PAYLOAD_FAILURE = VECTORS.filter((v) => v.expect === "payload failure" && isX25519(v));
const NAMES = (vectors: Vector[]): string[] => vectors.map((v) => v.name);

// --- utilities -----------------------------------------------------------------------------------

/** Uneven pieces, some far from a sealed chunk's size, to exercise every buffering path. */
const PIECES = [1, 7, 100, 4096, SEALED_CHUNK_SIZE, SEALED_CHUNK_SIZE + 1, 200_000];

function pieces(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; i += 1) {
    const size = PIECES[i % PIECES.length] ?? 1;
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** `n` random bytes (getRandomValues fills at most 64 KiB at a time). */
function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, at + 65536));
  return out;
}

/** Where `a` and `b` first differ (a length counts as a difference), or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** The whole payload of `plain`, sealed chunk by chunk from chunk `start`. */
function sealAll(fileKey: Uint8Array, nonce: Uint8Array, plain: Uint8Array, start = 0): Uint8Array {
  const sealer = new StreamSealer(fileKey, nonce, start);
  const count = chunkCount(plain.length);
  const sealed: Uint8Array[] = [];
  for (let i = start; i < count; i += 1) {
    const chunk = plain.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE);
    sealed.push(sealer.seal(chunk, i === count - 1));
  }
  return concat(sealed);
}

/** What an opener released from `parts`, and its refusal if it refused. */
function openAll(opener: StreamOpener, parts: readonly Uint8Array[]): [Uint8Array, unknown] {
  const released: Uint8Array[] = [];
  try {
    for (const part of parts) released.push(opener.update(part));
    released.push(opener.finish());
  } catch (error) {
    return [concat(released), error];
  }
  return [concat(released), null];
}

/** The file key age-encryption unwraps from `header` with `identity`. */
async function unwrap(header: Uint8Array, identity: string): Promise<Uint8Array> {
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  return decrypter.decryptHeader(header);
}

/** A new age file of `plain` by age-encryption, to a fresh X25519 identity. */
async function ageFile(plain: Uint8Array): Promise<{ identity: string; file: Uint8Array }> {
  const identity = await generateX25519Identity();
  const encrypter = new Encrypter();
  encrypter.addRecipient(await identityToRecipient(identity));
  return { identity, file: await encrypter.encrypt(plain) };
}

/** The ChaCha20-Poly1305 nonce of chunk `index`, from the spec's words, with BigInt. */
function specNonce(index: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  let counter = BigInt(index);
  for (let at = 10; at >= 0; at -= 1, counter >>= 8n) nonce[at] = Number(counter & 0xffn);
  nonce[11] = last ? 0x01 : 0x00;
  return nonce;
}

const SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE];
const KEY = new Uint8Array(32).map((_, i) => i);

// --- the vectors ---------------------------------------------------------------------------------

describe("CCTV age vectors", () => {
  it("are installed at the pin, with every vector this file replays", () => {
    expect(VECTORS.length, `the CCTV vectors are missing: run ${INSTALL}`).toBeGreaterThan(0);
    const installed = readJson<{ version: string }>(new URL("package.json", PACKAGE));
    expect(installed.version).toBe(PIN);
    // What cctv-age 0.2.0 holds: a changed pin must be looked at, not absorbed.
    expect(X25519_SUCCESS.length).toBe(19);
    expect(PAYLOAD_FAILURE.length).toBe(19);
    expect(NAMES(OTHER_SUCCESS)).toEqual([
      "armor_hybrid",
      "armor_scrypt",
      "hybrid",
      "hybrid_and_x25519",
      "hybrid_grease",
      "hybrid_multiple_recipients",
      "scrypt",
    ]);
    expect(VECTORS.filter((v) => v.expect === "payload failure").length).toBe(19);
  });

  it.each(NAMES(X25519_SUCCESS))("%s: opens, and seals again to the same bytes", async (name) => {
    const vector = X25519_SUCCESS.find((v) => v.name === name);
    if (vector === undefined || vector.payloadSha256 === null) throw new Error(name);
    const { header, nonce, payloadStart } = headerOf(vector.file);
    const identity = vector.identities[0] ?? "";
    const fileKey = await unwrap(header, identity);
    expect(hex(fileKey)).toBe(vector.fileKey);
    const plain = replaySuccess(vector, fileKey, nonce, vector.file.subarray(payloadStart));
    expect(ciphertextLength(header.length, plain.length)).toBe(vector.file.length);
  });

  it.each(NAMES(OTHER_SUCCESS))("%s: payload under the stated file key", (name) => {
    const vector = OTHER_SUCCESS.find((v) => v.name === name);
    if (vector === undefined || vector.fileKey === null) throw new Error(name);
    const { nonce, payloadStart } = headerOf(vector.file);
    const fileKey = fromHex(vector.fileKey);
    expect(fileKey.length).toBe(FILE_KEY_SIZE);
    replaySuccess(vector, fileKey, nonce, vector.file.subarray(payloadStart));
  });

  it.each(NAMES(PAYLOAD_FAILURE))("%s: refused with a DecryptError", async (name) => {
    const vector = PAYLOAD_FAILURE.find((v) => v.name === name);
    if (vector === undefined || vector.payloadSha256 === null) throw new Error(name);
    const { header, nonce, payloadStart } = headerOf(vector.file);
    const fileKey = await unwrap(header, vector.identities[0] ?? "");
    expect(hex(fileKey)).toBe(vector.fileKey);
    const payload = vector.file.subarray(payloadStart);
    for (const parts of [[payload], pieces(payload), chunksOf(payload)]) {
      const [released, error] = openAll(new StreamOpener(fileKey, nonce), parts);
      expect(error).toBeInstanceOf(DecryptError);
      expect(hex(sha256(released))).toBe(vector.payloadSha256);
    }
  });

  it("headerOf refuses the files whose payload nonce is missing or cut", () => {
    for (const name of ["stream_no_nonce", "stream_short_nonce"]) {
      const vector = VECTORS.find((v) => v.name === name);
      expect(vector?.expect).toBe("header failure");
      expect(() => headerOf(vector?.file ?? new Uint8Array(0))).toThrow(DecryptError);
    }
  });
});

/** The payload cut at sealed-chunk boundaries. */
function chunksOf(payload: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < payload.length; at += SEALED_CHUNK_SIZE) {
    out.push(payload.subarray(at, at + SEALED_CHUNK_SIZE));
  }
  return out;
}

/**
 * A success vector's payload: opened whole, in uneven pieces and chunk by chunk to the stated
 * SHA-256; each chunk opened alone by index; sealed again to the same bytes. The plaintext.
 */
function replaySuccess(
  vector: Vector,
  fileKey: Uint8Array,
  nonce: Uint8Array,
  payload: Uint8Array,
): Uint8Array {
  let plain: Uint8Array | null = null;
  for (const parts of [[payload], pieces(payload), chunksOf(payload)]) {
    const [released, error] = openAll(new StreamOpener(fileKey, nonce), parts);
    expect(error).toBeNull();
    expect(hex(sha256(released))).toBe(vector.payloadSha256);
    plain = released;
  }
  if (plain === null) throw new Error(vector.name);
  const key = payloadKey(fileKey, nonce);
  const sealed = chunksOf(payload);
  sealed.forEach((chunk, i) => {
    const opened = openChunk(key, i, chunk, i === sealed.length - 1);
    expect(firstDifference(opened, plain.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE))).toBe(-1);
  });
  expect(sealed.length).toBe(chunkCount(plain.length));
  expect(firstDifference(sealAll(fileKey, nonce, plain), payload)).toBe(-1);
  return plain;
}

// --- age-encryption and the age CLI --------------------------------------------------------------

describe("interoperation with age-encryption", () => {
  it.each(SIZES)("%i bytes: the payload age-encryption wrote is sealed here", async (size) => {
    const plain = randomBytes(size);
    const { identity, file } = await ageFile(plain);
    const { header, nonce, payloadStart } = headerOf(file);
    const fileKey = await unwrap(header, identity);
    expect(payloadStart).toBe(header.length + NONCE_SIZE);
    expect(ciphertextLength(header.length, size)).toBe(file.length);
    const payload = file.subarray(payloadStart);
    expect(firstDifference(sealAll(fileKey, nonce, plain), payload)).toBe(-1);
    const [opened, error] = openAll(new StreamOpener(fileKey, nonce), pieces(payload));
    expect(error).toBeNull();
    expect(firstDifference(opened, plain)).toBe(-1);
  });

  it.each(SIZES)("%i bytes: its header with a payload sealed here opens in it", async (size) => {
    const plain = randomBytes(size);
    const { identity, file } = await ageFile(plain);
    const { header } = headerOf(file);
    const nonce = randomBytes(NONCE_SIZE);
    const mine = concat([header, nonce, sealAll(await unwrap(header, identity), nonce, plain)]);
    const decrypter = new Decrypter();
    decrypter.addIdentity(identity);
    expect(firstDifference(await decrypter.decrypt(mine), plain)).toBe(-1);
  });

  it("agrees with age-encryption on the length of an age file", async () => {
    const encrypter = new Encrypter();
    encrypter.addRecipient(await identityToRecipient(await generateX25519Identity()));
    const empty = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    const sealed = await encrypter.encrypt(empty);
    const headerLength = sealed.size(0) - NONCE_SIZE - TAG_SIZE;
    await sealed.cancel();
    for (const size of [...SIZES, 2 * CHUNK_SIZE - 1, 1000 * CHUNK_SIZE + 3, 2 ** 40]) {
      expect(ciphertextLength(headerLength, size)).toBe(sealed.size(size));
    }
  });
});

const AGE_CLI = spawnSync("age", ["--version"], { timeout: 10_000 }).status === 0;

describe("interoperation with the age CLI", () => {
  const name = "`age -d` opens an age-encryption header with a payload sealed here";
  it.skipIf(!AGE_CLI)(name, async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), "pli-stream-"));
    try {
      for (const size of [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]) {
        const plain = randomBytes(size);
        const { identity, file } = await ageFile(plain);
        const keyFile = join(dir, `key-${size}.txt`);
        fs.writeFileSync(keyFile, `${identity}\n`, { mode: 0o600 });
        const { header } = headerOf(file);
        const nonce = randomBytes(NONCE_SIZE);
        const payload = sealAll(await unwrap(header, identity), nonce, plain);
        const run = (input: Uint8Array): SpawnResult =>
          spawnSync("age", ["-d", "-i", keyFile], { input, timeout: 60_000, maxBuffer: 1 << 24 });
        const opened = run(concat([header, nonce, payload]));
        expect(new TextDecoder().decode(opened.stderr)).toBe("");
        expect(opened.status).toBe(0);
        expect(firstDifference(new Uint8Array(opened.stdout), plain)).toBe(-1);
        // Without its last byte, the same file is refused: the CLI checks what is sealed here.
        expect(run(concat([header, nonce, payload.subarray(0, -1)])).status).not.toBe(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- resumption ----------------------------------------------------------------------------------

describe("resumption", () => {
  const fileKey = randomBytes(FILE_KEY_SIZE);
  const nonce = randomBytes(NONCE_SIZE);

  it.each([5 * CHUNK_SIZE + 100, 3 * CHUNK_SIZE])(
    "%i bytes: sealing or opening from chunk k gives the suffix from 0",
    (size) => {
      const plain = randomBytes(size);
      const whole = sealAll(fileKey, nonce, plain);
      for (let k = 0; k < chunkCount(size); k += 1) {
        const suffix = whole.subarray(k * SEALED_CHUNK_SIZE);
        expect(firstDifference(sealAll(fileKey, nonce, plain, k), suffix)).toBe(-1);
        const [opened, error] = openAll(new StreamOpener(fileKey, nonce, k), pieces(suffix));
        expect(error).toBeNull();
        expect(firstDifference(opened, plain.subarray(k * CHUNK_SIZE))).toBe(-1);
        // The same suffix read as if it started one chunk later is refused.
        const [, shifted] = openAll(new StreamOpener(fileKey, nonce, k + 1), [suffix]);
        expect(shifted).toBeInstanceOf(DecryptError);
      }
    },
  );

  it("the sealer counts its chunks and refuses any after the last", () => {
    const sealer = new StreamSealer(fileKey, nonce, 7);
    expect(sealer.index).toBe(7);
    sealer.seal(new Uint8Array(CHUNK_SIZE), false);
    expect(sealer.index).toBe(8);
    sealer.seal(new Uint8Array(1), true);
    expect(() => sealer.seal(new Uint8Array(1), true)).toThrow(UsageError);
    expect(() => new StreamSealer(fileKey, nonce, -1)).toThrow(UsageError);
    expect(() => new StreamSealer(fileKey, nonce, 0.5)).toThrow(UsageError);
    expect(() => new StreamOpener(fileKey, nonce, MAX_INDEX + 1)).toThrow(UsageError);
  });
});

// --- chunks --------------------------------------------------------------------------------------

describe("chunks", () => {
  it("payloadKey is HKDF-SHA-256(file key, salt = nonce, info = payload)", async () => {
    const fileKey = randomBytes(FILE_KEY_SIZE);
    const nonce = randomBytes(NONCE_SIZE);
    expect(hex(payloadKey(fileKey, nonce))).toBe(await webHkdf(fileKey, "payload", nonce));
    expect(() => payloadKey(new Uint8Array(15), nonce)).toThrow(UsageError);
    expect(() => payloadKey(fileKey, new Uint8Array(17))).toThrow(UsageError);
  });

  it.each([0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, MAX_INDEX])(
    "chunk %i: the nonce is the 11-byte big-endian index and the final flag",
    (index) => {
      const full = randomBytes(CHUNK_SIZE);
      const short = randomBytes(10);
      const middle = chacha20poly1305(KEY, specNonce(index, false)).encrypt(full);
      const final = chacha20poly1305(KEY, specNonce(index, true)).encrypt(short);
      expect(hex(sealChunk(KEY, index, full, false))).toBe(hex(middle));
      expect(hex(sealChunk(KEY, index, short, true))).toBe(hex(final));
      expect(hex(openChunk(KEY, index, middle, false))).toBe(hex(full));
      expect(hex(openChunk(KEY, index, final, true))).toBe(hex(short));
    },
  );

  it("sealChunk refuses what cannot stand at an index", () => {
    const full = new Uint8Array(CHUNK_SIZE);
    const refused: [number, Uint8Array, boolean][] = [
      [0, new Uint8Array(CHUNK_SIZE - 1), false], // a middle chunk that is not full
      [0, new Uint8Array(0), false],
      [0, new Uint8Array(CHUNK_SIZE + 1), true], // longer than a chunk
      [0, new Uint8Array(CHUNK_SIZE + 1), false],
      [1, new Uint8Array(0), true], // empty final chunk after a full one
      [MAX_INDEX + 1, full, false], // 2^53: beyond exact numbers
      [2 ** 60, full, false],
      [-1, full, false],
      [1.5, full, false],
      [Number.NaN, full, false],
    ];
    for (const [index, chunk, last] of refused) {
      expect(() => sealChunk(KEY, index, chunk, last)).toThrow(UsageError);
    }
    expect(() => sealChunk(KEY.subarray(1), 0, full, false)).toThrow(UsageError);
    expect(sealChunk(KEY, 0, new Uint8Array(0), true).length).toBe(TAG_SIZE);
    expect(sealChunk(KEY, 3, full, true).length).toBe(SEALED_CHUNK_SIZE);
  });

  it("openChunk refuses every change with a DecryptError", () => {
    const sealed = sealChunk(KEY, 2, randomBytes(CHUNK_SIZE), false);
    const flipped = sealed.slice();
    flipped[100] = (flipped[100] ?? 0) ^ 1;
    const tag = sealed.slice();
    tag[sealed.length - 1] = (tag[sealed.length - 1] ?? 0) ^ 0x80;
    const otherKey = KEY.map((b) => b ^ 1);
    const refusals: [Uint8Array, number, Uint8Array, boolean][] = [
      [KEY, 2, flipped, false],
      [KEY, 2, tag, false],
      [KEY, 1, sealed, false], // another index
      [KEY, 2, sealed, true], // another flag
      [otherKey, 2, sealed, false],
      [KEY.subarray(1), 2, sealed, false],
      [KEY, 2, sealed.subarray(0, -1), false], // cut short
      [KEY, 2, concat([sealed, new Uint8Array(1)]), false], // too long
      [KEY, 2, new Uint8Array(TAG_SIZE - 1), true],
      [KEY, -1, sealed, false],
      [KEY, MAX_INDEX + 1, sealed, false],
    ];
    for (const [key, index, chunk, last] of refusals) {
      expect(() => openChunk(key, index, chunk, last)).toThrow(DecryptError);
    }
    expect(openChunk(KEY, 2, sealed, false).length).toBe(CHUNK_SIZE);
    // An empty final chunk after index 0 is refused even when its tag verifies.
    const emptyLast = chacha20poly1305(KEY, specNonce(1, true)).encrypt(new Uint8Array(0));
    expect(() => openChunk(KEY, 1, emptyLast, true)).toThrow(DecryptError);
    expect(openChunk(KEY, 0, sealChunk(KEY, 0, new Uint8Array(0), true), true).length).toBe(0);
  });

  it("ciphertextLength counts a tag per chunk, and one for an empty file", () => {
    expect(ciphertextLength(100, 0)).toBe(100 + 16 + 16);
    expect(ciphertextLength(100, 1)).toBe(100 + 16 + 1 + 16);
    expect(ciphertextLength(100, CHUNK_SIZE)).toBe(100 + 16 + CHUNK_SIZE + 16);
    expect(ciphertextLength(100, CHUNK_SIZE + 1)).toBe(100 + 16 + CHUNK_SIZE + 1 + 32);
    expect(chunkCount(0)).toBe(1);
    expect(chunkCount(3 * CHUNK_SIZE)).toBe(3);
    expect(chunkCount(3 * CHUNK_SIZE + 1)).toBe(4);
    for (const [header, plain] of [[-1, 0], [0, -1], [0, 0.5], [Number.NaN, 0], [0, 2 ** 53]]) {
      expect(() => ciphertextLength(header ?? 0, plain ?? 0)).toThrow(UsageError);
    }
  });
});

// --- the opener and headerOf ---------------------------------------------------------------------

describe("StreamOpener", () => {
  const fileKey = randomBytes(FILE_KEY_SIZE);
  const nonce = randomBytes(NONCE_SIZE);

  it("refuses an empty payload, truncation, trailing bytes and an empty last chunk", () => {
    const plain = randomBytes(2 * CHUNK_SIZE);
    const payload = sealAll(fileKey, nonce, plain); // two full chunks, the second final
    const key = payloadKey(fileKey, nonce);
    const emptyLast = chacha20poly1305(key, specNonce(2, true)).encrypt(new Uint8Array(0));
    const middleOnly = sealChunk(key, 0, plain.subarray(0, CHUNK_SIZE), false);
    const cases = [
      new Uint8Array(0),
      payload.subarray(0, SEALED_CHUNK_SIZE), // the final chunk dropped
      payload.subarray(0, -1),
      concat([payload, new Uint8Array(1)]),
      concat([payload, payload.subarray(SEALED_CHUNK_SIZE)]),
      concat([middleOnly, sealChunk(key, 1, plain.subarray(CHUNK_SIZE), false), emptyLast]),
    ];
    for (const data of cases) {
      for (const parts of [[data], pieces(data)]) {
        const [, error] = openAll(new StreamOpener(fileKey, nonce), parts);
        expect(error).toBeInstanceOf(DecryptError);
      }
    }
  });

  it("keeps a refusal, and releases what authenticated before it", () => {
    const plain = randomBytes(2 * CHUNK_SIZE + 3);
    const payload = sealAll(fileKey, nonce, plain);
    const bad = payload.slice();
    bad[SEALED_CHUNK_SIZE + 5] = (bad[SEALED_CHUNK_SIZE + 5] ?? 0) ^ 1; // in the second chunk
    const opener = new StreamOpener(fileKey, nonce);
    expect(firstDifference(opener.update(bad), plain.subarray(0, CHUNK_SIZE))).toBe(-1);
    expect(() => opener.update(new Uint8Array(0))).toThrow(DecryptError);
    expect(() => opener.finish()).toThrow(DecryptError);
  });

  it("opens an empty plaintext, and nothing after its end", () => {
    const opener = new StreamOpener(fileKey, nonce);
    expect(opener.update(sealAll(fileKey, nonce, new Uint8Array(0))).length).toBe(0);
    expect(opener.finish().length).toBe(0);
    expect(opener.finish().length).toBe(0);
    expect(() => opener.update(new Uint8Array(1))).toThrow(DecryptError);
  });
});

describe("headerOf", () => {
  it("splits an age file into header, payload nonce and payload", async () => {
    const { file } = await ageFile(new Uint8Array(5));
    const { header, nonce, payloadStart } = headerOf(file);
    const text = new TextDecoder().decode(header);
    expect(text.startsWith("age-encryption.org/v1\n")).toBe(true);
    expect(/\n--- [A-Za-z0-9+/]{43}\n$/.test(text)).toBe(true);
    expect(hex(nonce)).toBe(hex(file.subarray(header.length, header.length + NONCE_SIZE)));
    expect(file.length - payloadStart).toBe(5 + TAG_SIZE);
    expect(headerOf(file.subarray(0, payloadStart)).payloadStart).toBe(payloadStart);
    expect(() => headerOf(file.subarray(0, payloadStart - 1))).toThrow(DecryptError);
    expect(() => headerOf(file.subarray(0, header.length - 1))).toThrow(DecryptError);
    expect(() => headerOf(new TextEncoder().encode("not an age file\n--- x\n"))).toThrow(
      DecryptError,
    );
  });
});
