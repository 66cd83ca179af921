/**
 * Re-sharing a transfer (src/app/reshare.ts), without a browser: each file is fetched through
 * the checked download, one after the other, and comes back as a `File` named as in the signed
 * manifest, of exactly its signed size; a failure or a cancel stops it; the send page takes
 * what was offered once; the message says where the files came from, in English and French.
 */

import { describe, expect, it, vi } from "vitest";
import type { ManifestFile } from "../src/crypto/manifest.js";
import type { Progress, Running } from "../src/app/jobs.js";

vi.stubGlobal("PLI_WORKER_URL", "/worker.js");
vi.stubGlobal("document", { documentElement: {} });
const { IntegrityError } = await import("../src/crypto/errors.js");
const { Cancelled } = await import("../src/app/jobs.js");
const { setLang } = await import("../src/app/i18n.js");
const { asFile, decryptAll, offer, reshareMessage, take } = await import("../src/app/reshare.js");

function entry(id: string, name: string, text: string): ManifestFile {
  const size = new TextEncoder().encode(text).length;
  return { id, name, size, ciphertext_size: size + 100, ciphertext_sha256: "" };
}

const FILES = [entry("f1", "cas groupés.csv", "cas groupés\n"), entry("f2", "notes.txt", "suite")];
const TEXTS: Record<string, string> = { f1: "cas groupés\n", f2: "suite" };

/** A download that reports its whole ciphertext, then hands back the file's Blob. */
function fetched(file: ManifestFile, progress: (p: Progress) => void): Running<Blob | null> {
  progress({ done: file.ciphertext_size, total: file.ciphertext_size });
  return { done: Promise.resolve(new Blob([TEXTS[file.id] ?? ""])), cancel: () => undefined };
}

describe("re-sharing a transfer's files", () => {
  it("fetches every file in turn and names each as the manifest does", async () => {
    const order: string[] = [];
    const seen: Progress[] = [];
    const running = decryptAll(FILES, (file, progress) => (order.push(file.id), fetched(file, progress)), (p) => seen.push(p));
    const files = await running.done;
    expect(order).toEqual(["f1", "f2"]);
    expect(files.map((f) => f.name)).toEqual(["cas groupés.csv", "notes.txt"]);
    expect(await files[0]?.text()).toBe("cas groupés\n");
    expect(await files[1]?.text()).toBe("suite");
    const total = (FILES[0]?.ciphertext_size ?? 0) + (FILES[1]?.ciphertext_size ?? 0);
    expect(seen.map((p) => [p.done, p.total])).toEqual([[FILES[0]?.ciphertext_size, total], [total, total]]);
  });

  it("refuses a Blob of another size than the signed one, and no Blob at all", () => {
    const file = FILES[1] as ManifestFile;
    expect(() => asFile(new Blob(["suite!"]), file)).toThrow(IntegrityError);
    expect(() => asFile(null, file)).toThrow(Error);
    expect(asFile(new Blob(["suite"]), file).size).toBe(5);
  });

  it("stops at the first file that fails its checks", async () => {
    const order: string[] = [];
    const failing = (file: ManifestFile): Running<Blob | null> => {
      order.push(file.id);
      return { done: Promise.reject(new IntegrityError("the decrypted file is not the one the sender signed")), cancel: () => undefined };
    };
    await expect(decryptAll(FILES, failing, () => undefined).done).rejects.toThrow(IntegrityError);
    expect(order).toEqual(["f1"]);
  });

  it("cancels the file being fetched and fetches no other", async () => {
    const order: string[] = [];
    let finish: (blob: Blob) => void = () => undefined;
    const cancelled = vi.fn();
    const slow = (file: ManifestFile): Running<Blob | null> => {
      order.push(file.id);
      return { done: new Promise<Blob>((resolve) => (finish = resolve)), cancel: cancelled };
    };
    const running = decryptAll(FILES, slow, () => undefined);
    running.cancel();
    expect(cancelled).toHaveBeenCalledOnce();
    finish(new Blob([TEXTS.f1 ?? ""])); // the worker finished the file as the cancel arrived
    await expect(running.done).rejects.toThrow(Cancelled);
    expect(order).toEqual(["f1"]);
  });

  it("hands what was offered to one send page only", () => {
    const files = [new File(["x"], "x.txt")];
    offer({ from: "T".repeat(22), files, message: "m" });
    expect(take()).toEqual({ from: "T".repeat(22), files, message: "m" });
    expect(take()).toBeNull();
  });

  it("says where the files came from, in English and in French", () => {
    setLang("en", false);
    expect(reshareMessage("abcdefghijklmnop", "anne@example.org")).toBe("Re-shared from transfer abcdefghijklmnop, sent by anne@example.org.");
    setLang("fr", false);
    expect(reshareMessage("abcdefghijklmnop", "anne@example.org")).toBe("Partagé de nouveau depuis l’envoi abcdefghijklmnop, envoyé par anne@example.org.");
    setLang("en", false);
  });
});
