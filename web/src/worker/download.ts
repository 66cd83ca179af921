/**
 * Download one file of a transfer, decrypt it as a stream and check it against the signed
 * manifest (checks 12-15 of docs/spec/manifest.md). The plaintext goes into Blobs, which the
 * browser keeps outside the page's memory (on disk when large); the caller offers the file to
 * the user only after every check passed (check 16).
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { Decrypter } from "age-encryption";

import { hex } from "../crypto/b64.js";
import { DecryptError, IntegrityError } from "../crypto/errors.js";
import { Cancelled, failure, type Progress } from "./net.js";
import type { GetFile } from "./protocol.js";

/** Plaintext is gathered in slices of this size before each becomes a Blob. */
const SLICE = 16 << 20;

export async function getFile(job: GetFile, progress: Progress, signal: AbortSignal): Promise<Blob> {
  const headers: Record<string, string> = job.token ? { authorization: `Bearer ${job.token}` } : {};
  const response = await fetch(job.url, { headers, signal, credentials: "omit", cache: "no-store" });
  if (!response.ok || !response.body) throw await failure(response);
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
  let plain: ReadableStream<Uint8Array>;
  try {
    plain = await decrypter.decrypt(response.body.pipeThrough(tap));
  } catch (error) {
    throw rethrown(error);
  }
  const { blob, size, digest } = await gather(plain, signal);
  if (received !== expected.ciphertext_size || hex(cipher.digest()) !== expected.ciphertext_sha256) {
    throw new IntegrityError("the file the server sent is not the one the sender signed");
  }
  if (size !== expected.size || digest !== expected.sha256) {
    throw new IntegrityError("the decrypted file is not the one the sender signed");
  }
  return blob;
}

async function gather(plain: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<{ blob: Blob; size: number; digest: string }> {
  const hash = sha256.create();
  const slices: Blob[] = [];
  const staging = new Uint8Array(SLICE);
  let filled = 0;
  let size = 0;
  const reader = plain.getReader();
  try {
    for (;;) {
      if (signal.aborted) throw new Cancelled();
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      size += value.length;
      let chunk = value;
      while (chunk.length > 0) {
        const n = Math.min(chunk.length, SLICE - filled);
        staging.set(chunk.subarray(0, n), filled);
        filled += n;
        chunk = chunk.subarray(n);
        if (filled === SLICE) {
          slices.push(new Blob([staging])); // copies: the staging buffer is reused
          filled = 0;
        }
      }
    }
  } catch (error) {
    throw rethrown(error);
  } finally {
    reader.releaseLock();
  }
  slices.push(new Blob([staging.subarray(0, filled)]));
  return { blob: new Blob(slices, { type: "application/octet-stream" }), size, digest: hex(hash.digest()) };
}

/** age's own errors (bad MAC, truncation, no matching key) as one DecryptError. */
function rethrown(error: unknown): unknown {
  if (error instanceof IntegrityError || error instanceof Cancelled) return error;
  if (error instanceof DOMException && error.name === "AbortError") return new Cancelled();
  if (error instanceof TypeError) return error; // the network
  return new DecryptError("the file could not be decrypted: it is damaged, or not for this key");
}
