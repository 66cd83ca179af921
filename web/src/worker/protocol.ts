/**
 * What the page and its worker say to each other. The worker does the heavy, long work — age
 * encryption and decryption, hashing, uploading and downloading — so the page stays responsive
 * and never holds a whole file: it gets progress, then a result (an entry for the manifest, or,
 * for a download, nothing: the decrypted file went to the `Sink` the page chose).
 */

import type { ManifestFile } from "../crypto/manifest.js";

export interface SendFile {
  op: "send";
  file: File;
  recipients: string[];
  transfer: string;
  slot: string;
  token: string;
  /**
   * The account whose send this is: the upload is then kept resumable across page loads (see
   * worker/upload.ts). Absent for links' and requests' uploads.
   */
  keep?: string;
  /**
   * Also hash the whole plaintext, for the `sha256` of the entry: only a request's answer has
   * it (pli/answer/v1); a manifest's entry has none (pli/manifest/v2), so a send skips the pass.
   */
  digestPlaintext?: boolean;
}

/**
 * Where a download's plaintext goes, kept only once every check passed (see worker/sinks.ts):
 * a file the user chose (File System Access), the page's service worker, which streams it to
 * the browser's own download (through `port`), or Blobs handed back to the page.
 */
export type Sink = { kind: "file"; handle: FileSystemFileHandle } | { kind: "port"; port: MessagePort } | { kind: "blob" };

export interface GetFile {
  op: "get";
  url: string;
  token: string | null;
  ageIdentity: string;
  expected: ManifestFile;
  sink: Sink;
}

export type Job = SendFile | GetFile;

/** An uploaded file's entry; `sha256`, of its plaintext, only when the job asked for it. */
export interface Sent {
  size: number;
  sha256?: string;
  ciphertext_size: number;
  ciphertext_sha256: string;
}

export type Request = { id: number; job: Job } | { id: number; cancel: true };

export type Reply =
  | { id: number; progress: { done: number; total: number; retrying?: boolean; restarted?: boolean } }
  | { id: number; result: Sent | Blob | null }
  | { id: number; error: { name: string; message: string; status?: number } };
