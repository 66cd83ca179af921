/**
 * Encrypt one file with age and upload it with tus (the protocol `pli send` uses): the
 * ciphertext goes in parts of 128 STREAM chunks (8 MiB of plaintext), each with its SHA-256 in
 * `Upload-Checksum`, so the server keeps a part whole or not at all. A network cut is ridden
 * out: the worker asks the server where the upload stands (`HEAD`) and sends the rest of the
 * part it holds.
 *
 * The file key is this app's (../crypto/agefile.ts), so an upload can also resume after the
 * page was reloaded. For an account's own send (`job.keep`), the worker keeps in IndexedDB
 * (../app/pending.ts) the upload's address, the header and nonce, the file key sealed under
 * this browser's device key, and, before each part is sent, the SHA-256 of its plaintext and
 * of its ciphertext. When the same file slot is sent again:
 *
 * - a file already uploaded, chosen again with the same name, size and modification time,
 *   gives its recorded entry;
 * - otherwise the file must have the recorded name, size and modification time, the server's
 *   offset must lie within the recorded parts, and the file is read and sealed again from its
 *   start under the same key: every recorded part must give the recorded digests, plaintext and
 *   ciphertext, before anything past the server's offset is sent. Same key, nonce, chunk index
 *   and plaintext give the same ciphertext, so the bytes the server holds are the ones sealed
 *   again, and the whole ciphertext's digest (for the manifest) is computed afresh;
 * - if anything differs, the key is never used again: the old upload is dropped and the file
 *   is sent anew under a fresh key, as a new upload for the same slot.
 *
 * Every part that may have left the browser has its digests recorded first, so no chunk index
 * is ever sealed under one key with two different plaintexts.
 *
 * The SHA-256 of the whole ciphertext is always computed; that of the whole plaintext only for
 * a job that asks for it (`digestPlaintext`: a request's answer), since a v2 manifest has none.
 */

import { sha256 } from "@noble/hashes/sha2.js";

import { base64Padded, hex } from "../crypto/b64.js";
import { headerMacMatches, partCount, partSpan, sealPart, startAgeFile } from "../crypto/agefile.js";
import { StreamSealer, ciphertextLength, headerOf } from "../crypto/stream.js";
import * as pending from "../app/pending.js";
import type { PartDigest, PendingFile } from "../app/pending.js";
import type { SendFile, Sent } from "./protocol.js";
import { Cancelled, fetchRetrying, failure, type Progress } from "./net.js";

const TUS = { "tus-resumable": "1.0.0" };

/** The file is not what an interrupted upload recorded: it is never resumed. */
class SourceChanged extends Error {}

/** An upload under way: where, under which key, how far the server has it, what was recorded. */
interface Upload {
  location: string;
  fileKey: Uint8Array;
  nonce: Uint8Array;
  prefix: Uint8Array;
  length: number;
  offset: number;
  recorded: PartDigest[];
}

/**
 * The IndexedDB record of one file slot. Writing is best effort: if a write fails, the record
 * is dropped (a record that misses a part sent must not be resumed) and no more is written; if
 * it cannot even be dropped, the upload stops (and its transfer is abandoned) rather than send
 * a part the record does not know of.
 */
class Kept {
  #on = true;
  #record: PendingFile | null = null;

  constructor(
    readonly email: string,
    readonly job: SendFile,
  ) {}

  get where(): { email: string; transfer: string; slot: string } {
    return { email: this.email, transfer: this.job.transfer, slot: this.job.slot };
  }

  /** The slot's record, which later writes then amend. */
  async load(): Promise<PendingFile | null> {
    try {
      this.#record = await pending.pendingFile(this.email, this.job.transfer, this.job.slot);
    } catch {
      this.#on = false;
    }
    return this.#record;
  }

  async write(record: () => Promise<PendingFile>): Promise<void> {
    if (!this.#on) return;
    try {
      this.#record = await record();
      await pending.putFile(this.#record);
    } catch {
      this.#on = false;
      this.#record = null;
      await pending.deleteFile(this.email, this.job.transfer, this.job.slot).catch(() => {
        throw new Error("this browser could not keep track of the upload: send the files again");
      });
    }
  }

  /** Record the digests of the parts that may have been sent, all of them, in order. */
  async parts(parts: PartDigest[]): Promise<void> {
    const current = this.#record;
    if (current) await this.write(async () => ({ ...current, parts: [...parts] }));
  }

  async drop(): Promise<void> {
    this.#record = null;
    await pending.deleteFile(this.email, this.job.transfer, this.job.slot).catch(() => undefined);
  }

  /** What every record of this slot says about the file and its recipients. */
  base(): Omit<PendingFile, "parts"> {
    const { name, size, lastModified } = this.job.file;
    return { ...this.where, name, size, lastModified, ages: [...this.job.recipients] };
  }
}

export async function sendFile(job: SendFile, progress: Progress, signal: AbortSignal): Promise<Sent> {
  const kept = job.keep ? new Kept(job.keep, job) : null;
  const saved = (await kept?.load()) ?? null;
  if (kept && saved) {
    if (saved.entry && pending.sameSource(saved, job.file) && sameList(saved.ages, job.recipients)) return saved.entry;
    const upload = saved.entry ? null : await reopened(saved, job, progress, signal);
    if (upload) {
      try {
        return await finished(kept, await transmit(upload, job, kept, progress, signal));
      } catch (error) {
        if (!(error instanceof SourceChanged)) throw error;
      }
    }
    // Not the file, the key or the upload recorded: drop them all, and start over.
    if (saved.url) await terminate(saved.url, job.token, signal);
    await kept.drop();
    progress({ done: 0, total: 0, restarted: true });
  }
  const upload = await fresh(job, kept, signal);
  try {
    return await finished(kept, await transmit(upload, job, kept, progress, signal));
  } catch (error) {
    if (error instanceof SourceChanged) throw new Error("the file changed while it was being sent: send it again");
    throw error;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/** A new upload under a fresh file key, recorded before its first byte is sent. */
async function fresh(job: SendFile, kept: Kept | null, signal: AbortSignal): Promise<Upload> {
  const start = await startAgeFile(job.recipients);
  const length = ciphertextLength(start.header.length, job.file.size);
  const location = await create(job, length, signal);
  await kept?.write(async () => ({
    ...kept.base(),
    url: location,
    prefix: start.prefix,
    key: await pending.sealFileKey(kept.where, start.fileKey),
    parts: [],
  }));
  return { location, fileKey: start.fileKey, nonce: start.nonce, prefix: start.prefix, length, offset: 0, recorded: [] };
}

/**
 * The interrupted upload of a record, if it can go on: the same file by name, size and time,
 * the same recipients, a key that opens and matches the header, and a server that holds no
 * more than the parts recorded. Null otherwise (the contents are compared as they are read).
 */
async function reopened(saved: PendingFile, job: SendFile, progress: Progress, signal: AbortSignal): Promise<Upload | null> {
  const { url, prefix } = saved;
  if (!url || !prefix || !saved.key) return null;
  if (!pending.sameSource(saved, job.file) || !sameList(saved.ages, job.recipients)) return null;
  if (saved.parts.length > partCount(job.file.size)) return null;
  let fileKey: Uint8Array;
  let start: ReturnType<typeof headerOf>;
  try {
    fileKey = await pending.openFileKey(saved);
    start = headerOf(prefix);
  } catch {
    return null;
  }
  if (start.payloadStart !== prefix.length || !headerMacMatches(start.header, fileKey)) return null;
  const length = ciphertextLength(start.header.length, job.file.size);
  const state = await status(url, job.token, progress, signal);
  const recorded = saved.parts.length;
  const covered = recorded ? partSpan(recorded - 1, prefix.length, job.file.size).cipherEnd : 0;
  if (!state || state.length !== length || state.offset > covered) return null;
  return { location: url, fileKey, nonce: start.nonce, prefix, length, offset: state.offset, recorded: [...saved.parts] };
}

async function digest(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/**
 * Read, seal and send the file part after part from its start: parts the server holds already
 * are sealed again only to be checked and hashed. Throws SourceChanged when a recorded part's
 * digests differ, before any byte of it or after it is sent.
 *
 * A part is read, sealed and hashed while the one before it is still on its way: the two
 * halves overlap, and a send costs about the slower of them rather than their sum. Parts still
 * go out one at a time, in order, each recorded before it is handed to the network.
 */
async function transmit(upload: Upload, job: SendFile, kept: Kept | null, progress: Progress, signal: AbortSignal): Promise<Sent> {
  const { file } = job;
  const sealer = new StreamSealer(upload.fileKey, upload.nonce);
  const plainHash = job.digestPlaintext ? sha256.create() : null;
  const cipherHash = sha256.create();
  const parts = partCount(file.size);
  let plainSize = 0;
  let sending: Promise<void> = Promise.resolve();
  try {
    for (let k = 0; k < parts; k += 1) {
      if (signal.aborted) throw new Cancelled();
      const span = partSpan(k, upload.prefix.length, file.size);
      const plain = new Uint8Array(await file.slice(span.plainStart, span.plainEnd).arrayBuffer());
      if (plain.length !== span.plainEnd - span.plainStart) throw new Error("the file changed while it was being sent: send it again");
      plainHash?.update(plain);
      plainSize += plain.length;
      const sealed = sealPart(sealer, plain, k === parts - 1, k === 0 ? upload.prefix : null);
      cipherHash.update(sealed);
      if (sealed.length !== span.cipherEnd - span.cipherStart) throw new Error("a part was sealed to the wrong length");
      const known = upload.recorded[k];
      // The digests a record keeps, or checks: only for an upload that is kept resumable.
      const digests = kept || known ? { plain: hex(await digest(plain)), cipher: hex(await digest(sealed)) } : null;
      if (known && (!digests || known.plain !== digests.plain || known.cipher !== digests.cipher)) throw new SourceChanged();
      if (span.cipherEnd <= upload.offset) {
        progress({ done: span.cipherEnd, total: upload.length });
        continue;
      }
      if (!known && kept && digests) {
        upload.recorded.push(digests);
        await kept.parts(upload.recorded);
      }
      await sending; // the part before this one is on the server
      const from = Math.max(upload.offset, span.cipherStart);
      sending = patch(upload.location, from, sealed.subarray(from - span.cipherStart), job.token, progress, signal).then(() => {
        upload.offset = span.cipherEnd;
        progress({ done: upload.offset, total: upload.length });
      });
      sending.catch(() => undefined); // its failure is raised where it is awaited, not reported as unhandled
    }
    await sending;
  } catch (error) {
    await sending.catch(() => undefined); // no request left running, nor its failure unheard
    throw error;
  }
  if (upload.offset !== upload.length || plainSize !== file.size) {
    throw new Error("the file changed while it was being sent: send it again");
  }
  const plainDigest = plainHash ? { sha256: hex(plainHash.digest()) } : {};
  return { size: plainSize, ...plainDigest, ciphertext_size: upload.length, ciphertext_sha256: hex(cipherHash.digest()) };
}

/** Every byte is on the server: the record keeps the manifest entry, and no key. */
async function finished(kept: Kept | null, entry: Sent): Promise<Sent> {
  await kept?.write(async () => ({ ...kept.base(), parts: [], entry }));
  return entry;
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
  if (!UPLOAD.test(location)) throw new Error("the server gave no upload address");
  return location;
}

const UPLOAD = /^\/api\/v1\/uploads\/[A-Za-z0-9_-]+$/;

/** Where an upload stands on the server; null when it is gone (finished elsewhere, dropped). */
async function status(
  location: string,
  token: string,
  progress: Progress,
  signal: AbortSignal,
): Promise<{ offset: number; length: number } | null> {
  if (!UPLOAD.test(location)) return null;
  const headers = { ...TUS, authorization: `Bearer ${token}` };
  const response = await fetchRetrying(location, { method: "HEAD", headers, signal }, progress);
  if (response.status === 404 || response.status === 410) return null;
  if (!response.ok) throw await failure(response);
  const offset = Number(response.headers.get("upload-offset"));
  const length = Number(response.headers.get("upload-length"));
  return Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && offset <= length ? { offset, length } : null;
}

/** Drop an upload on the server (best effort: a finished one stays until its blob is replaced). */
async function terminate(location: string, token: string, signal: AbortSignal): Promise<void> {
  if (!UPLOAD.test(location)) return;
  await fetch(location, { method: "DELETE", headers: { ...TUS, authorization: `Bearer ${token}` }, signal, credentials: "omit" }).catch(
    () => undefined,
  );
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
      "upload-checksum": `sha256 ${base64Padded(await digest(body))}`,
    };
    // As a Blob: Chromium sends an ArrayBuffer body at about 20 MB/s here, a Blob's at 100 MB/s
    // and more (8 MiB in 70 ms against 400 to 900 ms), and reads of the file meanwhile slow down
    // less.
    const sent = await fetchRetrying(location, { method: "PATCH", headers, body: new Blob([body]), signal }, progress);
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
