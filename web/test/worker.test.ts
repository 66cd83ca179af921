/**
 * The worker's per-file jobs (src/worker/download.ts, src/worker/upload.ts), without a browser,
 * against a `fetch` that serves a vector's ciphertext or takes a tus upload:
 *
 * - a download is checked against its signed entry (checks 12-15 of docs/spec/manifest.md):
 *   the ciphertext's size and SHA-256, the plaintext's size always, and the plaintext's SHA-256
 *   only for an entry that has one (v1); a v2 entry's plaintext is not hashed at all;
 * - an upload's entry has the ciphertext's size and SHA-256, and the plaintext's SHA-256 only
 *   when the job asks for it (a request's answer): otherwise the plaintext is not hashed.
 */

import { afterEach, describe, expect, it, vi } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { fromBase64Padded, hex } from "../src/crypto/b64.js";
import { IntegrityError } from "../src/crypto/errors.js";
import type { ManifestDoc, ManifestFile } from "../src/crypto/manifest.js";
import { getFile } from "../src/worker/download.js";
import type { SendFile, Sent } from "../src/worker/protocol.js";
import { sendFile } from "../src/worker/upload.js";
import { readVectors, refused, type SealedSignedParts } from "./support.js";

/** How many SHA-256 hashers the code under test started (`sha256.create()`). */
const hashers = vi.hoisted(() => ({ count: 0 }));

vi.mock("@noble/hashes/sha2.js", async (importOriginal) => {
  const mod = await importOriginal<typeof import("@noble/hashes/sha2.js")>();
  const create = (): ReturnType<typeof mod.sha256.create> => {
    hashers.count += 1;
    return mod.sha256.create();
  };
  return { ...mod, sha256: Object.assign((message: Uint8Array) => mod.sha256(message), mod.sha256, { create }) };
});

afterEach(() => {
  vi.unstubAllGlobals();
});

interface ManifestVectors {
  recipient: { derived: { age_identity: string } };
  files: { id: string; plaintext_b64: string; ciphertext_b64: string }[];
  manifest: SealedSignedParts;
  manifest_v1: SealedSignedParts;
}

const V = readVectors<ManifestVectors>("manifest.json");
const IDENTITY = V.recipient.derived.age_identity;
const filesOf = (vector: SealedSignedParts) => (vector.signed.doc as unknown as ManifestDoc).files;

// --- downloading ---------------------------------------------------------------------------------

/** Download `index`'s vector ciphertext checked against `expected`: the plaintext, as text. */
async function download(index: number, expected: ManifestFile): Promise<string> {
  const ciphertext = fromBase64Padded(V.files[index]?.ciphertext_b64 ?? "");
  vi.stubGlobal("fetch", async () => new Response(ciphertext as Uint8Array<ArrayBuffer>));
  const job = { op: "get", url: "/f", token: null, ageIdentity: IDENTITY, expected, sink: { kind: "blob" } } as const;
  const blob = await getFile(job, () => undefined, new AbortController().signal);
  if (!blob) throw new Error("no Blob");
  return blob.text();
}

const plaintextOf = (index: number) => new TextDecoder().decode(fromBase64Padded(V.files[index]?.plaintext_b64 ?? ""));
const CASES = [0, 1].map((i) => [V.files[i]?.id, i] as const);

describe("downloading a file (checks 12-15)", () => {
  it.each(CASES)("a v2 entry, without sha256: file %s, its size checked, its plaintext not hashed", async (_id, i) => {
    const entry = filesOf(V.manifest)[i] as ManifestFile;
    expect(entry.sha256).toBeUndefined();
    hashers.count = 0;
    expect(await download(i, entry)).toBe(plaintextOf(i));
    expect(hashers.count).toBe(1); // the ciphertext's
  });

  it.each(CASES)("a v1 entry: file %s, its size and its plaintext's sha256 checked", async (_id, i) => {
    const entry = filesOf(V.manifest_v1)[i] as ManifestFile;
    expect(entry.sha256).toMatch(/^[0-9a-f]{64}$/);
    hashers.count = 0;
    expect(await download(i, entry)).toBe(plaintextOf(i));
    expect(hashers.count).toBe(2); // the ciphertext's and the plaintext's
  });

  it.each(CASES)("refuses a v2 entry of file %s with another size", async (_id, i) => {
    const entry = filesOf(V.manifest)[i] as ManifestFile;
    await refused(download(i, { ...entry, size: entry.size + 1 }), IntegrityError);
    if (entry.size > 0) await refused(download(i, { ...entry, size: entry.size - 1 }), IntegrityError);
  });

  it.each(CASES)("refuses a v1 entry of file %s with another plaintext sha256 or size", async (_id, i) => {
    const entry = filesOf(V.manifest_v1)[i] as ManifestFile;
    await refused(download(i, { ...entry, sha256: "0".repeat(64) }), IntegrityError);
    await refused(download(i, { ...entry, size: entry.size + 1 }), IntegrityError);
  });

  it.each(CASES)("refuses an entry of file %s with another ciphertext sha256 or size", async (_id, i) => {
    for (const entry of [filesOf(V.manifest)[i], filesOf(V.manifest_v1)[i]] as ManifestFile[]) {
      await refused(download(i, { ...entry, ciphertext_sha256: "0".repeat(64) }), IntegrityError);
      await refused(download(i, { ...entry, ciphertext_size: entry.ciphertext_size - 1 }), IntegrityError);
    }
  });
});

// --- uploading -----------------------------------------------------------------------------------

const LOCATION = "/api/v1/uploads/0123456789abcdef";

/** A tus server that takes one upload: the bytes it was sent. */
function tusServer(): Uint8Array[] {
  const received: Uint8Array[] = [];
  vi.stubGlobal("fetch", async (_url: string, init: RequestInit = {}) => {
    if (init.method === "POST") return new Response(null, { status: 201, headers: { location: LOCATION } });
    if (init.method !== "PATCH") return new Response(null, { status: 405 });
    if (!(init.body instanceof Blob)) throw new Error("a part goes as a Blob (see patch() in upload.ts)");
    received.push(new Uint8Array(await init.body.arrayBuffer()));
    return new Response(null, { status: 204 });
  });
  return received;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** Upload `plain` to a fresh recipient: the entry, the age file the server got, and the hashers started. */
async function upload(plain: Uint8Array, digestPlaintext?: boolean) {
  const identity = await generateX25519Identity();
  const received = tusServer();
  const file = new File([plain as Uint8Array<ArrayBuffer>], "a.bin");
  const recipients = [await identityToRecipient(identity)];
  const job: SendFile = { op: "send", file, recipients, transfer: "t", slot: "s", token: "x", digestPlaintext };
  hashers.count = 0;
  const sent: Sent = await sendFile(job, () => undefined, new AbortController().signal);
  const started = hashers.count;
  const ciphertext = concat(received);
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  expect(await decrypter.decrypt(ciphertext)).toEqual(plain);
  return { sent, ciphertext, started };
}

describe("uploading a file", () => {
  const plain = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) % 251); // two STREAM chunks

  it("gives an entry without the plaintext's sha256 unless asked, and does not hash the plaintext", async () => {
    const without = await upload(plain);
    expect(without.sent).toEqual({
      size: plain.length,
      ciphertext_size: without.ciphertext.length,
      ciphertext_sha256: hex(sha256(without.ciphertext)),
    });
    expect("sha256" in without.sent).toBe(false);
    const asked = await upload(plain, true);
    expect(asked.sent).toEqual({
      size: plain.length,
      sha256: hex(sha256(plain)),
      ciphertext_size: asked.ciphertext.length,
      ciphertext_sha256: hex(sha256(asked.ciphertext)),
    });
    expect(asked.started).toBe(without.started + 1); // the plaintext's hasher, only when asked
  });

  it("hashes an empty file's plaintext when asked", async () => {
    const empty = new Uint8Array(0);
    expect((await upload(empty)).sent.sha256).toBeUndefined();
    expect((await upload(empty, true)).sent.sha256).toBe(hex(sha256(empty)));
  });
});
