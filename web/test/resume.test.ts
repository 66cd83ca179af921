/**
 * What resuming an upload after a reload rests on, without a browser:
 *
 * - the age writer (src/crypto/agefile.ts): a header from age-encryption with a key this app
 *   holds, then parts sealed here, make a standard age file that age-encryption's Decrypter and
 *   the reference `age -d` open; every file gets its own key and nonce; sealing the same
 *   plaintext again under the same key gives the same bytes, so a resumed upload's ciphertext
 *   and its digest are those of an upload that never stopped;
 * - the arithmetic of parts and chunks: part spans tile the age file, and the chunk holding a
 *   server offset is the one a resumed upload seals again first;
 * - the device key (src/crypto/devicekey.ts): non-extractable, a fresh IV each time, and a
 *   sealed value opens only under its own key and context;
 * - matching the files chosen again to the interrupted send's slots (src/app/pending.ts).
 */

import { describe, expect, it } from "vitest";
import { Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "../src/crypto/b64.js";
import {
  PART_CHUNKS,
  PART_PLAIN,
  PART_SEALED,
  chunkAt,
  headerMacMatches,
  partCount,
  partSpan,
  sealPart,
  startAgeFile,
} from "../src/crypto/agefile.js";
import { newDeviceKey, openUnder, sealUnder } from "../src/crypto/devicekey.js";
import { DecryptError, UsageError } from "../src/crypto/errors.js";
import { readAgeHeader } from "../src/crypto/keys.js";
import {
  CHUNK_SIZE,
  NONCE_SIZE,
  SEALED_CHUNK_SIZE,
  StreamSealer,
  ciphertextLength,
  headerOf,
} from "../src/crypto/stream.js";
import { matchFiles } from "../src/app/pending.js";
import { nodeModule } from "./support.js";

// --- utilities -----------------------------------------------------------------------------------

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, at + 65536));
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The whole age file of `plain` as the worker uploads it: part after part. */
function ageFileOf(start: { fileKey: Uint8Array; nonce: Uint8Array; prefix: Uint8Array }, plain: Uint8Array): Uint8Array[] {
  const sealer = new StreamSealer(start.fileKey, start.nonce);
  const parts = partCount(plain.length);
  const out: Uint8Array[] = [];
  for (let k = 0; k < parts; k += 1) {
    const span = partSpan(k, start.prefix.length, plain.length);
    out.push(sealPart(sealer, plain.subarray(span.plainStart, span.plainEnd), k === parts - 1, k === 0 ? start.prefix : null));
  }
  return out;
}

async function newRecipient(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** Sealing and opening 16 MiB in JavaScript takes a second, more on a loaded machine. */
const SLOW = 60_000;

const SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, PART_PLAIN - 1, PART_PLAIN, PART_PLAIN + 1, 2 * PART_PLAIN + 12345];

// --- the age writer ------------------------------------------------------------------------------

describe("the age writer", () => {
  it.each(SIZES)("%i bytes: age-encryption opens what it writes, for every recipient", async (size) => {
    const [a, b] = [await newRecipient(), await newRecipient()];
    const start = await startAgeFile([a.recipient, b.recipient]);
    const plain = randomBytes(size);
    const parts = ageFileOf(start, plain);
    const file = concat(parts);
    expect(file.length).toBe(ciphertextLength(start.header.length, size));
    parts.forEach((part, k) => {
      const span = partSpan(k, start.prefix.length, size);
      expect(part.length).toBe(span.cipherEnd - span.cipherStart);
    });
    for (const who of [a, b]) {
      const decrypter = new Decrypter();
      decrypter.addIdentity(who.identity);
      expect(same(await decrypter.decrypt(file), plain)).toBe(true);
    }
  }, SLOW);

  it("writes a standard header: one X25519 stanza per recipient, a MAC under the file key", async () => {
    const recipients = await Promise.all([newRecipient(), newRecipient(), newRecipient()]);
    const start = await startAgeFile(recipients.map((r) => r.recipient));
    const { stanzas, length } = readAgeHeader(start.header);
    expect(length).toBe(start.header.length);
    expect(stanzas.map((s) => s.type)).toEqual(["X25519", "X25519", "X25519"]);
    expect(stanzas.every((s) => s.body.length === 32 && s.args.length === 1)).toBe(true);
    expect(headerMacMatches(start.header, start.fileKey)).toBe(true);
    const other = start.fileKey.slice();
    other[0] = (other[0] ?? 0) ^ 1;
    expect(headerMacMatches(start.header, other)).toBe(false);
    expect(same(start.prefix, concat([start.header, start.nonce]))).toBe(true);
    const read = headerOf(concat([start.prefix, new Uint8Array(16)]));
    expect(same(read.nonce, start.nonce)).toBe(true);
    // The file key is the one a recipient unwraps.
    const decrypter = new Decrypter();
    decrypter.addIdentity(recipients[1]?.identity ?? "");
    expect(same(await decrypter.decryptHeader(start.header), start.fileKey)).toBe(true);
  });

  it("gives every file a fresh key and nonce", async () => {
    const { recipient } = await newRecipient();
    const starts = await Promise.all([1, 2, 3, 4].map(() => startAgeFile([recipient])));
    expect(new Set(starts.map((s) => hex(s.fileKey))).size).toBe(4);
    expect(new Set(starts.map((s) => hex(s.nonce))).size).toBe(4);
    expect(starts.every((s) => s.fileKey.length === 16 && s.nonce.length === NONCE_SIZE)).toBe(true);
  });

  it("refuses an empty recipient list and a key that is not a recipient", async () => {
    await expect(startAgeFile([])).rejects.toBeInstanceOf(UsageError);
    await expect(startAgeFile(["age1notakey"])).rejects.toBeInstanceOf(UsageError);
  });

  it("seals the same plaintext again to the same bytes: a resumed upload hashes like a whole one", async () => {
    const { recipient } = await newRecipient();
    const start = await startAgeFile([recipient]);
    const plain = randomBytes(2 * PART_PLAIN + 777);
    const first = ageFileOf(start, plain);
    const again = ageFileOf(start, plain);
    expect(first.map((p) => hex(sha256(p)))).toEqual(again.map((p) => hex(sha256(p))));
    // Sealing from the chunk that holds an offset gives the rest of the file from there.
    const file = concat(first);
    const offset = partSpan(1, start.prefix.length, plain.length).cipherStart;
    const at = chunkAt(offset, start.prefix.length);
    expect(at).toEqual({ index: PART_CHUNKS, skip: 0, part: 1 });
    const sealer = new StreamSealer(start.fileKey, start.nonce, at.index);
    const rest = sealPart(sealer, plain.subarray(PART_PLAIN, 2 * PART_PLAIN), false);
    expect(same(rest, file.subarray(offset, offset + rest.length))).toBe(true);
    // Another plaintext under the same key differs: which is why a changed file gets a new key.
    const changed = plain.slice();
    changed[PART_PLAIN + 5] = (changed[PART_PLAIN + 5] ?? 0) ^ 1;
    expect(hex(sha256(ageFileOf(start, changed)[1] ?? new Uint8Array(0)))).not.toBe(hex(sha256(first[1] ?? new Uint8Array(0))));
  }, SLOW);

  it("refuses a part of the wrong size", async () => {
    const { recipient } = await newRecipient();
    const start = await startAgeFile([recipient]);
    const sealer = new StreamSealer(start.fileKey, start.nonce);
    expect(() => sealPart(sealer, new Uint8Array(PART_PLAIN - 1), false)).toThrow(UsageError);
    expect(() => sealPart(sealer, new Uint8Array(PART_PLAIN + 1), true)).toThrow(UsageError);
  });
});

// --- the age CLI ---------------------------------------------------------------------------------

interface SpawnResult {
  status: number | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
}
const fs = await nodeModule<{
  mkdtempSync(prefix: string): string;
  writeFileSync(path: string, data: string, options: { mode: number }): void;
  rmSync(path: string, options: { recursive: boolean; force: boolean }): void;
}>("node:fs");
const { tmpdir } = await nodeModule<{ tmpdir(): string }>("node:os");
const { join } = await nodeModule<{ join(...parts: string[]): string }>("node:path");
const { spawnSync } = await nodeModule<{
  spawnSync(command: string, args: readonly string[], options: { input?: Uint8Array; timeout: number; maxBuffer?: number }): SpawnResult;
}>("node:child_process");
const AGE_CLI = spawnSync("age", ["--version"], { timeout: 10_000 }).status === 0;

describe("interoperation with the age CLI", () => {
  it.skipIf(!AGE_CLI)("`age -d` opens a file written part by part here", async () => {
    const dir = fs.mkdtempSync(join(tmpdir(), "pli-resume-"));
    try {
      const { identity, recipient } = await newRecipient();
      const keyFile = join(dir, "key.txt");
      fs.writeFileSync(keyFile, `${identity}\n`, { mode: 0o600 });
      for (const size of [0, 1, PART_PLAIN, PART_PLAIN + CHUNK_SIZE + 3]) {
        const other = await newRecipient();
        const start = await startAgeFile([other.recipient, recipient]);
        const plain = randomBytes(size);
        const file = concat(ageFileOf(start, plain));
        const opened = spawnSync("age", ["-d", "-i", keyFile], { input: file, timeout: 60_000, maxBuffer: 1 << 25 });
        expect(new TextDecoder().decode(opened.stderr)).toBe("");
        expect(opened.status).toBe(0);
        expect(same(new Uint8Array(opened.stdout), plain)).toBe(true);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, SLOW);
});

// --- parts and chunks ----------------------------------------------------------------------------

describe("parts and chunks", () => {
  const PREFIX = 250;

  it.each(SIZES)("%i bytes: the parts tile the plaintext and the age file", (size) => {
    const parts = partCount(size);
    expect(parts).toBe(Math.max(1, Math.ceil(size / PART_PLAIN)));
    let plainAt = 0;
    let cipherAt = 0;
    for (let k = 0; k < parts; k += 1) {
      const span = partSpan(k, PREFIX, size);
      expect(span.plainStart).toBe(plainAt);
      expect(span.cipherStart).toBe(cipherAt);
      if (k < parts - 1) {
        expect(span.plainEnd - span.plainStart).toBe(PART_PLAIN);
        expect(span.cipherEnd - span.cipherStart).toBe(PART_SEALED + (k === 0 ? PREFIX : 0));
      }
      plainAt = span.plainEnd;
      cipherAt = span.cipherEnd;
    }
    expect(plainAt).toBe(size);
    expect(cipherAt).toBe(ciphertextLength(PREFIX - NONCE_SIZE, size));
    expect(() => partSpan(parts, PREFIX, size)).toThrow(UsageError);
    expect(() => partSpan(-1, PREFIX, size)).toThrow(UsageError);
  });

  it("finds the chunk that holds an offset, and how much of it came before", () => {
    expect(chunkAt(0, PREFIX)).toEqual({ index: 0, skip: 0, part: 0 });
    expect(chunkAt(PREFIX - 1, PREFIX)).toEqual({ index: 0, skip: 0, part: 0 });
    expect(chunkAt(PREFIX, PREFIX)).toEqual({ index: 0, skip: 0, part: 0 });
    expect(chunkAt(PREFIX + 10, PREFIX)).toEqual({ index: 0, skip: 10, part: 0 });
    expect(chunkAt(PREFIX + SEALED_CHUNK_SIZE, PREFIX)).toEqual({ index: 1, skip: 0, part: 0 });
    expect(chunkAt(PREFIX + 3 * SEALED_CHUNK_SIZE - 1, PREFIX)).toEqual({ index: 2, skip: SEALED_CHUNK_SIZE - 1, part: 0 });
    const size = 5 * PART_PLAIN + 99;
    for (let k = 1; k < partCount(size); k += 1) {
      // A part boundary, where a checked upload always stops, starts a part's first chunk.
      expect(chunkAt(partSpan(k, PREFIX, size).cipherStart, PREFIX)).toEqual({ index: k * PART_CHUNKS, skip: 0, part: k });
      expect(chunkAt(partSpan(k, PREFIX, size).cipherStart - 1, PREFIX)).toEqual({ index: k * PART_CHUNKS - 1, skip: SEALED_CHUNK_SIZE - 1, part: k - 1 });
    }
    // Beyond 2^32 bytes, the arithmetic stays exact.
    const far = PREFIX + 70_000 * SEALED_CHUNK_SIZE + 5;
    expect(chunkAt(far, PREFIX)).toEqual({ index: 70_000, skip: 5, part: Math.floor(70_000 / PART_CHUNKS) });
    expect(() => chunkAt(-1, PREFIX)).toThrow(UsageError);
    expect(() => chunkAt(1.5, PREFIX)).toThrow(UsageError);
  });
});

// --- the device key ------------------------------------------------------------------------------

describe("the device key", () => {
  const CONTEXT = "file-key\nalice@example.org\nT1\nF1";

  it("seals and opens a file key, with a fresh IV each time", async () => {
    const key = await newDeviceKey();
    const fileKey = randomBytes(16);
    const one = await sealUnder(key, fileKey, CONTEXT);
    const two = await sealUnder(key, fileKey, CONTEXT);
    expect(hex(one.iv)).not.toBe(hex(two.iv));
    expect(hex(one.data)).not.toBe(hex(two.data));
    expect(one.data.length).toBe(16 + 16);
    expect(same(await openUnder(key, one, CONTEXT), fileKey)).toBe(true);
    expect(same(await openUnder(key, two, CONTEXT), fileKey)).toBe(true);
  });

  it("cannot be read by a script", async () => {
    const key = await newDeviceKey();
    expect(key.extractable).toBe(false);
    await expect(crypto.subtle.exportKey("raw", key)).rejects.toThrow();
  });

  it("opens nothing under another key, another context, or altered", async () => {
    const key = await newDeviceKey();
    const sealed = await sealUnder(key, randomBytes(16), CONTEXT);
    await expect(openUnder(await newDeviceKey(), sealed, CONTEXT)).rejects.toBeInstanceOf(DecryptError);
    await expect(openUnder(key, sealed, "file-key\nalice@example.org\nT1\nF2")).rejects.toBeInstanceOf(DecryptError);
    const data = sealed.data.slice();
    data[3] = (data[3] ?? 0) ^ 1;
    await expect(openUnder(key, { iv: sealed.iv, data }, CONTEXT)).rejects.toBeInstanceOf(DecryptError);
    await expect(openUnder(key, { iv: sealed.iv.subarray(1), data: sealed.data }, CONTEXT)).rejects.toBeInstanceOf(DecryptError);
  });
});

// --- the files chosen again ----------------------------------------------------------------------

describe("matching the files chosen again", () => {
  const slot = (name: string, size = 10, lastModified = 1): { name: string; size: number; lastModified: number } => ({ name, size, lastModified });

  it("puts each file in its slot, whatever the order chosen", () => {
    const a = slot("a.csv");
    const b = slot("b.csv", 20);
    expect(matchFiles([a, b], [b, a])).toEqual([a, b]);
  });

  it("prefers the file with the same size and time, and takes a changed one by name", () => {
    const old = slot("scan.dcm", 10, 1);
    const same1 = slot("scan.dcm", 10, 1);
    const other = slot("scan.dcm", 10, 2);
    expect(matchFiles([old, slot("x")], [other, slot("x")])?.[0]).toBe(other);
    const twins = matchFiles([slot("scan.dcm", 10, 2), old], [same1, other]);
    expect(twins).toEqual([other, same1]);
  });

  it("refuses other files, or another number of them", () => {
    expect(matchFiles([slot("a")], [slot("b")])).toBeNull();
    expect(matchFiles([slot("a")], [slot("a"), slot("a")])).toBeNull();
    expect(matchFiles([slot("a"), slot("b")], [slot("a")])).toBeNull();
  });
});
