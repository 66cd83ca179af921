/**
 * Encrypt one file with age as a stream and upload it with tus (the protocol `pli send` uses):
 * the ciphertext goes in 8 MiB parts, each with its SHA-256 in `Upload-Checksum`, so the server
 * keeps a part whole or not at all. A network cut is ridden out: the worker asks the server
 * where the upload stands (`HEAD`) and sends the rest of the part it holds.
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { Encrypter } from "age-encryption";

import { base64Padded, hex } from "../crypto/b64.js";
import type { SendFile, Sent } from "./protocol.js";
import { Cancelled, fetchRetrying, failure, type Progress } from "./net.js";

export const PART = 8 << 20;
const TUS = { "tus-resumable": "1.0.0" };

export async function sendFile(job: SendFile, progress: Progress, signal: AbortSignal): Promise<Sent> {
  const encrypter = new Encrypter();
  for (const recipient of job.recipients) encrypter.addRecipient(recipient);
  const plain = sha256.create();
  let plainSize = 0;
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, out) {
      plain.update(chunk);
      plainSize += chunk.length;
      out.enqueue(chunk);
    },
  });
  const sealed = await encrypter.encrypt(job.file.stream().pipeThrough(tap));
  const length = sealed.size(job.file.size);
  const location = await create(job, length, signal);
  const cipher = sha256.create();
  let offset = 0;
  for await (const part of parts(sealed, PART, signal)) {
    cipher.update(part);
    await patch(location, offset, part, job.token, progress, signal);
    offset += part.length;
    progress({ done: offset, total: length });
  }
  if (offset !== length || plainSize !== job.file.size) {
    throw new Error("the file changed while it was being sent: send it again");
  }
  return { size: plainSize, sha256: hex(plain.digest()), ciphertext_size: length, ciphertext_sha256: hex(cipher.digest()) };
}

async function create(job: SendFile, length: number, signal: AbortSignal): Promise<string> {
  const meta = [["transfer", job.transfer], ["file", job.slot]]
    .map(([k, v]) => `${k} ${base64Padded(new TextEncoder().encode(v))}`)
    .join(",");
  const response = await fetch("/api/v1/uploads", {
    method: "POST",
    headers: { ...TUS, authorization: `Bearer ${job.token}`, "upload-length": String(length), "upload-metadata": meta },
    signal,
  });
  if (response.status !== 201) throw await failure(response);
  const location = response.headers.get("location") ?? "";
  if (!/^\/api\/v1\/uploads\/[A-Za-z0-9_-]+$/.test(location)) throw new Error("the server gave no upload address");
  return location;
}

/** Send `part` so that the upload ends at `offset + part.length`, resuming after a cut. */
async function patch(
  location: string,
  offset: number,
  part: Uint8Array<ArrayBuffer>,
  token: string,
  progress: Progress,
  signal: AbortSignal,
): Promise<void> {
  const auth = { ...TUS, authorization: `Bearer ${token}` };
  let at = offset;
  for (;;) {
    const body = part.subarray(at - offset) as Uint8Array<ArrayBuffer>;
    const headers = {
      ...auth,
      "content-type": "application/offset+octet-stream",
      "upload-offset": String(at),
      "upload-checksum": `sha256 ${base64Padded(new Uint8Array(await crypto.subtle.digest("SHA-256", body)))}`,
    };
    const sent = await fetchRetrying(location, { method: "PATCH", headers, body, signal }, progress);
    if (sent.status === 204) return;
    if (sent.status !== 409 && sent.status !== 423) throw await failure(sent);
    at = await where(location, auth, offset, part.length, progress, signal);
    if (at === offset + part.length) return;
  }
}

/** The server's offset, which must lie within the part this worker still holds. */
async function where(
  location: string,
  headers: Record<string, string>,
  offset: number,
  length: number,
  progress: Progress,
  signal: AbortSignal,
): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const response = await fetchRetrying(location, { method: "HEAD", headers, signal }, progress);
  if (!response.ok) throw await failure(response);
  const at = Number(response.headers.get("upload-offset"));
  if (!Number.isSafeInteger(at) || at < offset || at > offset + length) {
    throw new Error("the server lost part of the upload: send the files again");
  }
  return at;
}

/** The stream cut into parts of exactly `size` bytes (the last one shorter), copied. */
async function* parts(stream: ReadableStream<Uint8Array>, size: number, signal: AbortSignal): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  const reader = stream.getReader();
  let buffer = new Uint8Array(size);
  let filled = 0;
  try {
    for (;;) {
      if (signal.aborted) throw new Cancelled();
      const { done, value } = await reader.read();
      if (done) break;
      let chunk = value;
      while (chunk.length > 0) {
        const n = Math.min(chunk.length, size - filled);
        buffer.set(chunk.subarray(0, n), filled);
        filled += n;
        chunk = chunk.subarray(n);
        if (filled === size) {
          yield buffer;
          buffer = new Uint8Array(size);
          filled = 0;
        }
      }
    }
    if (filled > 0) yield buffer.subarray(0, filled);
  } finally {
    reader.releaseLock();
  }
}
