/**
 * What the page and its worker say to each other. The worker does the heavy, long work — age
 * encryption and decryption, hashing, uploading and downloading — so the page stays responsive
 * and never holds a whole file: it gets progress, then a result (an entry for the manifest, or
 * the decrypted file as a Blob, which the browser keeps out of the page's memory).
 */

import type { ManifestFile } from "../crypto/manifest.js";

export interface SendFile {
  op: "send";
  file: File;
  recipients: string[];
  transfer: string;
  slot: string;
  token: string;
}

export interface GetFile {
  op: "get";
  url: string;
  token: string | null;
  ageIdentity: string;
  expected: ManifestFile;
}

export type Job = SendFile | GetFile;

export interface Sent {
  size: number;
  sha256: string;
  ciphertext_size: number;
  ciphertext_sha256: string;
}

export type Request = { id: number; job: Job } | { id: number; cancel: true };

export type Reply =
  | { id: number; progress: { done: number; total: number; retrying?: boolean } }
  | { id: number; result: Sent | Blob }
  | { id: number; error: { name: string; message: string; status?: number } };
