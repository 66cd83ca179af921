/**
 * Re-sharing a transfer, as `pli reshare` does: every file of a transfer this account can read
 * is downloaded, decrypted and checked in the worker exactly as a download is (the worker hands
 * a file back only once its ciphertext and plaintext match the signed manifest), kept as a Blob
 * — which the browser keeps on disk when it is large, never in the page's heap — and handed to
 * the send page as `File`s named as in the manifest, with a message saying where they came
 * from. The send page then encrypts them to the recipients the user names, like any send.
 */

import { IntegrityError } from "../crypto/errors.js";
import type { ManifestFile } from "../crypto/manifest.js";
import { t } from "./i18n.js";
import { Cancelled, type Progress, type Running } from "./jobs.js";

/** Files decrypted and checked from transfer `from`, waiting for the send page. */
export interface Reshare {
  from: string;
  files: File[];
  message: string;
}

let offered: Reshare | null = null;

/** Hand `reshare` to the next send page shown. */
export function offer(reshare: Reshare): void {
  offered = reshare;
}

/** What was offered to the send page, once: a later send page starts empty. */
export function take(): Reshare | null {
  const reshare = offered;
  offered = null;
  return reshare;
}

/** The message a re-share carries unless the user changes it (as `pli reshare`'s). */
export function reshareMessage(transfer: string, sender: string): string {
  return t("reshareMessage", { id: transfer, email: sender });
}

/** One checked download of `file`: a Blob once every check passed. */
export type FetchOne = (file: ManifestFile, progress: (p: Progress) => void) => Running<Blob | null>;

/**
 * Every file of `files`, one after the other, each decrypted and checked by `fetchOne`, as
 * `File`s named as in the manifest; `progress` counts the ciphertext of all of them.
 */
export function decryptAll(files: ManifestFile[], fetchOne: FetchOne, progress: (p: Progress) => void): Running<File[]> {
  const total = files.reduce((n, f) => n + f.ciphertext_size, 0);
  let current: Running<Blob | null> | null = null;
  let cancelled = false;
  const done = (async () => {
    const out: File[] = [];
    let before = 0;
    for (const file of files) {
      if (cancelled) throw new Cancelled("cancelled");
      current = fetchOne(file, (p) => progress({ done: before + p.done, total, retrying: p.retrying }));
      out.push(asFile(await current.done, file));
      before += file.ciphertext_size;
    }
    return out;
  })();
  const cancel = (): void => {
    cancelled = true;
    current?.cancel();
  };
  return { done, cancel };
}

/** A checked download's Blob as the `File` the manifest names; never a Blob of another size. */
export function asFile(blob: Blob | null, file: ManifestFile): File {
  if (!blob) throw new Error("the decrypted file was not handed back to the page");
  if (blob.size !== file.size) throw new IntegrityError("the decrypted file is not the one the sender signed");
  return new File([blob], file.name, { type: "application/octet-stream" });
}
