/**
 * Download one file of a transfer, decrypt it as a stream and check it against the signed
 * manifest (checks 12-15 of docs/spec/manifest.md). The plaintext goes to the job's sink
 * (./sinks.ts), which keeps it only after every check passed (check 16). The plaintext is
 * hashed only for an entry that has its `sha256` (a v1 manifest's, or a request answer's).
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { Decrypter } from "age-encryption";

import { hex } from "../crypto/b64.js";
import { DecryptError, IntegrityError } from "../crypto/errors.js";
import { Cancelled, HttpError, failure, type Progress } from "./net.js";
import type { GetFile } from "./protocol.js";
import { open, type Writer } from "./sinks.js";

type Sha256 = ReturnType<typeof sha256.create>;

export async function getFile(job: GetFile, progress: Progress, signal: AbortSignal): Promise<Blob | null> {
  const writer = await open(job.sink, signal);
  try {
    const headers: Record<string, string> = job.token ? { authorization: `Bearer ${job.token}` } : {};
    const response = await fetch(job.url, { headers, signal, credentials: "omit", cache: "no-store" });
    if (!response.ok || !response.body) throw await failure(response);
    await decrypt(job, response.body, writer, progress, signal);
  } catch (error) {
    const reason = rethrown(error);
    await writer.abort(reason instanceof Error ? reason.message : "failed");
    throw reason;
  }
  return writer.commit();
}

/** Decrypt into `writer`, then checks 12-15; throws if any fails (the caller then aborts it). */
async function decrypt(job: GetFile, body: ReadableStream<Uint8Array>, writer: Writer, progress: Progress, signal: AbortSignal): Promise<void> {
  const expected = job.expected;
  const cipher = sha256.create();
  let received = 0;
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, out) {
      received += chunk.length;
      if (received > expected.ciphertext_size) throw new IntegrityError("the server sent more than the signed size");
      cipher.update(chunk);
      progress({ done: received, total: expected.ciphertext_size });
      out.enqueue(chunk);
    },
  });
  const decrypter = new Decrypter();
  decrypter.addIdentity(job.ageIdentity);
  const plain = await decrypter.decrypt(body.pipeThrough(tap));
  const hash = expected.sha256 === undefined ? null : sha256.create();
  const size = await drain(plain, writer, expected.size, hash, signal);
  if (received !== expected.ciphertext_size || hex(cipher.digest()) !== expected.ciphertext_sha256) {
    throw new IntegrityError("the file the server sent is not the one the sender signed");
  }
  if (size !== expected.size || (hash !== null && hex(hash.digest()) !== expected.sha256)) {
    throw new IntegrityError("the decrypted file is not the one the sender signed");
  }
}

/** Every plaintext chunk written, and hashed into `hash` if any; never more than the signed size. */
async function drain(plain: ReadableStream<Uint8Array>, writer: Writer, limit: number, hash: Sha256 | null, signal: AbortSignal): Promise<number> {
  let size = 0;
  const reader = plain.getReader();
  try {
    for (;;) {
      if (signal.aborted) throw new Cancelled();
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) throw new IntegrityError("the decrypted file is larger than the sender signed");
      hash?.update(value);
      await writer.write(value);
    }
  } finally {
    reader.releaseLock();
  }
  return size;
}

/** age's own errors (bad MAC, truncation, no matching key) as one DecryptError. */
function rethrown(error: unknown): unknown {
  if (error instanceof IntegrityError || error instanceof Cancelled || error instanceof HttpError) return error;
  if (error instanceof DOMException && error.name === "AbortError") return new Cancelled();
  if (error instanceof DOMException) return new Error(`the file could not be saved: ${error.message}`);
  if (error instanceof TypeError) return error; // the network
  return new DecryptError("the file could not be decrypted: it is damaged, or not for this key");
}
